"""Stripe objects (pinned API version) -> canonical billing frames.

Shapes are those of ``STRIPE_API_VERSION`` (docs.stripe.com/api, Invoices and Credit Notes):
invoices carry ``parent.subscription_details``, ``total_taxes`` and ``status_transitions``; line
items carry ``pricing.price_details``, ``parent.subscription_item_details`` /
``invoice_item_details`` and ``taxes[]``; payments are ``invoice_payment`` objects. Amounts are
already integer minor units; currencies are upper-cased; Unix seconds become naive-UTC timestamps.

Cross-system links: ``metadata.sf_contract_id`` (invoice, subscription) and
``metadata.sf_subscription_id`` (line item: the SBQQ__Subscription__c it bills). Mappers keep bad
records (duplicate ids, currency mismatches) as they are; validation quarantines them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from q2c_pipeline.core.rounding import distribute_by_weight
from q2c_pipeline.sources.usage_pricing import (
    UnsupportedPrice,
    UsagePrice,
    price_to_json,
    usage_prices_of,
)
from q2c_pipeline.sources.wire import (
    FIELD_PROBLEMS,
    MAX_MINOR,
    PAYLOAD_COLUMN,
    FieldProblems,
    build_frame,
    column_spec,
    float_from_wire,
    int_from_wire,
    normalize_salesforce_id,
    qualify,
    text_or_none,
    timestamp_from_unix,
    to_payload,
    upper_or_none,
)

# The API version stripe-python 16.1.0 pins; the sample company and the fakes speak it.
STRIPE_API_VERSION = "2026-10-28.endive"
SOURCE_SYSTEM = "stripe"
ID_PREFIX = "stripe"
BILLING_SYSTEM = "stripe"

# A private column (not canonical): why a record is not in the pinned version's shape.
SHAPE_COLUMN = "_shape_problem"
# A private column: a status none of the source's documented values (quarantined, not dropped).
STATUS_COLUMN = "_status_problem"
# Stripe's statuses of records that are not (yet) cash, compared case-insensitively
# (docs.stripe.com/api/invoice-payment/object, /api/refunds/object).
NOT_YET_PAYMENTS = frozenset({"open", "canceled"})
NOT_YET_REFUNDS = frozenset({"pending", "requires_action", "failed", "canceled"})
INVOICE_COLUMNS = column_spec("invoices")
INVOICE_LINE_COLUMNS = column_spec("invoice_lines")
CREDIT_NOTE_COLUMNS = column_spec("credit_notes")
PAYMENT_COLUMNS = column_spec("payments")
REFUND_COLUMNS = column_spec("refunds")
INVOICE_EVENT_COLUMNS = column_spec("invoice_events")
# The price table usage is rated with (map_usage_prices; usage_pricing for the rules).
USAGE_PRICE_COLUMNS = ["product_code", "currency", "contract_line_id", "price_id", "pricing",
                       "problem", "anchor"]

# Invoice status transitions that are canonical invoice events.
_EVENT_TRANSITIONS = (("voided_at", "void"), ("marked_uncollectible_at", "uncollectible"))

Record = Mapping[str, Any]


def shape_problem(obj: Record) -> str | None:
    """Why an invoice or credit note is not in the pinned version's shape, or None.

    Objects rendered at an API version before 2025-03-31.basil (an event's ``data.object`` at
    the account's older default version, a snapshot saved from such an account) state taxes in
    ``tax_amounts`` / ``total_tax_amounts`` and prices in ``line.price``; read with this
    version's mappers their tax would be unknown and their product and proration lost.
    Validation quarantines them (``unsupported_api_version``); the extractor retrieves event
    objects again at the pinned version, so only a saved file can carry one."""
    found = []
    if "total_taxes" not in obj and ("total_tax_amounts" in obj or "tax_amounts" in obj):
        found.append("taxes in tax_amounts/total_tax_amounts, not total_taxes")
    lines = (obj.get("lines") or {}).get("data") or []
    if any("pricing" not in line and "price" in line for line in lines):
        found.append("line prices in price, not pricing.price_details")
    if obj.get("object") == "invoice" and "parent" not in obj and "subscription" in obj:
        found.append("subscription at the top level, not parent.subscription_details")
    if not found:
        return None
    return (f"{obj.get('object', 'object')} {obj.get('id')!r} is in the shape of a Stripe API "
            f"version before 2025-03-31.basil ({'; '.join(found)}); q2c reads "
            f"{STRIPE_API_VERSION}: retrieve it again at that version (or re-save the snapshot)")


def map_invoices(invoices: Iterable[Record], customers: pd.DataFrame | None = None) -> pd.DataFrame:
    """Invoices -> canonical invoices (one row per invoice object received, duplicates kept).

    ``customer_id`` and ``legal_entity`` come from the canonical customer whose
    ``billing_customer_id`` is ``stripe:<invoice.customer>`` (null when no customer matches).
    ``contract_id`` is ``sf:<metadata.sf_contract_id>`` (invoice, else subscription details).
    """
    by_billing_id = _customers_by_billing_id(customers)
    rows = []
    for invoice in invoices:
        invoice_id = qualify(ID_PREFIX, invoice.get("id"))
        customer = by_billing_id.get(qualify(ID_PREFIX, _id_of(invoice.get("customer"))) or "", {})
        contract_id = _invoice_contract_id(invoice)
        transitions = invoice.get("status_transitions") or {}
        read = FieldProblems(invoice)
        stamps = FieldProblems(transitions, "status_transitions.")
        finalized_at = stamps.instant("finalized_at")
        for field, _event in _EVENT_TRANSITIONS:
            stamps.instant(field)  # an event's instant is read strictly here, once
        read.extend(stamps)
        due_date = read.instant("due_date")
        overpaid = read.stripe_amount("amount_overpaid")
        paid = _paid_through_payments(invoice, read)
        due = read.stripe_amount("amount_due")
        incomplete = _lines_incomplete(invoice)
        if incomplete:
            read.add("incomplete_page", "lines.has_more", incomplete)
        differ = _lines_differ_from_subtotal(invoice)
        if differ:
            read.add("totals_differ", "subtotal", differ)
        rows.append({
            "source_system": SOURCE_SYSTEM,
            "source_id": text_or_none(invoice.get("id")),
            "correlation_id": contract_id or invoice_id,
            "invoice_id": invoice_id,
            "customer_id": customer.get("customer_id"),
            "currency": upper_or_none(invoice.get("currency")),
            "finalized_at": finalized_at,
            "contract_id": contract_id,
            "legal_entity": customer.get("legal_entity"),
            "due_date": due_date,
            "billing_system": BILLING_SYSTEM,
            "status": text_or_none(invoice.get("status")),
            "amount_paid": paid,
            "amount_due": due,
            "amount_overpaid": overpaid,
            SHAPE_COLUMN: shape_problem(invoice),
            FIELD_PROBLEMS: read.result(),
            PAYLOAD_COLUMN: to_payload(invoice),
        })
    frame = _with_shape(build_frame(rows, INVOICE_COLUMNS), rows)
    for at, column in enumerate(("amount_paid", "amount_due", "amount_overpaid")):
        frame.insert(len(INVOICE_COLUMNS) + at, column,
                     pd.array([row[column] for row in rows], dtype="Int64"))
    return frame


def _paid_through_payments(invoice: Record, read: FieldProblems) -> int | None:
    """What the invoice's paid invoice payments should add up to: Stripe's ``amount_paid`` less
    what was paid off Stripe (``amount_paid_off_stripe``, dahlia and later when expanded);
    None when the invoice was paid out of band (no invoice payment carries that cash)."""
    paid = read.stripe_amount("amount_paid")
    off = read.stripe_amount("amount_paid_off_stripe")
    if paid is None or invoice.get("paid_out_of_band") is True:
        return None
    return paid - (off or 0)


def _lines_incomplete(invoice: Record) -> str | None:
    """An invoice saved with only the first page of its lines (``lines.has_more``): the live
    extraction pages every line in; a saved object that says there are more is not whole."""
    lines = invoice.get("lines")
    if not isinstance(lines, Mapping) or not lines.get("has_more"):
        return None
    data = lines.get("data") or []
    total = lines.get("total_count")
    return (f"field 'lines.has_more' is true: {len(data)} line(s) embedded"
            + (f" of {total}" if isinstance(total, int) else "")
            + "; the invoice is not whole (save it with every line)")


def _lines_differ_from_subtotal(invoice: Record) -> str | None:
    """Stripe's own control on an invoice: its ``subtotal`` is the sum of its lines' ``amount``
    (before discounts and exclusive tax). When every line is embedded and both sides are
    integers, a difference means a line or the subtotal was altered on the way (an export that
    wrote 444.0 for 44400), so nothing of the invoice can be trusted."""
    lines = invoice.get("lines") or {}
    data = lines.get("data") if isinstance(lines, Mapping) else None
    subtotal = invoice.get("subtotal")
    if not isinstance(data, list) or lines.get("has_more") or not isinstance(subtotal, int) \
            or isinstance(subtotal, bool):
        return None
    amounts = [_after_item_discounts(line) for line in data]
    if not all(isinstance(a, int) and not isinstance(a, bool) and abs(a) <= MAX_MINOR
               for a in amounts):
        return None  # an unreadable line amount is that line's problem
    if sum(amounts) == subtotal:
        return None
    return (f"its {len(amounts)} line(s) add up to {sum(amounts)} (after their item "
            f"discounts) but its subtotal is {subtotal} (minor units): Stripe's subtotal is "
            "the sum of the lines' amounts less item discounts")


def _after_item_discounts(line: Any) -> int | None:
    """A line's ``amount`` less its item-level discounts (those its ``discounts`` names; an
    invoice-level discount also shows in ``discount_amounts`` but is not in the subtotal)."""
    if not isinstance(line, Mapping) or not isinstance(line.get("amount"), int):
        return None
    own = {d.get("id") if isinstance(d, Mapping) else d for d in line.get("discounts") or []}
    taken = 0
    for entry in line.get("discount_amounts") or []:
        if not isinstance(entry, Mapping):
            return None
        named = entry.get("discount")
        named = named.get("id") if isinstance(named, Mapping) else named
        if named in own:
            if not isinstance(entry.get("amount"), int):
                return None
            taken += entry["amount"]
    return line["amount"] - taken


PENDING_INVOICE_COLUMNS = [
    "invoice_id", "source_id", "customer_id", "customer_name", "contract_id", "legal_entity",
    "currency", "status", "created_at", "finalizes_at", "subtotal", "total", "line_count",
    "billing_reason", "payload",
]


def split_drafts(invoices: Iterable[Record]) -> tuple[list[Record], list[Record]]:
    """(finalized invoices, drafts). A draft is not an invoice yet: Stripe may still change or
    delete it (a subscription renewal sits in draft about an hour), so it never reaches the
    canonical invoices, the revenue engine or the ledger; it waits in ``pending_invoices``."""
    finalized, drafts = [], []
    for invoice in invoices:
        (drafts if invoice.get("status") == "draft" else finalized).append(invoice)
    return finalized, drafts


def map_pending_invoices(drafts: Iterable[Record], customers: pd.DataFrame | None = None
                         ) -> pd.DataFrame:
    """Draft invoices -> ``canonical.pending_invoices``: awaiting finalization in Stripe, with
    the customer in words, the contract, what the draft would bill and when Stripe finalizes it
    (``automatically_finalizes_at``; null when billing ops finalize it by hand)."""
    by_billing_id = _customers_by_billing_id(customers)
    rows = []
    for invoice in drafts:
        customer = by_billing_id.get(qualify(ID_PREFIX, _id_of(invoice.get("customer"))) or "",
                                     {})
        rows.append({
            "invoice_id": qualify(ID_PREFIX, invoice.get("id")),
            "source_id": text_or_none(invoice.get("id")),
            "customer_id": customer.get("customer_id"),
            "customer_name": text_or_none(invoice.get("customer_name")),
            "contract_id": _invoice_contract_id(invoice),
            "legal_entity": customer.get("legal_entity"),
            "currency": upper_or_none(invoice.get("currency")),
            "status": "awaiting_finalization",
            "created_at": timestamp_from_unix(invoice.get("created")),
            "finalizes_at": timestamp_from_unix(invoice.get("automatically_finalizes_at")),
            "subtotal": int_from_wire(invoice.get("subtotal")),
            "total": int_from_wire(invoice.get("total")),
            "line_count": len((invoice.get("lines") or {}).get("data") or []),
            "billing_reason": text_or_none(invoice.get("billing_reason")),
            "payload": to_payload(invoice),
        })
    frame = pd.DataFrame(rows, columns=PENDING_INVOICE_COLUMNS)
    for column in ("created_at", "finalizes_at"):
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[ns]")
    for column in ("subtotal", "total", "line_count"):
        frame[column] = frame[column].astype("Int64")
    return frame.sort_values("invoice_id", kind="mergesort").reset_index(drop=True)


def map_invoice_lines(
    invoices: Iterable[Record], products: Iterable[Record] = ()
) -> pd.DataFrame:
    """Embedded invoice line items -> canonical invoice lines.

    - ``amount`` is the line as invoiced after its discounts (``amount`` less
      ``discount_amounts[].amount``; an invoice-level discount the lines do not show is spread
      over the discountable lines, ``_spread_invoice_discount``), ``discount_amount`` what was
      taken off;
      ``tax_amount`` sums ``taxes[].amount`` (a null ``taxes`` is unknown, not zero) and
      ``tax_inclusive`` is true when any tax on the line is ``inclusive``.
    - ``period`` gives the half-open service period; a zero-length period (a one-off item) is a
      point-in-time item: both ends null.
    - ``is_proration`` from ``parent.*_details.proration``; a proration line's ``created_at`` is
      its period start (the moment of the change that created the pending item).
    - ``contract_line_id`` is ``sf:<metadata.sf_subscription_id>``; ``product_code`` comes from
      the Stripe product's ``metadata.sf_product_code`` when ``products`` are given.
    Only the lines embedded in the invoice are read (the extraction expands ``lines`` in full).
    """
    code_by_product = {
        product.get("id"): text_or_none((product.get("metadata") or {}).get("sf_product_code"))
        for product in products
    }
    rows, spread = [], []
    for invoice in invoices:
        invoice_id = qualify(ID_PREFIX, invoice.get("id"))
        correlation = _invoice_contract_id(invoice)
        lines = (invoice.get("lines") or {}).get("data") or []
        mapped = [_invoice_line(line, invoice_id, correlation, code_by_product)
                  for line in lines]
        currency = upper_or_none(invoice.get("currency"))
        for line, row in zip(lines, mapped, strict=True):
            stated = upper_or_none(line.get("currency")) if isinstance(line, Mapping) else None
            if stated and currency and stated != currency:
                row[FIELD_PROBLEMS] = [*(row[FIELD_PROBLEMS] or []), (
                    "currency_mismatch", "currency",
                    f"field 'currency' value {stated!r} differs from its invoice's {currency!r}: "
                    "a line bills in its invoice's currency")]
        # Stripe states each discount per line (invoice-level ones included) and in total; what
        # the total holds beyond the lines is spread over the discountable lines below
        rest = (_discounts(invoice.get("total_discount_amounts")) or 0) - sum(
            row["discount_amount"] or 0 for row in mapped)
        if (invoice.get("lines") or {}).get("has_more"):
            rest = 0  # lines not all here: their discounts are not the embedded lines' to take
        for line, row in zip(lines, mapped, strict=True):
            spread.append((len(rows), rest, line.get("discountable", True)))
            rows.append(row)
    frame = build_frame(rows, INVOICE_LINE_COLUMNS)
    return _spread_invoice_discount(frame, spread)


def _with_private(frame: pd.DataFrame, rows: list[dict[str, Any]], column: str
                  ) -> pd.DataFrame:
    """The frame with a private column (a problem for validation) before the payload."""
    frame.insert(len(frame.columns) - 1, column,
                 pd.Series([row[column] for row in rows], dtype=object))
    return frame


def _with_shape(frame: pd.DataFrame, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The frame with the private ``_shape_problem`` column before the payload."""
    return _with_private(frame, rows, SHAPE_COLUMN)


