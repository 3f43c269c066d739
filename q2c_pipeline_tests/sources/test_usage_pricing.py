"""Every shape Stripe prices usage with, rated exactly; each figure worked by hand in the test.

Prices are Stripe price objects as ``GET /v1/prices?expand[]=data.tiers&expand[]=
data.currency_options`` returns them (docs.stripe.com/api/prices/object).
"""

from __future__ import annotations

import pandas as pd

from q2c_pipeline.schemas.validation import validate_canonical
from q2c_pipeline.sources.billing import map_usage_prices
from q2c_pipeline.sources.usage import map_usage
from q2c_pipeline.sources.usage_pricing import price_from_json
from q2c_pipeline_tests.fixtures.canonical_rows import canonical_company

PRODUCTS = [{"id": "prod_api", "metadata": {"sf_product_code": "API-CALLS"}}]
CUSTOMERS = pd.DataFrame({
    "customer_id": ["sf:001A", "sf:001B"], "currency": ["USD", "EUR"],
    "legal_entity": ["US01", "UK01"], "billing_customer_id": ["stripe:cus_A", "stripe:cus_B"],
})
# The usage contract line starts on the 15th: its monthly billing periods run 15th to 15th.
CONTRACT_LINES = pd.DataFrame({"contract_line_id": ["sf:a0XA", "sf:a0XB"],
                               "contract_id": ["sf:800A", "sf:800B"],
                               "service_start": [pd.Timestamp("2026-04-15"),
                                                 pd.Timestamp("2026-04-01")]})


def _price(**fields) -> dict:
    price = {"id": "price_api", "object": "price", "product": "prod_api", "currency": "usd",
             "active": True, "created": 1, "billing_scheme": "per_unit", "tiers_mode": None,
             "tiers": None, "transform_quantity": None, "unit_amount": None,
             "unit_amount_decimal": None, "custom_unit_amount": None,
             "recurring": {"usage_type": "metered", "interval": "month", "interval_count": 1,
                           "meter": "mtr_api"}}
    price.update(fields)
    return price


def _events(*rows, customer: str = "cus_A", line: str = "a0XA") -> pd.DataFrame:
    frame = pd.DataFrame(
        [(f"mev_{i}", customer, line, quantity, when) for i, (quantity, when) in enumerate(rows)],
        columns=["event_id", "stripe_customer_id", "sf_subscription_id", "quantity",
                 "timestamp"])
    frame["event_name"] = "api_call"
    frame["product_code"] = "API-CALLS"
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


def _rate(price: dict, *rows, customer: str = "cus_A", line: str = "a0XA",
          subscriptions: tuple = ()) -> list:
    prices = map_usage_prices([price], PRODUCTS, subscriptions)
    usage = map_usage(_events(*rows, customer=customer, line=line), prices, CUSTOMERS,
                      CONTRACT_LINES)
    return [None if pd.isna(a) else int(a) for a in usage["amount"]]


def test_per_1000_calls_rounded_up_bills_whole_packages_and_the_crossing_event_carries_one():
    # USD 20.00 per 1,000 calls, rounded up: 250 + 600 + 300 = 1,150 calls -> 2 packages.
    price = _price(unit_amount=2000, unit_amount_decimal="2000",
                   transform_quantity={"divide_by": 1000, "round": "up"})
    amounts = _rate(price, (250, "2026-04-20T10:00:00Z"), (600, "2026-04-21T10:00:00Z"),
                    (300, "2026-04-22T10:00:00Z"))
    # 250 opens package 1 (2,000); 850 is still inside it (0); 1,150 opens package 2 (2,000)
    assert amounts == [2000, 0, 2000]
    assert sum(amounts) == 2 * 2000  # ceil(1150 / 1000) x 2000, what Stripe invoices


def test_per_1000_calls_rounded_down_bills_only_completed_packages():
    price = _price(unit_amount=2000, unit_amount_decimal="2000",
                   transform_quantity={"divide_by": 1000, "round": "down"})
    amounts = _rate(price, (250, "2026-04-20T10:00:00Z"), (600, "2026-04-21T10:00:00Z"),
                    (300, "2026-04-22T10:00:00Z"))
    assert amounts == [0, 0, 2000]  # floor(1150 / 1000) = 1 package


