"""Stripe objects at the pinned API version -> canonical billing frames."""

from __future__ import annotations

import json

import pandas as pd
import pandera.errors
import pytest

from q2c_pipeline.schemas import (
    CreditNotes,
    InvoiceEvents,
    InvoiceLines,
    Invoices,
    Payments,
    Refunds,
)
from q2c_pipeline.sources.billing import (
    STRIPE_API_VERSION,
    map_credit_notes,
    map_invoice_events,
    map_invoice_lines,
    map_invoices,
    map_payments,
    map_refunds,
    map_usage_prices,
)

CONTRACT = "800Hp00000C0n7RIAR"
SEATS_ROW = "a0XHp00000S0b1AIAR"
MAR_01 = 1772323200  # 2026-03-01T00:00:00Z
MAR_16 = 1773619200
APR_01 = 1775001600
APR_01_2H = APR_01 + 7200
CUSTOMERS = pd.DataFrame({
    "customer_id": ["sf:001Hp00000A1b2CIAR"], "legal_entity": ["US01"], "currency": ["USD"],
    "billing_customer_id": ["stripe:cus_A1"],
})
PRODUCTS = [{"id": "prod_seat", "metadata": {"sf_product_code": "PLAT-SEAT"}},
            {"id": "prod_api", "metadata": {"sf_product_code": "API-CALLS"}}]


def _tax(amount: int, behavior: str = "exclusive") -> dict:
    return {"amount": amount, "tax_behavior": behavior, "taxability_reason": "standard_rated",
            "taxable_amount": 0, "tax_rate_details": {"tax_rate": "txr_1"},
            "type": "tax_rate_details"}


def _line(line_id: str, amount: int, start: int, end: int, *, quantity: int = 10,
          proration: bool = False, taxes: list | None = None, item: bool = False) -> dict:
    details = {"proration": proration, "subscription": "sub_1", "invoice_item": None}
    if item:
        parent = {"type": "invoice_item_details", "invoice_item_details": details,
                  "subscription_item_details": None}
    else:
        parent = {"type": "subscription_item_details", "invoice_item_details": None,
                  "subscription_item_details": {**details, "subscription_item": "si_1"}}
    return {"id": line_id, "object": "line_item", "amount": amount, "currency": "usd",
            "quantity": quantity, "period": {"start": start, "end": end},
            "metadata": {"sf_subscription_id": SEATS_ROW, "sf_contract_id": CONTRACT},
            "parent": parent, "taxes": taxes if taxes is not None else [],
            "pricing": {"type": "price_details",
                        "price_details": {"price": "price_1", "product": "prod_seat"}}}


def _invoice(invoice_id: str = "in_1", *, lines: list | None = None, status: str = "paid",
             **transitions) -> dict:
    return {
        "id": invoice_id, "object": "invoice", "customer": "cus_A1", "currency": "usd",
        "status": status, "due_date": APR_01_2H + 30 * 86400,
        "metadata": {"sf_contract_id": CONTRACT},
        "parent": {"type": "subscription_details",
                   "subscription_details": {"subscription": "sub_1", "metadata": {}}},
        "status_transitions": {"finalized_at": APR_01_2H, "paid_at": None, "voided_at": None,
                               "marked_uncollectible_at": None, **transitions},
        "lines": {"object": "list", "has_more": False, "data": lines or []},
    }


def _validate(model, frame: pd.DataFrame) -> pd.DataFrame:
    private = [c for c in frame.columns if c.startswith("_")]  # _payload, _shape_problem
    return model.validate(frame.drop(columns=private))


def test_pinned_api_version_is_the_one_stripe_python_16_1_pins():
    import stripe

    assert stripe.api_version == STRIPE_API_VERSION