def set_aside(invoice_payments: Iterable[Record], refunds: Iterable[Record]) -> dict[str, int]:
    """Source records that are not canonical rows by design, per canonical table: invoice
    payment attempts that moved no cash (open, canceled) and refunds not (yet) paid out
    (pending, requires_action, failed, canceled). Counted so that received = canonical +
    quarantined + set aside."""
    return {
        "payments": sum(str(p.get("status") or "").strip().lower() in NOT_YET_PAYMENTS
                        for p in invoice_payments),
        "refunds": sum(str(r.get("status") or "").strip().lower() in NOT_YET_REFUNDS
                       for r in refunds),
    }


def _id_of(value: Any) -> str | None:
    """An id field as Stripe sends it: the id, or the object when expanded (``expand[]``)."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return text_or_none(value)


def _amount(record: Any, where: str, field: str, read: FieldProblems | None) -> int | None:
    """A Stripe amount of a nested record (at ``where`` in the object ``read`` reads), read
    strictly into ``read`` (when given)."""
    if not isinstance(record, Mapping):
        return None
    if read is None:
        return int_from_wire(record.get(field))
    nested = FieldProblems(record, where)
    value = nested.stripe_amount(field)
    read.extend(nested)
    return value


def _tax_amounts(line: Record, where: str, read: FieldProblems) -> list[int | None]:
    """The amounts of a line's ``taxes`` (invoice or credit note line), read strictly. A null
    ``taxes`` is "not stated" (an older API version's shape, or an object rendered without it):
    unknown, never zero, so ``[None]`` and a missing_value problem."""
    taxes = line.get("taxes")
    if isinstance(taxes, list):
        return [_amount(tax, f"{where}taxes[{n}].", "amount", read)
                for n, tax in enumerate(taxes)]
    read.add("missing_value", "taxes", f"field '{where}taxes' is null: Stripe states the taxes "
             "of a line ([] when none), so its tax is unknown, never zero")
    return [None]


def _discounts(amounts: Any, read: FieldProblems | None = None) -> int | None:
    """The sum of ``discount_amounts[].amount`` (None when one is not an integer)."""
    values = [_amount(d, f"discount_amounts[{n}].", "amount", read)
              for n, d in enumerate(amounts or [])]
    return None if None in values else sum(values)


def _spread_invoice_discount(frame: pd.DataFrame, spread: list[tuple[int, int, bool]]
                             ) -> pd.DataFrame:
    """An invoice-level discount the lines do not show (``total_discount_amounts`` beyond the
    lines' ``discount_amounts``), spread over the invoice's discountable lines by amount
    (largest remainder, ``core.rounding.distribute_by_weight``), so the lines add up to the
    invoice's total."""
    if not spread:
        return frame
    row, rest, discountable = (np.asarray(v) for v in zip(*spread, strict=True))
    target = (rest > 0) & discountable.astype(bool) & frame["amount"].fillna(0).gt(0).to_numpy()
    if not target.any():
        return frame
    lines = frame.iloc[row[target]]
    shares = distribute_by_weight(
        group=lines["invoice_id"], pool=pd.Series(rest[target], index=lines.index),
        weight=lines["amount"].astype("int64"), unit=pd.Series(1, index=lines.index),
        tiebreak=pd.Series(row[target], index=lines.index).astype(str).str.zfill(12))
    frame.loc[lines.index, "discount_amount"] += shares
    frame.loc[lines.index, "amount"] -= shares
    return frame


def _invoice_line(
    line: Record,
    invoice_id: str | None,
    contract_id: str | None,
    code_by_product: Mapping[Any, str | None],
) -> dict[str, Any]:
    line_id = qualify(ID_PREFIX, line.get("id"))
    metadata = line.get("metadata") or {}
    parent = line.get("parent") or {}
    details = parent.get(str(parent.get("type") or "")) or {}
    is_proration = bool(details.get("proration"))
    period = line.get("period") or {}
    read = FieldProblems(line)
    stamps = FieldProblems(period, "period.")
    start = stamps.instant("start")
    end = stamps.instant("end")
    read.extend(stamps)
    if start is not None and end is not None and start == end:
        start = end = None
    if (contract_id and parent.get("type") == "subscription_item_details"
            and not normalize_salesforce_id(metadata.get("sf_subscription_id"))):
        # a line of the contract's subscription that names no contract line would be read as
        # a sale of its own, recognized beside the contract line that already recognizes it
        read.add("missing_value", "metadata.sf_subscription_id",
                 f"field 'metadata.sf_subscription_id' is empty on a line billing subscription "
                 f"item {_id_of(details.get('subscription_item'))!r} of contract {contract_id}: "
                 "the line names no Salesforce contract line, so its revenue cannot follow one "
                 "(set it on the subscription item in Stripe)")
    if start is not None and end is not None and end < start:
        read.add("service_period_inverted", "period.end",
                 f"field 'period.end' {end:%Y-%m-%dT%H:%M:%SZ} is before 'period.start' "
                 f"{start:%Y-%m-%dT%H:%M:%SZ}: the line's service period ends before it starts")
    # taxes: [] is "no tax"; a missing or null taxes is "not stated" (an older API version's
    # shape, or an object rendered without it): unknown, never zero -- validation quarantines it
    tax_amounts = _tax_amounts(line, "", read)
    taxes = line.get("taxes") if isinstance(line.get("taxes"), list) else []
    price_details = (line.get("pricing") or {}).get("price_details") or {}
    gross = _amount(line, "", "amount", read)
    discount = _discounts(line.get("discount_amounts"), read)
    return {
        "source_system": SOURCE_SYSTEM,
        "source_id": text_or_none(line.get("id")),
        "correlation_id": contract_id or line_id,
        "invoice_line_id": line_id,
        "invoice_id": invoice_id,
        "amount": None if gross is None or discount is None else gross - discount,
        "discount_amount": discount,
        "contract_line_id": qualify(
            "sf", normalize_salesforce_id(metadata.get("sf_subscription_id"))
        ),
        "product_code": code_by_product.get(_id_of(price_details.get("product"))),
        # quantity_decimal is the full quantity; quantity is it truncated to an integer
        "quantity": float_from_wire(line.get("quantity_decimal")
                                    if line.get("quantity_decimal") is not None
                                    else line.get("quantity")),
        "tax_amount": None if None in tax_amounts else sum(tax_amounts),
        "tax_inclusive": any(tax.get("tax_behavior") == "inclusive" for tax in taxes),
        "service_start": start,
        "service_end": end,
        "is_proration": is_proration,
        "created_at": start if is_proration else None,
        FIELD_PROBLEMS: read.result(),
        PAYLOAD_COLUMN: to_payload(line),
    }


def map_credit_notes(
    credit_notes: Iterable[Record],
    invoices: Iterable[Record] = (),
    customers: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Credit notes -> canonical credit notes, one row per credit note line.

    A single-line note keeps the id ``stripe:<cn>``; a note with several lines gives
    ``stripe:<cn>:<cnli>`` per line. ``amount`` is the line amount less its ``discount_amount``
    (the discount credited back with it; tax included only when the credited invoice line was
    tax-inclusive, as on invoice lines); ``tax_amount`` sums the line's taxes (null = unknown).
    ``issued_at`` is ``effective_at`` (else ``created``); a void note keeps its ``voided_at``.
    """
    contract_by_invoice = _contract_by_invoice(invoices)
    by_billing_id = _customers_by_billing_id(customers)
    rows = []
    for note in credit_notes:
        note_id = text_or_none(note.get("id"))
        invoice_id = qualify(ID_PREFIX, _id_of(note.get("invoice")))
        contract_id = contract_by_invoice.get(invoice_id or "")
        customer = by_billing_id.get(qualify(ID_PREFIX, _id_of(note.get("customer"))) or "", {})
        lines = (note.get("lines") or {}).get("data") or []
        head = FieldProblems(note)
        issued_at = head.instant("effective_at" if note.get("effective_at") is not None
                                 else "created")
        voided_at = head.instant("voided_at")
        base = {
            "source_system": SOURCE_SYSTEM,
            "source_id": note_id,
            "issued_at": issued_at,
            "currency": upper_or_none(note.get("currency")),
            "invoice_id": invoice_id,
            "customer_id": customer.get("customer_id"),
            "reason": text_or_none(note.get("reason")),
            "voided_at": voided_at,
            SHAPE_COLUMN: shape_problem(note),
            PAYLOAD_COLUMN: to_payload(note),
        }
        if not lines:
            credit_id = qualify(ID_PREFIX, note_id)
            total_taxes = note.get("total_taxes")
            read = FieldProblems(note)
            read.extend(head)
            taxes = [_amount(t, f"total_taxes[{n}].", "amount", read)
                     for n, t in enumerate(total_taxes)] \
                if isinstance(total_taxes, list) else [None]
            subtotal = read.stripe_amount("subtotal")
            discount = read.stripe_amount("discount_amount")
            rows.append({
                **base,
                "credit_note_id": credit_id,
                "correlation_id": contract_id or credit_id,
                # subtotal is before invoice-level discounts (Stripe); the note credits net
                "amount": None if subtotal is None else subtotal - (discount or 0),
                "discount_amount": discount or 0,
                "invoice_line_id": None,
                "tax_amount": None if None in taxes else sum(taxes),
                FIELD_PROBLEMS: read.result(),
            })
            continue
        for line in lines:
            credit_id = (
                qualify(ID_PREFIX, note_id) if len(lines) == 1
                else f"{ID_PREFIX}:{note_id}:{line.get('id')}"
            )
            read = FieldProblems(line, "lines.")
            read.extend(head)
            taxes = _tax_amounts(line, "lines.", read)
            gross = read.stripe_amount("amount")
            discount = read.stripe_amount("discount_amount") or 0
            rows.append({
                **base,
                "credit_note_id": credit_id,
                "correlation_id": contract_id or credit_id,
                "amount": None if gross is None or discount is None else gross - discount,
                "discount_amount": discount,
                "invoice_line_id": qualify(ID_PREFIX, _id_of(line.get("invoice_line_item"))),
                "tax_amount": None if None in taxes else sum(taxes),
                FIELD_PROBLEMS: read.result(),
            })
    return _with_shape(build_frame(rows, CREDIT_NOTE_COLUMNS), rows)


def map_payments(
    invoice_payments: Iterable[Record],
    invoices: Iterable[Record] = (),
    customers: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Paid ``invoice_payment`` objects -> canonical payments.

    Only ``status == "paid"`` objects are payments: Stripe also lists the open (awaiting) and
    canceled payment attempts of every invoice, which move no cash. ``amount`` is
    ``amount_paid``; ``paid_at`` is ``status_transitions.paid_at``.
    """
    invoice_by_id = _first_by_id(invoices)
    by_billing_id = _customers_by_billing_id(customers)
    rows = []
    for payment in invoice_payments:
        status = str(payment.get("status") or "").strip().lower()
        if status in NOT_YET_PAYMENTS:
            continue  # an attempt that moved no cash (set_aside counts it)
        payment_id = qualify(ID_PREFIX, payment.get("id"))
        invoice = invoice_by_id.get(_id_of(payment.get("invoice")), {})
        customer = by_billing_id.get(qualify(ID_PREFIX, _id_of(invoice.get("customer"))) or "",
                                     {})
        contract_id = _invoice_contract_id(invoice) if invoice else None
        read = FieldProblems(payment)
        stamps = FieldProblems(payment.get("status_transitions") or {}, "status_transitions.")
        paid_at = stamps.instant("paid_at")
        read.extend(stamps)
        amount = read.stripe_amount("amount_paid")
        rows.append({
            "source_system": SOURCE_SYSTEM,
            "source_id": text_or_none(payment.get("id")),
            "correlation_id": contract_id or payment_id,
            "payment_id": payment_id,
            "paid_at": paid_at,
            "amount": amount,
            "currency": upper_or_none(payment.get("currency")),
            "invoice_id": qualify(ID_PREFIX, _id_of(payment.get("invoice"))),
            "customer_id": customer.get("customer_id"),
            "product_code": None,
            STATUS_COLUMN: None if status == "paid" else
            f"invoice payment {payment.get('id')!r}: status {payment.get('status')!r} is none "
            f"of Stripe's ({', '.join(sorted({'paid', *NOT_YET_PAYMENTS}))}): not read as cash",
            FIELD_PROBLEMS: read.result(),
            PAYLOAD_COLUMN: to_payload(payment),
        })
    return _with_private(build_frame(rows, PAYMENT_COLUMNS), rows, STATUS_COLUMN)


def map_refunds(
    refunds: Iterable[Record],
    invoice_payments: Iterable[Record] = (),
    invoices: Iterable[Record] = (),
    credit_notes: Iterable[Record] = (),
) -> pd.DataFrame:
    """Succeeded refunds -> canonical refunds.

    The invoice is the one of the paid ``invoice_payment`` with the same ``payment_intent`` or,
    when the refund names only a ``charge``, the same ``payment.charge`` (that payment is also
    ``payment_id``), else ``metadata.invoice_id``. Expanded ids (objects) are read by their id.
    Pending, failed and canceled refunds move no cash and are not refunds yet.
    ``credit_note_id`` is the credit note whose ``refunds[].refund`` (or older ``refund``) names
    the refund: such a refund settles the credit note (cash only, no second reduction of
    revenue).
    """
    note_of_refund: dict[str, str] = {}
    for note in credit_notes:
        named = [(r.get("refund") if isinstance(r, Mapping) else r)
                 for r in (note.get("refunds") or [])]
        if note.get("refund"):
            named.append(note.get("refund"))
        for refund_id in named:
            if isinstance(refund_id, Mapping):
                refund_id = refund_id.get("id")
            if refund_id and refund_id not in note_of_refund:
                note_of_refund[str(refund_id)] = qualify(ID_PREFIX, note.get("id"))
    payment_by_intent: dict[str, Record] = {}
    payment_by_charge: dict[str, Record] = {}
    for payment in invoice_payments:
        paid_with = payment.get("payment") or {}
        if payment.get("status") != "paid":
            continue
        for key, found in ((_id_of(paid_with.get("payment_intent")), payment_by_intent),
                           (_id_of(paid_with.get("charge")), payment_by_charge)):
            if key and key not in found:
                found[key] = payment
    contract_by_invoice = _contract_by_invoice(invoices)
    rows = []
    for refund in refunds:
        status = str(refund.get("status") or "").strip().lower()
        if status in NOT_YET_REFUNDS:
            continue  # no cash moved (set_aside counts it)
        refund_id = qualify(ID_PREFIX, refund.get("id"))
        # Stripe names the refunded payment by its intent or, for a charge made without one
        # (and in Stripe's own refund example), only by the charge
        payment = payment_by_intent.get(_id_of(refund.get("payment_intent")) or "") \
            or payment_by_charge.get(_id_of(refund.get("charge")) or "") or {}
        invoice_id = qualify(
            ID_PREFIX,
            # Stripe's own link (the paid invoice payment) before q2c's metadata fallback
            _id_of(payment.get("invoice")) or (refund.get("metadata") or {}).get("invoice_id"),
        )
        read = FieldProblems(refund)
        refunded_at = read.instant("created")
        amount = read.stripe_amount("amount")
        rows.append({
            "source_system": SOURCE_SYSTEM,
            "source_id": text_or_none(refund.get("id")),
            "correlation_id": contract_by_invoice.get(invoice_id or "") or refund_id,
            "refund_id": refund_id,
            "invoice_id": invoice_id,
            "refunded_at": refunded_at,
            "amount": amount,
            "currency": upper_or_none(refund.get("currency")),
            "payment_id": qualify(ID_PREFIX, payment.get("id")),
            "credit_note_id": note_of_refund.get(str(refund.get("id"))),
            STATUS_COLUMN: None if status == "succeeded" else
            f"refund {refund.get('id')!r}: status {refund.get('status')!r} is none of Stripe's "
            f"({', '.join(sorted({'succeeded', *NOT_YET_REFUNDS}))}): not read as cash",
            FIELD_PROBLEMS: read.result(),
            PAYLOAD_COLUMN: to_payload(refund),
        })
    return _with_private(build_frame(rows, REFUND_COLUMNS), rows, STATUS_COLUMN)


def map_invoice_events(invoices: Iterable[Record]) -> pd.DataFrame:
    """``status_transitions.voided_at`` / ``marked_uncollectible_at`` -> invoice events."""
    rows = []
    for invoice in invoices:
        transitions = invoice.get("status_transitions") or {}
        invoice_id = qualify(ID_PREFIX, invoice.get("id"))
        contract_id = _invoice_contract_id(invoice)
        for field, event in _EVENT_TRANSITIONS:
            if transitions.get(field) is None:
                continue
            rows.append({
                "source_system": SOURCE_SYSTEM,
                "source_id": text_or_none(invoice.get("id")),
                "correlation_id": contract_id or invoice_id,
                "invoice_id": invoice_id,
                "occurred_at": timestamp_from_unix(transitions.get(field)),
                "event": event,
                PAYLOAD_COLUMN: to_payload(invoice),
            })
    return build_frame(rows, INVOICE_EVENT_COLUMNS)


def map_usage_prices(prices: Iterable[Record], products: Iterable[Record],
                     subscriptions: Iterable[Record] = (), meters: Iterable[Record] = ()
                     ) -> pd.DataFrame:
    """Metered prices -> the price table usage is rated with (``USAGE_PRICE_COLUMNS``).

    - One row per subscription item billing a metered price (``contract_line_id`` from its
      ``metadata.sf_subscription_id``), in the subscription's currency: the price a customer's
      usage is actually billed at. The price object listed under ``/v1/prices`` (with its
      ``tiers`` and ``currency_options`` expanded) is preferred over the one embedded in the item.
      ``anchor`` is the subscription's ``billing_cycle_anchor``: billing periods count from it.
    - One catalog row per product code and currency (``contract_line_id`` null), for usage whose
      contract line no subscription item names: the most recently created *active* metered
      price for that code and currency (its own currency or one of its ``currency_options``);
      an archived price never rates usage.
    - A price whose meter aggregates other than by ``sum`` (``count``, ``last``), or with a legacy
      ``aggregate_usage`` other than ``sum``, bills one reading, not the events' sum: unsupported.
    ``pricing`` is the rating rule as JSON (``usage_pricing.price_to_json``); a price q2c cannot
    rate exactly has a null ``pricing`` and the reason in ``problem`` (the usage it prices is
    quarantined with that reason, never rated at a guess).
    """
    code_by_product = {
        product.get("id"): text_or_none((product.get("metadata") or {}).get("sf_product_code"))
        for product in products
    }
    listed = _first_by_id(prices)
    formula = {str(m.get("id")): str((m.get("default_aggregation") or {}).get("formula") or "sum")
               for m in meters}

    def variants_of(price: Record) -> list[UsagePrice | UnsupportedPrice]:
        meter = (price.get("recurring") or {}).get("meter")
        if formula.get(str(meter), "sum") != "sum":
            error = UnsupportedPrice(f"price {price.get('id')!r}: meter {meter!r} aggregates by "
                                     f"{formula[str(meter)]!r}, not by summing its events")
            error.currency = upper_or_none(price.get("currency"))  # type: ignore[attr-defined]
            return [error]
        return usage_prices_of(price)

    catalog, by_line = [], []
    for price in listed.values():
        if (price.get("recurring") or {}).get("usage_type") != "metered" \
                or not price.get("active", True):
            continue
        code = code_by_product.get(_id_of(price.get("product")))
        for variant in variants_of(price):
            catalog.append({**_price_row(code, None, variant, str(price.get("id"))),
                            "_active": bool(price.get("active")),
                            "_created": int_from_wire(price.get("created")) or 0})
    for subscription in subscriptions:
        currency = upper_or_none(subscription.get("currency"))
        for item in (subscription.get("items") or {}).get("data") or []:
            embedded = item.get("price") if isinstance(item.get("price"), Mapping) else {}
            price = listed.get(_id_of(item.get("price"))) or embedded
            if (price.get("recurring") or {}).get("usage_type") != "metered":
                continue
            line = qualify("sf", normalize_salesforce_id(
                (item.get("metadata") or {}).get("sf_subscription_id")))
            if line is None:
                continue
            variants = [v for v in variants_of(price)
                        if getattr(v, "currency", None) == currency]
            if not variants:
                variants = [UnsupportedPrice(
                    f"price {price.get('id')!r} has no amounts in the subscription's currency "
                    f"{currency!r} (neither its currency nor currency_options)")]
                variants[0].currency = currency  # type: ignore[attr-defined]
            by_line.append({**_price_row(code_by_product.get(_id_of(price.get("product"))),
                                         line, variants[0], str(price.get("id"))),
                            "anchor": int_from_wire(subscription.get("billing_cycle_anchor"))})
    frame = pd.DataFrame(catalog, columns=[*USAGE_PRICE_COLUMNS, "_active", "_created"])
    frame = frame.dropna(subset=["product_code", "currency"])
    frame = frame.sort_values(["_active", "_created", "price_id"],
                              ascending=[False, False, True], kind="mergesort")
    frame = frame.drop_duplicates(["product_code", "currency"], keep="first")
    lines = pd.DataFrame(by_line, columns=USAGE_PRICE_COLUMNS).drop_duplicates(
        ["contract_line_id"], keep="first")
    out = pd.concat([lines, frame[USAGE_PRICE_COLUMNS]], ignore_index=True)
    out = out.astype(object).where(out.notna(), None)
    return out.sort_values(["contract_line_id", "product_code", "currency"], na_position="last",
                           kind="mergesort").reset_index(drop=True)


def _price_row(code: str | None, line: str | None, variant: UsagePrice | UnsupportedPrice,
               price_id: str) -> dict[str, Any]:
    if isinstance(variant, UnsupportedPrice):
        return {"product_code": code, "currency": getattr(variant, "currency", None),
                "contract_line_id": line, "price_id": price_id, "pricing": None,
                "problem": str(variant), "anchor": None}
    return {"product_code": code, "currency": variant.currency, "contract_line_id": line,
            "price_id": price_id, "pricing": price_to_json(variant), "problem": None,
            "anchor": None}


def _invoice_contract_id(invoice: Record) -> str | None:
    metadata = invoice.get("metadata") or {}
    parent = invoice.get("parent") or {}
    details_metadata = (parent.get("subscription_details") or {}).get("metadata") or {}
    contract = metadata.get("sf_contract_id") or details_metadata.get("sf_contract_id")
    return qualify("sf", normalize_salesforce_id(contract))


def _contract_by_invoice(invoices: Iterable[Record]) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for invoice in invoices:
        invoice_id = qualify(ID_PREFIX, invoice.get("id"))
        if invoice_id and invoice_id not in found:
            found[invoice_id] = _invoice_contract_id(invoice)
    return found


def _first_by_id(objects: Iterable[Record]) -> dict[Any, Record]:
    found: dict[Any, Record] = {}
    for obj in objects:
        found.setdefault(_id_of(obj.get("id")), obj)
    return found


def _customers_by_billing_id(customers: pd.DataFrame | None) -> dict[str, dict[str, Any]]:
    if customers is None or customers.empty:
        return {}
    unique = customers.dropna(subset=["billing_customer_id"]).drop_duplicates(
        "billing_customer_id"
    )
    return {
        row["billing_customer_id"]: {
            "customer_id": row["customer_id"],
            "legal_entity": row["legal_entity"],
        }
        for row in unique[["billing_customer_id", "customer_id", "legal_entity"]].to_dict(
            "records"
        )
    }