def test_a_sub_cent_rate_is_exact_and_the_period_rounds_once_half_up():
    # 0.25 cents a call: 3, 3, 2 calls. Cumulative 3 -> 0.75 -> 1; 6 -> 1.5 -> 2; 8 -> 2.0 -> 2.
    price = _price(unit_amount=None, unit_amount_decimal="0.25")
    amounts = _rate(price, (3, "2026-04-20T10:00:00Z"), (3, "2026-04-21T10:00:00Z"),
                    (2, "2026-04-22T10:00:00Z"))
    assert amounts == [1, 1, 0]
    assert sum(amounts) == 2  # 8 x 0.25 = 2.00 cents; per-event rounding would have given 3


def test_graduated_tiers_bill_each_tier_at_its_own_rate_plus_the_flat_fee_of_each_tier_reached():
    # first 1,000 calls at 2; beyond that 0.5 a call and a flat 100 once the tier is reached.
    price = _price(billing_scheme="tiered", tiers_mode="graduated", tiers=[
        {"up_to": 1000, "unit_amount": 2, "unit_amount_decimal": "2", "flat_amount": None,
         "flat_amount_decimal": None},
        {"up_to": None, "unit_amount": None, "unit_amount_decimal": "0.5", "flat_amount": 100,
         "flat_amount_decimal": "100"}])
    amounts = _rate(price, (800, "2026-04-20T10:00:00Z"), (700, "2026-04-21T10:00:00Z"))
    # 800 x 2 = 1,600; then 200 x 2 + 500 x 0.5 + 100 = 750; period 1,000 x 2 + 500 x 0.5 + 100
    assert amounts == [1600, 750]
    assert sum(amounts) == 2350


def test_volume_tiers_reprice_every_unit_and_the_event_crossing_into_a_cheaper_tier_is_negative():
    price = _price(billing_scheme="tiered", tiers_mode="volume", tiers=[
        {"up_to": 1000, "unit_amount_decimal": "2"},
        {"up_to": "inf", "unit_amount_decimal": "1"}])
    # billed by calendar month (the line starts on 1 April): the period is the reporting month
    amounts = _rate(price, (800, "2026-04-20T10:00:00Z"), (700, "2026-04-21T10:00:00Z"),
                    line="a0XB")
    # 800 x 2 = 1,600; at 1,500 every call is 1: 1,500, so the second event adds -100
    assert amounts == [1600, -100]
    assert sum(amounts) == 1500


def test_volume_tiers_over_a_period_crossing_a_month_end_are_not_rated_at_a_guess():
    # the accountant's case: periods 15th to 15th; 800 calls on 20 April, 700 on 5 May. April's
    # rate depends on May's calls (1,600 if the period stays under 1,000, 800 if it passes it):
    # q2c would have to estimate the period's volume (Example 24), so it refuses, naming why
    price = _price(billing_scheme="tiered", tiers_mode="volume", tiers=[
        {"up_to": 1000, "unit_amount_decimal": "2"},
        {"up_to": "inf", "unit_amount_decimal": "1"}])
    prices = map_usage_prices([price], PRODUCTS)
    usage = map_usage(_events((800, "2026-04-20T10:00:00Z"), (700, "2026-05-05T10:00:00Z")),
                      prices, CUSTOMERS, CONTRACT_LINES)
    assert usage["amount"].isna().all()
    assert usage["_price_problem"].str.contains("not a calendar month").all()
    assert usage["_price_problem"].str.contains("606-10-55-216").all()


def test_usage_before_the_billing_anchor_is_refused_not_rated_into_a_period_never_billed():
    price = _price(unit_amount=2, unit_amount_decimal="2")
    usage = map_usage(_events((10, "2026-04-14T10:00:00Z"), (10, "2026-04-16T10:00:00Z")),
                      map_usage_prices([price], PRODUCTS), CUSTOMERS, CONTRACT_LINES)
    assert pd.isna(usage["amount"].iloc[0]) and usage["amount"].iloc[1] == 20
    assert "before its subscription's billing starts (2026-04-15 00:00 UTC)" in \
        usage["_price_problem"].iloc[0]


