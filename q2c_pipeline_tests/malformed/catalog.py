"""Malformed input, one class per entry: how a production export breaks one record, the rule
that must catch it, who owns it and what it holds with it.

Each ``Damage.apply(co, who)`` breaks one record of customer ``who`` in the company folder ``co``
and returns the canonical id of the record that must be quarantined, or None when ``who`` has no
record of the kind (the harness then tries another customer). ``held`` lists the canonical tables
in which records of that customer must be held with it (``held_by_upstream``).

The classes are those of a production-break exercise (a bad value in each field kind of each
source object), kept in one list so the documentation table and the tests cannot drift apart."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from q2c_pipeline_tests.malformed.company import Company


@dataclass(frozen=True)
class Damage:
    name: str
    rule: str
    owner: str
    table: str
    apply: Callable[[Company, str], str | None]
    held: tuple[str, ...] = ()
    also: tuple[str, ...] = ()  # other rules the customer's dependents may be held by


# What is held with an invoice, or with a contract, when its customer has such records: not
# every customer does.
FOLLOW_INVOICES = frozenset({"credit_notes", "refunds", "invoice_events"})
# ...and with a broken invoice or line, the invoice's other lines and its payments if any.
FOLLOW_INVOICE = FOLLOW_INVOICES | {"invoice_lines", "payments"}
FOLLOW_CONTRACTS = FOLLOW_INVOICES | {"usage"}
# A broken contract holds its lines, its invoices with their lines and payments; a broken line
# holds its contract (which posts whole) and the same.
CONTRACT_HELD = ("contract_lines", "invoice_lines", "invoices", "payments")
LINE_HELD = ("contracts", *CONTRACT_HELD)


def _first(records):
    return records[0] if records else None


# --- Salesforce ------------------------------------------------------------------------------

def _contract(field, value):
    def apply(co, who):
        contract = _first([c for c in co.contracts(who) if not c["SBQQ__AmendmentStartDate__c"]])
        if contract is None:
            return None
        contract[field] = value
        return f"sf:{contract['Id']}|1"
    return apply


def _subscription(field, value, *, recurring=True):
    def apply(co, who):
        sub = _first([s for s in co.subscriptions(who)
                      if not s["SBQQ__RevisedSubscription__c"]
                      and (s["SBQQ__ChargeType__c"] == "Recurring") == recurring
                      and s["SBQQ__Quantity__c"] > 0])
        if sub is None:
            return None
        sub[field] = value(sub) if callable(value) else value
        return f"sf:{sub['Id']}"
    return apply


def _account(field, value):
    def apply(co, who):
        account = co.account(who)
        account[field] = value
        return f"sf:{account['Id']}"
    return apply


def _duplicate_subscription(co, who):
    sub = _first(co.subscriptions(who))
    if sub is None:
        return None
    twin = dict(sub, SBQQ__Quantity__c=sub["SBQQ__Quantity__c"] + 1)
    co.records("salesforce/SBQQ__Subscription__c.json").append(twin)
    return f"sf:{sub['Id']}"


def _unlanded(rel, raw_table, pick):
    """The first record ``pick`` gives loses its id: it cannot be landed (its position in the
    extraction names it)."""
    def apply(co, who):
        record = _first(pick(co, who))
        if record is None:
            return None
        records = co.records(rel)
        position = next(n for n, r in enumerate(records) if r is record)
        record["Id" if "Id" in record else "id"] = None
        return f"{raw_table}#{position}"
    return apply


def _contract_unknown_account(co, who):
    contract = _first(co.contracts(who))
    if contract is None:
        return None
    contract["AccountId"] = "001Hp00000ZZZZZIAZ"
    return f"sf:{contract['Id']}|1"


def _subscription_unknown_contract(co, who):
    sub = _first(co.subscriptions(who))
    if sub is None:
        return None
    sub["SBQQ__Contract__c"] = "800Hp00000ZZZZZIAZ"
    return f"sf:{sub['Id']}"


SALESFORCE = [
    Damage("contract activated 'yesterday at noon'", "invalid_format", "sales_ops", "contracts",
           _contract("ActivatedDate", "yesterday at noon"), CONTRACT_HELD),
    Damage("contract end date in US format 03/31/2026", "invalid_format", "sales_ops",
           "contracts", _contract("EndDate", "03/31/2026"), CONTRACT_HELD),
    Damage("contract start date 2026-13-01", "invalid_format", "sales_ops", "contracts",
           _contract("StartDate", "2026-13-01"), CONTRACT_HELD),
    Damage("contract ending before it starts", "service_period_inverted", "sales_ops",
           "contracts", _contract("EndDate", "2025-01-31"), CONTRACT_HELD),
    Damage("contract in a currency with no FX rate (KWD)", "missing_fx_rate", "controllership",
           "contracts", _contract("CurrencyIsoCode", "KWD"), CONTRACT_HELD),
    Damage("contract currency 'EURO'", "invalid_format", "sales_ops", "contracts",
           _contract("CurrencyIsoCode", "EURO"), CONTRACT_HELD),
    Damage("contract booked to an entity the ERP does not hold", "unknown_legal_entity",
           "controllership", "contracts", _contract("Q2C_Legal_Entity__c", "XX99"),
           CONTRACT_HELD),
    Damage("contract with a null Id", "missing_value", "sales_ops", "landing",
           _unlanded("salesforce/Contract.json", "salesforce_contracts",
                     lambda co, who: co.contracts(who)), ("invoice_lines", "invoices", "payments"),
           ("unknown_contract",)),
    Damage("contract of an account Salesforce never sent", "unknown_customer", "sales_ops",
           "contracts", _contract_unknown_account, CONTRACT_HELD),
    Damage("contract activated in the year 31 million", "invalid_format", "sales_ops",
           "contracts", _contract("ActivatedDate", "31000000-01-01T00:00:00.000+0000"),
           CONTRACT_HELD),
    Damage("subscription quantity 0 while invoices bill it", "quantity_mismatch", "sales_ops",
           "contract_lines", _subscription("SBQQ__Quantity__c", 0.0),
           LINE_HELD),
    Damage("subscription negative price on a line that amends nothing", "negative_price",
           "sales_ops", "contract_lines",
           _subscription("SBQQ__NetPrice__c", lambda s: -s["SBQQ__NetPrice__c"]),
           LINE_HELD),
    Damage("subscription price as text", "invalid_type", "sales_ops", "contract_lines",
           _subscription("SBQQ__NetPrice__c", "twelve hundred"),
           LINE_HELD),
    Damage("subscription product code not in the catalog", "unknown_product_code", "sales_ops",
           "contract_lines", _subscription("SBQQ__ProductCode__c", "NO-SUCH-SKU"),
           LINE_HELD),
    Damage("subscription ending before it starts", "service_period_inverted", "sales_ops",
           "contract_lines", _subscription("SBQQ__EndDate__c", "2025-06-30"),
           LINE_HELD),
    Damage("subscription start date 16/03/2026", "invalid_format", "sales_ops",
           "contract_lines", _subscription("SBQQ__StartDate__c", "16/03/2026"),
           LINE_HELD),
    Damage("subscription with no quantity", "missing_value", "sales_ops", "contract_lines",
           _subscription("SBQQ__Quantity__c", None),
           LINE_HELD),
    Damage("subscription sent twice with different quantities", "duplicate_id", "sales_ops",
           "contract_lines", _duplicate_subscription, LINE_HELD),
    Damage("subscription with a null Id", "missing_value", "sales_ops", "landing",
           _unlanded("salesforce/SBQQ__Subscription__c.json", "salesforce_subscriptions",
                     lambda co, who: co.subscriptions(who)), LINE_HELD,
           ("unknown_contract_line",)),
    Damage("subscription of a contract Salesforce never sent", "unknown_contract", "sales_ops",
           "contract_lines", _subscription_unknown_contract,
           ("invoice_lines", "invoices", "payments")),
    Damage("account with a null Id", "missing_value", "sales_ops", "landing",
           _unlanded("salesforce/Account.json", "salesforce_accounts",
                     lambda co, who: [co.account(who)]), ("contract_lines", "invoices"),
           ("unknown_customer",)),
]


# --- Stripe ----------------------------------------------------------------------------------

def _invoice(edit, *, status="paid", line=False, report_invoice=False):
    def apply(co, who):
        invoice = _first(co.invoices(who, status=status))
        if invoice is None:
            return None
        target = invoice["lines"]["data"][0] if line else invoice
        edit(target)
        return f"stripe:{(invoice if report_invoice else target)['id']}"
    return apply


def _set(field, value):
    def edit(record):
        record[field] = value
    return edit


def _transition(field, value):
    def edit(invoice):
        invoice["status_transitions"][field] = value
    return edit


def _tax_as_float(line):
    if not line.get("taxes"):
        line["taxes"] = [{"amount": 0, "tax_behavior": "exclusive", "taxable_amount": 0,
                          "taxability_reason": "not_collecting", "type": "tax_rate_details",
                          "tax_rate_details": None}]
    line["taxes"][0]["amount"] = float(line["taxes"][0]["amount"]) + 0.5


def _discount_as_text(line):
    line["discount_amounts"] = [{"amount": "1000", "discount": "di_1ZZZZZZZZZZZZZZZZZZZZZZZ"}]


def _period_as_text(line):
    line["period"]["start"] = "2026-05-01T00:00:00Z"


def _period_inverted(line):
    line["period"] = {"start": line["period"]["end"], "end": line["period"]["start"]}


def _major_units(line):
    line["amount"] = line["amount"] / 100.0


def _duplicate_invoice(co, who):
    invoice = _first(co.invoices(who, status="open")) or _first(co.invoices(who, status="paid"))
    if invoice is None:
        return None
    twin = dict(invoice, description="edited copy")
    co.records("stripe/invoices.json").append(twin)
    return f"stripe:{invoice['id']}"


def _first_record(pick):
    """A class that edits the customer's first record of a kind (``pick(co, who)``) with
    ``edit(co, record)`` and names it ``stripe:<id>``."""
    def damage(edit):
        def apply(co, who):
            record = _first(pick(co, who))
            if record is None:
                return None
            edit(co, record)
            return f"stripe:{record['id']}"
        return apply
    return damage


_payment = _first_record(lambda co, who: co.payments(who))
_refund = _first_record(lambda co, who: co.refunds(who))
_credit_note = _first_record(
    lambda co, who: [c for c in co.credit_notes(who) if c["status"] == "issued"])


def _times(field, factor):
    def edit(co, record):
        record[field] = record[field] * factor
    return edit


def _field(field, value):
    def edit(co, record):
        record[field] = value
    return edit


def _credit_times(factor):
    def edit(co, note):
        for field in ("amount", "subtotal", "subtotal_excluding_tax", "total",
                      "total_excluding_tax", "pre_payment_amount"):
            if isinstance(note.get(field), int):
                note[field] *= factor
        for line in note["lines"]["data"]:
            line["amount"] *= factor
            for tax in line.get("taxes") or []:
                tax["amount"] *= factor
    return edit


def _whole_invoice_in_major_units(co, who):
    invoice = _first(co.invoices(who, status="paid"))
    if invoice is None:
        return None

    def scale(value):
        if isinstance(value, dict):
            return {k: scale(v) if k not in ("created", "period", "status_transitions",
                                              "due_date", "effective_at", "quantity",
                                              "webhooks_delivered_at",
                                              "automatically_finalizes_at") else v
                    for k, v in value.items()}
        if isinstance(value, list):
            return [scale(v) for v in value]
        return value / 100 if isinstance(value, int) and not isinstance(value, bool) else value

    for field in ("amount_due", "amount_paid", "amount_remaining", "subtotal", "total",
                  "subtotal_excluding_tax", "total_excluding_tax", "lines",
                  "total_discount_amounts", "total_taxes"):
        invoice[field] = scale(invoice[field])
    for payment in co.payments(who):
        if payment["invoice"] == invoice["id"]:
            payment["amount_paid"] = payment["amount_paid"] / 100
            payment["amount_requested"] = payment["amount_requested"] / 100
    return f"stripe:{invoice['id']}"


def _lines_has_more(invoice):
    invoice["lines"]["has_more"] = True
    invoice["lines"]["total_count"] = len(invoice["lines"]["data"]) + 1


def _payment_missing(co, who):
    payment = _first(co.payments(who))
    if payment is None:
        return None
    payments = co.records("stripe/invoice_payments.json")
    others = [p for p in payments if p["invoice"] == payment["invoice"] and p is not payment]
    if others:
        return None  # the invoice must lose its only payment
    payments.remove(payment)
    return f"stripe:{payment['invoice']}"


def _overpaid_then_refunded(co, refund):
    payment = next(p for p in co.records("stripe/invoice_payments.json")
                   if p["payment"]["payment_intent"] == refund["payment_intent"])
    invoice = next(i for i in co.records("stripe/invoices.json") if i["id"] == payment["invoice"])
    # the customer paid the invoice and the refunded amount on top; Stripe credited the excess
    payment["amount_paid"] += refund["amount"]
    invoice["amount_paid"] += refund["amount"]
    invoice["amount_overpaid"] = refund["amount"]


def _payment_of_unknown_invoice(co, payment):
    payment["invoice"] = "in_1ZZZZZZZZZZZZZZZZZZZZZZZ"


STRIPE = [
    Damage("invoice with a null id", "missing_value", "billing_ops", "landing",
           _unlanded("stripe/invoices.json", "stripe_invoices",
                     lambda co, who: co.invoices(who, status="paid")), (), ("unknown_invoice",)),
    Damage("invoice of a customer Stripe never sent", "unknown_customer", "billing_ops",
           "invoices", _invoice(_set("customer", "cus_1ZZZZZZZZZZZZZZZZZZZZZZZ")),
           ("invoice_lines", "payments")),
    Damage("invoice status none of Stripe's", "invalid_value", "billing_ops", "invoices",
           _invoice(_set("status", "settled")), ("invoice_lines", "payments")),
    Damage("invoice currency not ISO 4217 ('xyz')", "unknown_currency", "billing_ops", "invoices",
           _invoice(_set("currency", "xyz")), ("invoice_lines", "payments")),
    Damage("invoice line amount beyond int64 (1e20)", "out_of_range", "billing_ops",
           "invoice_lines", _invoice(_set("amount", 10**20), line=True),
           ("invoices", "payments")),
    Damage("invoice line amount 9e18 that overflows a sum", "out_of_range", "billing_ops",
           "invoice_lines", _invoice(_set("amount", 9 * 10**18), line=True),
           ("invoices", "payments")),
    Damage("invoice finalized in the year 31 million", "out_of_range", "billing_ops",
           "invoices", _invoice(_transition("finalized_at", 978_000_000_000_000)),
           ("invoice_lines", "payments")),
    Damage("invoice finalized at a text date", "invalid_type", "billing_ops", "invoices",
           _invoice(_transition("finalized_at", "2026-05-01")), ("invoice_lines", "payments")),
    Damage("invoice due date as ISO text", "invalid_type", "billing_ops", "invoices",
           _invoice(_set("due_date", "2026-07-31T00:00:00Z")), ("invoice_lines", "payments")),
    Damage("invoice subtotal that its lines do not add up to", "totals_differ", "billing_ops",
           "invoices", _invoice(lambda inv: inv.update(subtotal=inv["subtotal"] + 100)),
           ("invoice_lines", "payments")),
    Damage("invoice sent twice with different content", "duplicate_id", "billing_ops",
           "invoices", _duplicate_invoice, (), ("duplicate_id",)),
    Damage("invoice line period ending before it starts", "service_period_inverted",
           "billing_ops", "invoice_lines", _invoice(_period_inverted, line=True),
           ("invoices", "payments")),
    Damage("invoice line amount in major units (1152.0 for 115200)", "invalid_type",
           "billing_ops", "invoice_lines", _invoice(_major_units, line=True),
           ("invoices", "payments")),
    Damage("invoice exported wholly in major units as floats", "invalid_type", "billing_ops",
           "invoices", _whole_invoice_in_major_units, ("invoice_lines", "payments")),
    Damage("invoice saved with only its first page of lines", "incomplete_page",
           "billing_ops", "invoices", _invoice(_lines_has_more, status="open"),
           ("invoice_lines",)),
    Damage("paid invoice whose invoice payment is missing", "payments_differ_from_invoice",
           "billing_ops", "invoices", _payment_missing, ("invoice_lines",)),
    Damage("invoice line amount as text", "invalid_type", "billing_ops", "invoice_lines",
           _invoice(lambda line: line.update(amount="115200"), line=True),
           ("invoices", "payments")),
    Damage("invoice line in another currency than its invoice", "currency_mismatch",
           "billing_ops", "invoice_lines", _invoice(_set("currency", "jpy"), line=True),
           ("invoices", "payments")),
    Damage("invoice line with taxes null", "missing_value", "billing_ops", "invoice_lines",
           _invoice(_set("taxes", None), line=True), ("invoices", "payments")),
    Damage("invoice line tax amount as a float", "invalid_type", "billing_ops",
           "invoice_lines", _invoice(_tax_as_float, line=True), ("invoices", "payments")),
    Damage("invoice line discount amount as text", "invalid_type", "billing_ops",
           "invoice_lines", _invoice(_discount_as_text, line=True), ("invoices", "payments")),
    Damage("invoice line period start as ISO text", "invalid_type", "billing_ops",
           "invoice_lines", _invoice(_period_as_text, line=True), ("invoices", "payments")),
    Damage("payment status none of Stripe's", "unknown_status", "billing_ops", "payments",
           _payment(_field("status", "settled")), ()),
    # the invoice it was taken from says it was paid and has no payment now: held too
    Damage("payment of an invoice Stripe never sent", "unknown_invoice", "billing_ops",
           "payments", _payment(_payment_of_unknown_invoice), ("invoice_lines",),
           ("payments_differ_from_invoice",)),
    Damage("payment a hundred times its invoice", "payment_exceeds_invoice", "billing_ops",
           "payments", _payment(_times("amount_paid", 100)), ()),
    Damage("payment in another currency than its invoice", "currency_mismatch", "billing_ops",
           "payments", _payment(_field("currency", "jpy")), ()),
    Damage("payment amount negative", "not_positive", "billing_ops", "payments",
           _payment(_times("amount_paid", -1)), ()),
    Damage("payment amount as text", "invalid_type", "billing_ops", "payments",
           _payment(_field("amount_paid", "4798.40")), ()),
    Damage("payment amount in major units (2400.0 for 240000)", "invalid_type",
           "billing_ops", "payments",
           _payment(lambda co, p: p.update(amount_paid=p["amount_paid"] / 100)), ()),
    Damage("payment amount with cents as a float (4798.4)", "invalid_type", "billing_ops",
           "payments", _payment(lambda co, p: p.update(amount_paid=p["amount_paid"] / 100 + 0.4)),
           ()),
    Damage("payment paid at beyond the year 2255", "out_of_range", "billing_ops", "payments",
           _payment(lambda co, p: p["status_transitions"].update(paid_at=10**13)), ()),
    Damage("refund created as text", "invalid_type", "billing_ops", "refunds",
           _refund(_field("created", "yesterday")), ()),
    Damage("refund of an overpayment Stripe states", "refund_of_overpayment",
           "controllership", "refunds", _refund(_overpaid_then_refunded), ()),
    Damage("refund ten times its payment", "refund_exceeds_payment", "billing_ops", "refunds",
           _refund(_times("amount", 10)), ()),
    Damage("refund status none of Stripe's", "unknown_status", "billing_ops", "refunds",
           _refund(_field("status", "done")), ()),
    Damage("refund in another currency than its payment", "currency_mismatch", "billing_ops",
           "refunds", _refund(_field("currency", "jpy")), ()),
    Damage("refund amount negative", "not_positive", "billing_ops", "refunds",
           _refund(_times("amount", -1)), ()),
    Damage("credit note of an invoice Stripe never sent", "unknown_invoice", "billing_ops",
           "credit_notes", _credit_note(_field("invoice", "in_1ZZZZZZZZZZZZZZZZZZZZZZZ")), ()),
    Damage("credit note ten times its invoice", "credit_exceeds_invoice", "billing_ops",
           "credit_notes", _credit_note(_credit_times(10)), ()),
    Damage("credit note in another currency than its invoice", "currency_mismatch",
           "billing_ops", "credit_notes", _credit_note(_field("currency", "jpy")), ()),
]


# --- ERP and usage ---------------------------------------------------------------------------

def _erp_customer(field, value):
    def apply(co, who):
        row = co.erp_customer(who)
        if row is None:
            return None
        row[field] = value
        return co.customer_id(who)
    return apply


def _usage(edit, *, named=True):
    def apply(co, who):
        found = co.usage_events(who)
        if found is None:
            return None
        day, frame = found
        cus = co.stripe_customer(who)["id"]
        at = frame.index[frame["stripe_customer_id"] == cus][0]
        frame = frame.copy()
        edit(frame, at)
        co.set_usage_day(day, frame)
        # an event without its id is named by the validator as '<no id>'
        return f"usage:{frame.loc[at, 'event_id']}" if named else "<no id>"
    return apply


def _usage_set(column, value):
    def edit(frame, at):
        if frame[column].dtype.kind in "iu" and not isinstance(value, int):
            frame[column] = frame[column].astype(object)
        frame.loc[at, column] = value
    return edit


def _usage_far_future(frame, at):
    frame.loc[at, "timestamp"] = pd.Timestamp("2031-06-30 12:00", tz="UTC")


def _usage_long_before(frame, at):
    frame.loc[at, "timestamp"] = frame.loc[at, "timestamp"] - pd.Timedelta(days=365)


ERP_AND_USAGE = [
    Damage("ERP customer master row booked to an unknown entity", "unknown_legal_entity",
           "controllership", "customers", _erp_customer("legal_entity", "XX99"),
           LINE_HELD),
    Damage("ERP customer master row with a blank entity", "missing_legal_entity_mapping",
           "controllership", "customers", _erp_customer("legal_entity", ""),
           LINE_HELD),
    Damage("usage event with a negative quantity", "negative_quantity", "billing_ops", "usage",
           _usage(_usage_set("quantity", -5)), ()),
    Damage("usage event of a customer Stripe never sent", "unknown_customer", "billing_ops",
           "usage", _usage(_usage_set("stripe_customer_id", "cus_1ZZZZZZZZZZZZZZZZZZZZZZZ")),
           ()),
    Damage("usage event five years after the as-of date", "outside_usage_window",
           "billing_ops", "usage", _usage(_usage_far_future), ()),
    Damage("usage event a year before its day file", "outside_usage_window", "billing_ops",
           "usage", _usage(_usage_long_before), ()),
    Damage("usage event with no id", "missing_value", "billing_ops", "usage",
           _usage(_usage_set("event_id", None), named=False), ()),
    Damage("usage event of a product not in the catalog", "unknown_product_code",
           "billing_ops", "usage", _usage(_usage_set("product_code", "NO-SUCH-SKU")), ()),
]

CATALOG = SALESFORCE + STRIPE + ERP_AND_USAGE
