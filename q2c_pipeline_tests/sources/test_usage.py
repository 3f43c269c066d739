"""Raw metered events -> canonical rated usage (integer rating, vectorized)."""

from __future__ import annotations

import pandas as pd
import pandera.errors
import pytest

from q2c_pipeline.schemas import Usage
from q2c_pipeline.sources.billing import map_usage_prices
from q2c_pipeline.sources.usage import map_usage
from q2c_pipeline.sources.wire import PAYLOAD_COLUMN

PRICES = map_usage_prices(
    [{"id": "price_usd", "object": "price", "product": "prod_api", "currency": "usd",
      "unit_amount": 2, "unit_amount_decimal": "2", "billing_scheme": "per_unit", "active": True,
      "recurring": {"usage_type": "metered", "interval": "month", "interval_count": 1}},
     {"id": "price_eur", "object": "price", "product": "prod_api", "currency": "eur",
      "unit_amount": 3, "unit_amount_decimal": "3", "billing_scheme": "per_unit", "active": True,
      "recurring": {"usage_type": "metered", "interval": "month", "interval_count": 1}}],
    [{"id": "prod_api", "metadata": {"sf_product_code": "API-CALLS"}}])
PRIVATE = [PAYLOAD_COLUMN, "_price_problem", "_customer_problem", "_field_problems"]  # private
CUSTOMERS = pd.DataFrame({
    "customer_id": ["sf:001A", "sf:001B"], "currency": ["USD", "EUR"],
    "legal_entity": ["US01", "UK01"], "billing_customer_id": ["stripe:cus_A", "stripe:cus_B"],
})
CONTRACT_LINES = pd.DataFrame({"contract_line_id": ["sf:a0XA"], "contract_id": ["sf:800A"],
                               "service_start": [pd.Timestamp("2026-04-01")]})
INVOICE_LINES = pd.DataFrame({
    "invoice_line_id": ["stripe:il_apr"], "contract_line_id": ["sf:a0XA"],
    "service_start": [pd.Timestamp("2026-04-01")], "service_end": [pd.Timestamp("2026-05-01")],
})


def _events(*rows) -> pd.DataFrame:
    columns = ["event_id", "stripe_customer_id", "sf_subscription_id", "quantity", "timestamp"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["event_name"] = "api_call"
    frame["product_code"] = "API-CALLS"
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


def test_rated_amount_is_quantity_times_unit_price_in_the_customers_currency():
    events = _events(("mev_1", "cus_A", "a0XA", 250, "2026-04-30T23:59:59Z"),
                     ("mev_2", "cus_B", "a0XB", 7, "2026-05-01T00:00:00Z"))
    usage = map_usage(events, PRICES, CUSTOMERS, CONTRACT_LINES, INVOICE_LINES)

    assert list(usage["usage_id"]) == ["usage:mev_1", "usage:mev_2"]
    assert list(usage["amount"]) == [500, 21]  # 250 x 2 cents, 7 x 3 euro cents
    assert list(usage["currency"]) == ["USD", "EUR"]
    assert list(usage["customer_id"]) == ["sf:001A", "sf:001B"]
    assert list(usage["contract_line_id"]) == ["sf:a0XA", "sf:a0XB"]
    assert usage.iloc[0]["occurred_at"] == pd.Timestamp("2026-04-30 23:59:59")
    Usage.validate(usage.drop(columns=PRIVATE))


def test_usage_links_to_the_invoice_line_whose_half_open_period_contains_it():
    events = _events(("mev_1", "cus_A", "a0XA", 1, "2026-04-01T00:00:00Z"),
                     ("mev_2", "cus_A", "a0XA", 1, "2026-05-01T00:00:00Z"))
    usage = map_usage(events, PRICES, CUSTOMERS, CONTRACT_LINES, INVOICE_LINES)

    assert list(usage["invoice_line_id"]) == ["stripe:il_apr", None]  # May 1 is outside
    assert list(usage["correlation_id"]) == ["sf:800A", "sf:800A"]


def test_usage_without_a_known_contract_line_correlates_to_itself():
    usage = map_usage(_events(("mev_9", "cus_B", None, 4, "2026-05-02T10:00:00Z")), PRICES,
                      CUSTOMERS, CONTRACT_LINES)

    assert usage.iloc[0]["correlation_id"] == "usage:mev_9"
    assert usage.iloc[0]["contract_line_id"] is None


def test_unknown_customer_and_fractional_quantity_come_through_unrated():
    events = _events(("mev_1", "cus_nobody", "a0XA", 5, "2026-05-02T10:00:00Z"),
                     ("mev_2", "cus_A", "a0XA", 2.5, "2026-05-02T11:00:00Z"),
                     ("mev_3", "cus_A", "a0XA", 3, "2026-05-02T12:00:00Z"))
    usage = map_usage(events, PRICES, CUSTOMERS)

    assert len(usage) == 3  # rows in = rows out, in order
    assert usage.iloc[0]["customer_id"] is None and pd.isna(usage.iloc[0]["amount"])
    assert pd.isna(usage.iloc[1]["amount"])  # 2.5 calls cannot be rated exactly
    assert usage.iloc[2]["amount"] == 6
    with pytest.raises(pandera.errors.SchemaErrors):
        Usage.validate(usage.drop(columns=PRIVATE), lazy=True)


def test_payload_keeps_the_raw_event_as_sorted_json():
    usage = map_usage(_events(("mev_1", "cus_A", "a0XA", 250, "2026-04-30T23:59:59Z")), PRICES,
                      CUSTOMERS)

    payload = usage.iloc[0][PAYLOAD_COLUMN]
    assert payload.startswith('{"event_id":"mev_1","event_name":"api_call"')
    assert '"quantity":250' in payload


def test_no_events_give_an_empty_frame_with_the_canonical_columns():
    usage = map_usage(_events(), PRICES, CUSTOMERS)

    assert usage.empty
    assert list(usage.columns)[-1] == PAYLOAD_COLUMN
    Usage.validate(usage.drop(columns=PRIVATE))


def test_a_negative_quantity_or_an_unknown_customer_is_named_for_what_it_is_not_invalid_type():
    # why: both were labelled invalid_type (the null amount's generic failure came first)
    from q2c_pipeline.schemas.validation import validate_canonical
    from q2c_pipeline_tests.fixtures.canonical_rows import canonical_company

    company = canonical_company()
    customers = company["customers"]
    known = customers["billing_customer_id"].dropna().iloc[0].removeprefix("stripe:")
    code = company["products"]["product_code"].iloc[0]
    currency = customers.loc[customers["billing_customer_id"].notna(), "currency"].iloc[0]
    prices = map_usage_prices(
        [{"id": "p", "product": "prod", "currency": currency.lower(), "active": True,
          "unit_amount_decimal": "2", "recurring": {"usage_type": "metered"}}],
        [{"id": "prod", "metadata": {"sf_product_code": code}}])
    events = _events(("e1", known, None, -5, "2026-03-02T10:00:00Z"),
                     ("e2", "cus_nobody", None, 3, "2026-03-02T11:00:00Z"))
    events["product_code"] = code
    company["usage"] = map_usage(events, prices, customers)
    held = validate_canonical(company).quarantine.set_index("record_id")
    assert held.loc["usage:e1", "rule"] == "negative_quantity"
    assert held.loc["usage:e2", "rule"] == "unknown_customer"
    assert "stripe_customer_id 'cus_nobody' is no customer's billing id" in \
        held.loc["usage:e2", "reason"]