def test_currency_options_rate_a_customer_billed_in_another_currency():
    price = _price(unit_amount=2, unit_amount_decimal="2",
                   currency_options={"usd": {"unit_amount": 2, "unit_amount_decimal": "2"},
                                     "eur": {"unit_amount": None, "unit_amount_decimal": "1.8"}})
    # 10 calls for the EUR customer at 1.8 cents = 18 cents
    assert _rate(price, (10, "2026-04-20T10:00:00Z"), customer="cus_B", line="a0XB") == [18]


def test_billing_periods_run_from_the_contract_lines_start_and_each_period_rounds_afresh():
    price = _price(unit_amount=2000, unit_amount_decimal="2000",
                   transform_quantity={"divide_by": 1000, "round": "up"})
    # periods: 15 Apr - 15 May, 15 May - 15 Jun. 600 + 600 in the first (2 packages), 600 in the
    # second (1 package); had periods been calendar months, 20 Apr and 10 May would not share one
    amounts = _rate(price, (600, "2026-04-20T10:00:00Z"), (600, "2026-05-10T10:00:00Z"),
                    (600, "2026-05-16T10:00:00Z"))
    assert amounts == [2000, 2000, 2000]


def test_events_are_rated_in_time_order_whatever_order_they_arrive_in():
    price = _price(unit_amount=2000, unit_amount_decimal="2000",
                   transform_quantity={"divide_by": 1000, "round": "up"})
    amounts = _rate(price, (300, "2026-04-22T10:00:00Z"), (250, "2026-04-20T10:00:00Z"),
                    (600, "2026-04-21T10:00:00Z"))
    assert amounts == [2000, 2000, 0]  # the 22 Apr event is the one crossing 1,000


def test_the_subscription_items_price_wins_over_the_catalogs():
    catalog = _price(id="price_list", unit_amount=3, unit_amount_decimal="3", created=9)
    negotiated = _price(id="price_negotiated", unit_amount=None, unit_amount_decimal="1.5",
                        active=False)
    subscription = {"id": "sub_1", "currency": "usd", "items": {"data": [
        {"id": "si_1", "price": {"id": "price_negotiated"},
         "metadata": {"sf_subscription_id": "a0XA"}}]}}
    prices = map_usage_prices([catalog, negotiated], PRODUCTS, [subscription])
    usage = map_usage(_events((10, "2026-04-20T10:00:00Z"), (10, "2026-04-20T11:00:00Z",),
                              line="a0XA"), prices, CUSTOMERS, CONTRACT_LINES)
    assert list(usage["amount"]) == [15, 15]  # 1.5 x 10, not the list price 3 x 10
    line_price = prices[prices["contract_line_id"] == "sf:a0XA"].iloc[0]
    assert price_from_json(line_price["pricing"]).price_id == "price_negotiated"


def test_a_tiered_price_listed_without_its_tiers_is_not_rated_at_a_guess():
    # Stripe omits `tiers` unless expanded: such a price cannot be rated, and says why
    price = _price(billing_scheme="tiered", tiers_mode="graduated", tiers=None)
    prices = map_usage_prices([price], PRODUCTS)
    usage = map_usage(_events((10, "2026-04-20T10:00:00Z")), prices, CUSTOMERS, CONTRACT_LINES)
    assert pd.isna(usage["amount"].iloc[0])
    assert "tiered without tiers" in usage["_price_problem"].iloc[0]


def test_unpriced_usage_is_quarantined_with_the_reason_and_billing_ops_as_owner():
    company = canonical_company()
    usage = company["usage"].copy()
    usage["_price_problem"] = "price 'price_api': tiered without tiers"
    usage["amount"] = pd.array([pd.NA] * len(usage), dtype="Int64")
    company["usage"] = usage
    result = validate_canonical(company)
    held = result.quarantine[result.quarantine["source_table"] == "usage"]
    assert len(held) == len(usage) and set(held["rule"]) == {"unpriced_usage"}
    assert set(held["owner"]) == {"billing_ops"}
    assert held["reason"].str.contains("cannot be rated: price 'price_api'").all()
    counts = result.counts()["usage"]
    assert counts["rows_in"] == counts["accepted"] + counts["quarantined"]