def test_invoice_maps_customer_entity_contract_and_finalization_time():
    invoices = map_invoices([_invoice()], CUSTOMERS)

    row = invoices.iloc[0]
    assert row["invoice_id"] == "stripe:in_1"
    assert row["customer_id"] == "sf:001Hp00000A1b2CIAR"
    assert row["legal_entity"] == "US01"
    assert row["currency"] == "USD"
    assert row["contract_id"] == f"sf:{CONTRACT}"
    assert row["correlation_id"] == f"sf:{CONTRACT}"
    assert row["finalized_at"] == pd.Timestamp("2026-04-01 02:00:00")
    assert row["due_date"] == pd.Timestamp("2026-05-01 02:00:00")
    _validate(Invoices, invoices)


def test_invoice_of_an_unknown_customer_keeps_a_null_customer_and_is_rejected():
    orphan = _invoice() | {"customer": "cus_unknown", "metadata": {}, "parent": None}
    invoices = map_invoices([orphan], CUSTOMERS)

    assert invoices.iloc[0]["customer_id"] is None
    assert invoices.iloc[0]["correlation_id"] == "stripe:in_1"  # no contract: its own id
    with pytest.raises(pandera.errors.SchemaError, match="customer_id"):
        _validate(Invoices, invoices)


def test_duplicate_invoice_ids_both_come_through_and_fail_uniqueness():
    invoices = map_invoices([_invoice(), _invoice(status="open")], CUSTOMERS)

    assert list(invoices["status"]) == ["paid", "open"]
    with pytest.raises(pandera.errors.SchemaError, match="invoice_id"):
        _validate(Invoices, invoices)


def test_invoice_lines_carry_tax_period_and_contract_line():
    lines = [
        _line("il_seat", 100000, APR_01, APR_01 + 30 * 86400, taxes=[_tax(7250)]),
        _line("il_vat", 9600, APR_01, APR_01 + 30 * 86400, quantity=1,
              taxes=[_tax(1600, "inclusive")]),
        _line("il_fee", 500000, APR_01_2H, APR_01_2H, quantity=1, item=True),
    ]
    frame = map_invoice_lines([_invoice(lines=lines)], PRODUCTS)

    seat, vat, fee = (frame.iloc[i] for i in range(3))
    assert (seat["amount"], seat["tax_amount"], seat["tax_inclusive"]) == (100000, 7250, False)
    assert (vat["amount"], vat["tax_amount"], bool(vat["tax_inclusive"])) == (9600, 1600, True)
    assert seat["service_start"] == pd.Timestamp("2026-04-01")
    assert seat["service_end"] == pd.Timestamp("2026-05-01")
    assert seat["contract_line_id"] == f"sf:{SEATS_ROW}"
    assert seat["product_code"] == "PLAT-SEAT"
    assert seat["correlation_id"] == f"sf:{CONTRACT}"
    # a one-off item's zero-length period is a point in time: both ends empty
    assert pd.isna(fee["service_start"]) and pd.isna(fee["service_end"])
    assert fee["tax_amount"] == 0 and not fee["tax_inclusive"]
    _validate(InvoiceLines, frame)


def test_proration_lines_are_flagged_and_booked_when_the_change_happened():
    lines = [_line("il_credit", -51613, MAR_16, APR_01, proration=True),
             _line("il_charge", 77419, MAR_16, APR_01, quantity=15, proration=True)]
    frame = map_invoice_lines([_invoice(lines=lines)])

    assert list(frame["is_proration"]) == [True, True]
    assert list(frame["amount"]) == [-51613, 77419]
    assert list(frame["created_at"]) == [pd.Timestamp("2026-03-16")] * 2
    assert frame.iloc[0]["service_end"] == pd.Timestamp("2026-04-01")
    assert frame.iloc[0]["product_code"] is None  # no Stripe products given
    _validate(InvoiceLines, frame)