def _subscription(price_id: str, currency: str = "usd", anchor: int | None = None) -> dict:
    return {"id": "sub_1", "currency": currency, "billing_cycle_anchor": anchor,
            "items": {"data": [{"id": "si_1", "price": {"id": price_id},
                                "metadata": {"sf_subscription_id": "a0XA"}}]}}


def test_the_subscription_bills_in_its_own_currency_whatever_the_customer_master_says():
    # the customer master says USD; the subscription bills EUR through currency_options
    price = _price(unit_amount=100, unit_amount_decimal="100",
                   currency_options={"eur": {"unit_amount_decimal": "90"}})
    prices = map_usage_prices([price], PRODUCTS, [_subscription("price_api", "eur")])
    usage = map_usage(_events((10, "2026-04-20T10:00:00Z")), prices, CUSTOMERS, CONTRACT_LINES)
    assert (usage["amount"].iloc[0], usage["currency"].iloc[0]) == (900, "EUR")


def test_periods_count_from_the_subscriptions_billing_cycle_anchor_to_the_second():
    # anchor 15 Apr 14:00 UTC: 15 May 09:00 is still the first period, so 300 + 300 calls are
    # one package (counting from the contract line's midnight start would have made two)
    price = _price(unit_amount=2000, unit_amount_decimal="2000",
                   transform_quantity={"divide_by": 1000, "round": "up"})
    anchor = int(pd.Timestamp("2026-04-15T14:00:00Z").timestamp())
    prices = map_usage_prices([price], PRODUCTS, [_subscription("price_api", anchor=anchor)])
    usage = map_usage(_events((300, "2026-04-20T10:00:00Z"), (300, "2026-05-15T09:00:00Z")),
                      prices, CUSTOMERS, CONTRACT_LINES)
    assert list(usage["amount"]) == [2000, 0]


def test_usage_no_subscription_anchors_is_rated_in_calendar_periods_of_the_prices_interval():
    price = _price(unit_amount=5000, unit_amount_decimal="5000",
                   transform_quantity={"divide_by": 1000, "round": "up"},
                   recurring={"usage_type": "metered", "interval": "year", "interval_count": 1})
    # no contract line, no subscription: April and June 2026 share the calendar year 2026
    prices = map_usage_prices([price], PRODUCTS)
    usage = map_usage(_events((300, "2026-04-20T10:00:00Z"), (300, "2026-06-20T10:00:00Z"),
                              line="unknown"), prices, CUSTOMERS, CONTRACT_LINES)
    assert list(usage["amount"]) == [5000, 0]


def test_a_meter_that_bills_its_last_reading_is_not_rated_as_a_sum():
    price = _price(unit_amount=2, unit_amount_decimal="2")
    meter = {"id": "mtr_api", "object": "billing.meter", "default_aggregation": {"formula": "last"}}
    prices = map_usage_prices([price], PRODUCTS, meters=[meter])
    usage = map_usage(_events((5, "2026-04-20T10:00:00Z")), prices, CUSTOMERS, CONTRACT_LINES)
    assert pd.isna(usage["amount"].iloc[0])
    assert "aggregates by 'last'" in usage["_price_problem"].iloc[0]


def test_an_archived_price_never_rates_usage_and_an_empty_custom_amount_is_not_one():
    archived = _price(id="price_old", unit_amount=3, unit_amount_decimal="3", active=False)
    current = _price(id="price_new", unit_amount=2, unit_amount_decimal="2", created=2,
                     # Stripe's own openapi fixture sends this object with every field null
                     custom_unit_amount={"maximum": None, "minimum": None, "preset": None})
    prices = map_usage_prices([archived, current], PRODUCTS)
    assert list(prices["price_id"]) == ["price_new"]
    assert prices["problem"].isna().all()