def test_single_line_credit_note_keeps_its_own_id():
    note = {"id": "cn_1", "object": "credit_note", "invoice": "in_1", "customer": "cus_A1",
            "currency": "usd", "created": MAR_16, "effective_at": MAR_16, "status": "issued",
            "reason": "product_unsatisfactory", "voided_at": None,
            "lines": {"data": [{"id": "cnli_1", "amount": 115625, "invoice_line_item": "il_seat",
                                "taxes": [_tax(7227)]}]}}
    frame = map_credit_notes([note], [_invoice()], CUSTOMERS)

    row = frame.iloc[0]
    assert row["credit_note_id"] == "stripe:cn_1"
    assert (row["amount"], row["tax_amount"]) == (115625, 7227)
    assert row["invoice_line_id"] == "stripe:il_seat"
    assert row["customer_id"] == "sf:001Hp00000A1b2CIAR"
    assert row["correlation_id"] == f"sf:{CONTRACT}"
    assert row["issued_at"] == pd.Timestamp("2026-03-16")
    _validate(CreditNotes, frame)


def test_multi_line_credit_note_gives_one_row_per_line_and_keeps_void_time():
    note = {"id": "cn_2", "invoice": "in_1", "currency": "gbp", "created": MAR_16,
            "status": "void", "voided_at": APR_01,
            "lines": {"data": [{"id": "cnli_a", "amount": 9600, "invoice_line_item": "il_a",
                                "taxes": [_tax(1600, "inclusive")]},
                               {"id": "cnli_b", "amount": 4800, "invoice_line_item": "il_b",
                                "taxes": [_tax(800, "inclusive")]}]}}
    frame = map_credit_notes([note])

    assert list(frame["credit_note_id"]) == ["stripe:cn_2:cnli_a", "stripe:cn_2:cnli_b"]
    assert list(frame["amount"]) == [9600, 4800]
    assert list(frame["tax_amount"]) == [1600, 800]
    assert list(frame["voided_at"]) == [pd.Timestamp("2026-04-01")] * 2
    assert list(frame["currency"]) == ["GBP", "GBP"]
    _validate(CreditNotes, frame)


def _payment(payment_id: str, status: str, amount: int = 107250) -> dict:
    return {"id": payment_id, "object": "invoice_payment", "invoice": "in_1",
            "amount_paid": amount if status == "paid" else None, "currency": "usd",
            "status": status, "payment": {"type": "payment_intent", "payment_intent": "pi_1"},
            "status_transitions": {"paid_at": APR_01 + 5 * 86400 if status == "paid" else None,
                                   "canceled_at": None}}


def test_only_paid_invoice_payments_are_payments():
    frame = map_payments([_payment("inpay_1", "paid"), _payment("inpay_2", "open")], [_invoice()],
                         CUSTOMERS)

    assert list(frame["payment_id"]) == ["stripe:inpay_1"]
    row = frame.iloc[0]
    assert (row["amount"], row["currency"], row["invoice_id"]) == (107250, "USD", "stripe:in_1")
    assert row["paid_at"] == pd.Timestamp("2026-04-06")
    assert row["customer_id"] == "sf:001Hp00000A1b2CIAR"
    assert row["correlation_id"] == f"sf:{CONTRACT}"
    _validate(Payments, frame)


def test_refund_finds_its_invoice_and_payment_through_the_payment_intent():
    refund = {"id": "re_1", "object": "refund", "amount": 8640, "currency": "usd",
              "created": APR_01 + 10 * 86400, "payment_intent": "pi_1", "status": "succeeded",
              "metadata": {}}
    failed = refund | {"id": "re_2", "status": "failed"}
    frame = map_refunds([refund, failed], [_payment("inpay_1", "paid")], [_invoice()])

    assert list(frame["refund_id"]) == ["stripe:re_1"]
    row = frame.iloc[0]
    assert (row["invoice_id"], row["payment_id"], row["amount"]) == (
        "stripe:in_1", "stripe:inpay_1", 8640)
    assert row["refunded_at"] == pd.Timestamp("2026-04-11")
    assert row["correlation_id"] == f"sf:{CONTRACT}"
    _validate(Refunds, frame)


def test_void_and_uncollectible_transitions_become_invoice_events():
    invoices = [_invoice("in_1", status="void", voided_at=APR_01 + 86400),
                _invoice("in_2", status="uncollectible", marked_uncollectible_at=APR_01),
                _invoice("in_3")]
    frame = map_invoice_events(invoices)

    assert list(zip(frame["invoice_id"], frame["event"], strict=True)) == [
        ("stripe:in_1", "void"), ("stripe:in_2", "uncollectible")]
    assert frame.iloc[0]["occurred_at"] == pd.Timestamp("2026-04-02")
    _validate(InvoiceEvents, frame)


def test_usage_prices_keep_the_active_metered_price_per_code_and_currency():
    prices = [
        {"id": "price_old", "product": "prod_api", "currency": "usd", "unit_amount": 3,
         "active": False, "created": 1, "recurring": {"usage_type": "metered"}},
        {"id": "price_new", "product": "prod_api", "currency": "usd", "unit_amount": 2,
         "active": True, "created": 2, "recurring": {"usage_type": "metered"}},
        {"id": "price_seat", "product": "prod_seat", "currency": "usd", "unit_amount": 10000,
         "active": True, "created": 3, "recurring": {"usage_type": "licensed"}},
    ]
    table = map_usage_prices(prices, PRODUCTS)

    assert table[["product_code", "currency", "contract_line_id", "price_id", "problem"]
                 ].to_dict("records") == [
        {"product_code": "API-CALLS", "currency": "USD", "contract_line_id": None,
         "price_id": "price_new", "problem": None}]
    assert json.loads(table["pricing"].iloc[0])["unit"] == "2"


def test_payment_and_refund_statuses_are_read_case_blind_and_an_unknown_one_is_held_not_dropped():
    # why: a saved export with status "Paid" / "SUCCEEDED" lost every such record silently
    from q2c_pipeline.sources.billing import set_aside

    payments = [
        {"id": f"inpay_{n}", "object": "invoice_payment", "status": status, "amount_paid": 100,
         "currency": "usd", "invoice": "in_1", "status_transitions": {"paid_at": MAR_16}}
        for n, status in enumerate(["paid", "Paid", "open", "canceled", "settled"])]
    refunds = [{"id": f"re_{n}", "object": "refund", "status": status, "amount": 50,
                "currency": "usd", "created": MAR_16, "metadata": {"invoice_id": "in_1"}}
               for n, status in enumerate(["succeeded", "SUCCEEDED", "pending", "bounced"])]
    mapped = map_payments(payments)
    assert list(mapped["source_id"]) == ["inpay_0", "inpay_1", "inpay_4"]
    assert mapped["_status_problem"].tolist()[:2] == [None, None]
    assert "status 'settled' is none of Stripe's (canceled, open, paid)" in \
        mapped["_status_problem"].iloc[2]
    mapped_refunds = map_refunds(refunds)
    assert list(mapped_refunds["source_id"]) == ["re_0", "re_1", "re_3"]
    assert mapped_refunds["_status_problem"].notna().tolist() == [False, False, True]
    # what is not cash by design is counted, so received = rows + quarantined + set aside
    assert set_aside(payments, refunds) == {"payments": 2, "refunds": 1}
    assert len(payments) == len(mapped) + 2 and len(refunds) == len(mapped_refunds) + 1


def test_an_unknown_payment_status_is_quarantined_for_billing_ops():
    from q2c_pipeline.schemas.validation import validate_canonical
    from q2c_pipeline_tests.fixtures.canonical_rows import canonical_company

    company = canonical_company()
    payments = company["payments"].assign(_status_problem=None)
    payments.loc[0, "_status_problem"] = "invoice payment 'inpay_x': status 'settled' is none"
    company["payments"] = payments
    result = validate_canonical(company)
    held = result.quarantine[result.quarantine["source_table"] == "payments"]
    assert list(held["rule"]) == ["unknown_status"] and list(held["owner"]) == ["billing_ops"]
    counts = result.counts()["payments"]
    assert counts["rows_in"] == counts["accepted"] + counts["quarantined"]
