"""Raw metered usage events -> canonical rated usage (vectorized: usage is the volume table).

A raw event (``usage/usage_events_YYYY-MM-DD.parquet``) carries ``event_id``, ``event_name``,
``stripe_customer_id``, ``sf_subscription_id``, ``product_code``, ``quantity`` and ``timestamp``
(UTC). Rating is exact integer math in minor units of the customer's billing currency, at the
metered Stripe price of the event's subscription item (else the catalog's price for its product
code and currency), with every shape Stripe prices usage with (``usage_pricing``): an event's
amount is what its billing period bills with it less without it. A quantity that is not a whole
non-negative number cannot be rated exactly and gets a null amount; an event whose customer or
price is unknown keeps null links; validation rejects such rows (``unpriced_usage`` names why).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from q2c_pipeline.sources.usage_pricing import UsagePrice, price_from_json
from q2c_pipeline.sources.wire import FIELD_PROBLEMS, PAYLOAD_COLUMN, payloads_from_frame

SOURCE_SYSTEM = "usage"
USAGE_COLUMNS = [
    "source_system", "source_id", "correlation_id", "usage_id", "occurred_at", "quantity",
    "amount", "currency", "contract_line_id", "customer_id", "product_code", "invoice_line_id",
]
# Periods of usage no subscription anchors: calendar months and years, weeks from a Monday.
CALENDAR_ANCHOR = pd.Timestamp("2001-01-01")
# The day file an event came in (``usage_events_<day>``), stamped at landing.
FILE_DAY_COLUMN = "_file_day"
# How far an event may be dated outside its day file: a day of clock skew after it, Stripe's
# 35-day limit on meter events before it.
FUTURE_TOLERANCE = pd.Timedelta(days=1)
LATE_TOLERANCE = pd.Timedelta(days=35)
EVENT_COLUMNS = [
    "event_id", "event_name", "stripe_customer_id", "sf_subscription_id", "product_code",
    "quantity", "timestamp",
]


def map_usage(
    events: pd.DataFrame,
    usage_prices: pd.DataFrame,
    customers: pd.DataFrame,
    contract_lines: pd.DataFrame | None = None,
    invoice_lines: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Raw events -> canonical usage rows, one per event, in the events' order.

    - ``usage_prices``: the price table of ``billing.map_usage_prices``.
    - ``customers``: canonical customers; ``stripe:<stripe_customer_id>`` is matched against
      ``billing_customer_id`` to get ``customer_id`` and the billing ``currency``.
    - ``contract_lines`` (optional, canonical): gives the event's contract, its correlation id.
    - ``invoice_lines`` (optional, canonical): the line that billed the event, i.e. the line for
      the same contract line whose half-open service period contains ``occurred_at``.
    """
    raw = events.reset_index(drop=True)
    for column in EVENT_COLUMNS:
        if column not in raw.columns:
            raw[column] = None
    n_rows = len(raw)

    event_id = _text(raw["event_id"])
    usage_id = _objects("usage:" + event_id)
    contract_line_id = _objects("sf:" + _text(raw["sf_subscription_id"]))
    billing_customer_id = _objects("stripe:" + _text(raw["stripe_customer_id"]))
    product_code = _objects(_text(raw["product_code"]))
    event_id = _objects(event_id)
    occurred_at = _naive_utc(raw["timestamp"])
    quantity = pd.to_numeric(raw["quantity"], errors="coerce").astype("float64")

    frame = pd.DataFrame({
        "_row": np.arange(n_rows),
        "billing_customer_id": billing_customer_id,
        "product_code": product_code,
        "contract_line_id": contract_line_id,
        "occurred_at": occurred_at,
        "event_id": event_id,
    })
    frame = frame.merge(_customer_keys(customers), on="billing_customer_id", how="left")
    frame = frame.merge(_contract_keys(contract_lines), on="contract_line_id", how="left")
    frame = _attach_prices(frame, usage_prices)
    frame = frame.sort_values("_row", kind="stable").reset_index(drop=True)

    whole = quantity.notna() & (quantity >= 0) & (quantity == np.floor(quantity))
    amount, refused = _rate(frame, quantity.where(whole, 0).astype("int64"),
                            whole.to_numpy() & frame["pricing"].notna().to_numpy())

    correlation = frame["contract_id"].where(frame["contract_id"].notna(), usage_id)
    out = pd.DataFrame({
        "source_system": SOURCE_SYSTEM,
        "source_id": event_id,
        "correlation_id": correlation.astype(object),
        "usage_id": usage_id,
        "occurred_at": occurred_at,
        "quantity": quantity,
        "amount": amount,
        "currency": frame["currency"].astype(object),
        "contract_line_id": contract_line_id,
        "customer_id": frame["customer_id"].astype(object),
        "product_code": product_code,
        "invoice_line_id": _billing_lines(frame, invoice_lines),
    })
    for column in ["correlation_id", "currency", "customer_id", "invoice_line_id"]:
        out[column] = out[column].where(out[column].notna(), None).astype(object)
    # why an event with a customer and a product has no price (validation: unpriced_usage)
    priced = frame["pricing"].notna()
    problem = frame["problem"].where(frame["problem"].notna(), np.where(
        frame["currency"].notna() & frame["product_code"].notna(),
        "no metered Stripe price for product code " + frame["product_code"].astype(str)
        + " in " + frame["currency"].astype(str), None))
    problem = problem.where(~priced & frame["currency"].notna(), None)
    out["_price_problem"] = refused.where(refused.notna(), problem).astype(object)
    unmatched = frame["billing_customer_id"].notna() & frame["customer_id"].isna()
    named = frame["billing_customer_id"].astype(str).str.removeprefix("stripe:").map(repr)
    out["_customer_problem"] = pd.Series(np.where(
        unmatched, "stripe_customer_id " + named
        + " is no customer's billing id (customers.billing_customer_id)", None), dtype=object)
    out[FIELD_PROBLEMS] = _outside_window(occurred_at, raw.get(FILE_DAY_COLUMN))
    out[PAYLOAD_COLUMN] = pd.Series(payloads_from_frame(raw[EVENT_COLUMNS]), dtype=object)
    if n_rows == 0:
        out[PAYLOAD_COLUMN] = pd.Series([], dtype=object)
    return out[[*USAGE_COLUMNS, "_price_problem", "_customer_problem", FIELD_PROBLEMS,
                PAYLOAD_COLUMN]]


def _outside_window(occurred_at: pd.Series, file_day: pd.Series | None) -> pd.Series:
    """Events dated outside the window of the day file they came in: later than the day's end
    plus ``FUTURE_TOLERANCE`` (usage is reported after it happens: a later stamp is a clock or
    export error) or more than ``LATE_TOLERANCE`` before the day (Stripe accepts meter events
    up to 35 days old). Such an event is held, never rated into a period it cannot be in."""
    problems = pd.Series([None] * len(occurred_at), index=occurred_at.index, dtype=object)
    if file_day is None or not len(occurred_at):
        return problems
    day = pd.to_datetime(file_day, errors="coerce")
    after = occurred_at >= day + pd.Timedelta(days=1) + FUTURE_TOLERANCE
    before = occurred_at < day - LATE_TOLERANCE
    for at in np.flatnonzero((after | before).fillna(False).to_numpy()):
        stamp, named = occurred_at.iloc[at], file_day.iloc[at]
        problems.iloc[at] = [("outside_usage_window", "timestamp",
                              f"field 'timestamp' value {stamp:%Y-%m-%dT%H:%M:%SZ} is outside "
                              f"the window of its day file usage_events_{named} (from "
                              f"{LATE_TOLERANCE.days} days before the day to "
                              f"{FUTURE_TOLERANCE.days} day after it)")]
    return problems


def _text(values: pd.Series) -> pd.Series:
    """Stripped text with blanks as missing (pandas string dtype, vectorized)."""
    text = values.astype("string").str.strip()
    return text.where(text != "")


def _objects(values: pd.Series) -> pd.Series:
    """String-dtype values -> object dtype with None for missing (the mapped frames' form)."""
    return values.astype(object).where(values.notna(), None)


def _naive_utc(values: pd.Series) -> pd.Series:
    parsed = pd.to_datetime(values, utc=True, errors="coerce")
    return parsed.dt.tz_localize(None).astype("datetime64[ns]")


def _customer_keys(customers: pd.DataFrame) -> pd.DataFrame:
    keys = customers[["billing_customer_id", "customer_id", "currency"]].dropna(
        subset=["billing_customer_id"]
    )
    return keys.drop_duplicates("billing_customer_id", keep="first")


def _attach_prices(frame: pd.DataFrame, usage_prices: pd.DataFrame) -> pd.DataFrame:
    """The price each event is rated at: its subscription item's (by contract line; the
    subscription's currency is the currency billed, whatever the customer master says), else
    the catalog's active metered price for its product code and the customer's currency."""
    prices = usage_prices if len(usage_prices) else pd.DataFrame(
        columns=["product_code", "currency", "contract_line_id", "pricing", "problem", "anchor"])
    if "anchor" not in prices:
        prices = prices.assign(anchor=None)
    by_line = prices[prices["contract_line_id"].notna()].drop_duplicates(
        "contract_line_id")[["contract_line_id", "currency", "pricing", "problem", "anchor"]]
    catalog = prices[prices["contract_line_id"].isna()].drop_duplicates(
        ["product_code", "currency"])[["product_code", "currency", "pricing", "problem"]]
    frame = frame.merge(by_line.rename(columns={"currency": "line_currency"}),
                        on="contract_line_id", how="left")
    named = frame["pricing"].notna() | frame["problem"].notna()
    frame["currency"] = frame["line_currency"].where(named, frame["currency"])
    frame = frame.merge(catalog, on=["product_code", "currency"], how="left",
                        suffixes=("", "_catalog"))
    for column in ("pricing", "problem"):
        frame[column] = frame[column].where(named, frame[f"{column}_catalog"])
    anchor = pd.to_datetime(pd.to_numeric(frame["anchor"], errors="coerce"), unit="s")
    frame["anchor"] = anchor.where(anchor.notna(), frame["service_start"])
    return frame.drop(columns=["pricing_catalog", "problem_catalog", "line_currency"])


def _rate(frame: pd.DataFrame, units: pd.Series, rateable: np.ndarray
          ) -> tuple[pd.Series, pd.Series]:
    """Each event's amount: what its billing period's usage bills with it, less without it
    (``usage_pricing``), so a period's events add up to the period's amount exactly.

    The period is the price's interval counted from the subscription's
    ``billing_cycle_anchor`` (to the second), else the contract line's service start, else
    calendar periods (months and years from 1 January, weeks from Monday); events are taken in
    time order (then event id) within (contract line or customer and product, currency).

    Refused (the second series, the reason; the amount stays null): usage before the billing
    anchor (a period Stripe never bills), and usage on volume tiers whose billing period is not
    a calendar month (its rate depends on a total q2c would have to estimate;
    DECISIONLOG.md "Usage rated at what the period bills")."""
    amount = pd.array([pd.NA] * len(frame), dtype="Int64")
    refused = pd.Series([None] * len(frame), dtype=object)
    if not rateable.any():
        return amount, refused
    rows = frame.loc[rateable, ["_row", "occurred_at", "pricing", "anchor", "currency",
                                "contract_line_id", "billing_customer_id", "product_code",
                                "event_id"]].copy()
    rows["units"] = units.to_numpy()[rateable]
    rows = rows[rows["occurred_at"].notna()]
    for text, group in rows.groupby("pricing", sort=True):
        price = price_from_json(text)
        start = _period_start(group["occurred_at"], group["anchor"], price)
        owner = group["contract_line_id"].where(
            group["contract_line_id"].notna(),
            group["billing_customer_id"].astype(str) + "|" + group["product_code"].astype(str))
        ordered = group.assign(_owner=owner, _period=start).sort_values(
            ["_owner", "currency", "_period", "occurred_at", "event_id", "_row"],
            kind="mergesort")
        cumulative = ordered.groupby(["_owner", "currency", "_period"], sort=False)[
            "units"].cumsum().to_numpy(dtype="int64")
        before = cumulative - ordered["units"].to_numpy(dtype="int64")
        increase = price.amount(cumulative) - price.amount(before)
        amount[ordered["_row"].to_numpy()] = increase
        anchor = pd.to_datetime(ordered["anchor"])
        early = (anchor.notna() & (ordered["occurred_at"] < anchor)).to_numpy()
        refuse = np.full(len(ordered), None, dtype=object)
        refuse[early] = ("dated before its subscription's billing starts ("
                         + anchor[early].dt.strftime("%Y-%m-%d %H:%M").to_numpy().astype(object)
                         + " UTC): a period Stripe never bills")
        if price.scheme == "volume":
            calendar = (price.interval == "month" and price.interval_count == 1) & (
                ordered["_period"] == ordered["_period"].dt.to_period("M").dt.to_timestamp())
            refuse[(~calendar).to_numpy() & ~early] = (
                f"price {price.price_id!r}: volume tiers over a billing period that is not a "
                "calendar month reprice earlier months' usage by a total still to come; q2c "
                "does not estimate it (ASC 606-10-55-216..220)")
        rows = ordered["_row"].to_numpy()
        refused.iloc[rows] = refuse
        amount[rows[pd.notna(refuse)]] = pd.NA
    return amount, refused


def _period_start(moments: pd.Series, anchors: pd.Series, price: UsagePrice) -> pd.Series:
    """The start of the billing period holding each moment (vectorized calendar arithmetic)."""
    moment = pd.to_datetime(moments)
    anchor = pd.to_datetime(anchors).where(anchors.notna(), CALENDAR_ANCHOR)
    if price.interval in ("day", "week"):
        length = pd.Timedelta(days=price.interval_count * (7 if price.interval == "week" else 1))
        return anchor + ((moment - anchor) // length) * length
    step = price.interval_count * (12 if price.interval == "year" else 1)
    months = ((moment.dt.year - anchor.dt.year) * 12 + moment.dt.month - anchor.dt.month
              ).to_numpy()
    k = (months // step) * step
    late = (_add_months(anchor, k) > moment).to_numpy()
    return _add_months(anchor, np.where(late, k - step, k))


def _add_months(anchor: pd.Series, months: np.ndarray) -> pd.Series:
    """``anchor`` + ``months`` months, the day clamped to the month's end (as Stripe anchors),
    at the anchor's time of day."""
    total = anchor.dt.year.to_numpy() * 12 + anchor.dt.month.to_numpy() - 1 + months
    year, month = total // 12, total % 12 + 1
    first = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": 1}))
    last_day = first.dt.days_in_month.to_numpy()
    day = np.minimum(anchor.dt.day.to_numpy(), last_day)
    time_of_day = (anchor - anchor.dt.normalize()).to_numpy()
    return pd.Series(first.to_numpy() + pd.to_timedelta(day - 1, unit="D").to_numpy()
                     + time_of_day, index=anchor.index)


def _contract_keys(contract_lines: pd.DataFrame | None) -> pd.DataFrame:
    if contract_lines is None:
        return pd.DataFrame({"contract_line_id": pd.Series([], dtype=object),
                             "contract_id": pd.Series([], dtype=object),
                             "service_start": pd.Series([], dtype="datetime64[ns]")})
    keys = contract_lines[["contract_line_id", "contract_id", "service_start"]].dropna(
        subset=["contract_line_id"])
    return keys.drop_duplicates("contract_line_id", keep="first")


def _billing_lines(frame: pd.DataFrame, invoice_lines: pd.DataFrame | None) -> pd.Series:
    """For each event row, the invoice line that billed it (or None), vectorized."""
    result = pd.Series([None] * len(frame), dtype=object)
    if invoice_lines is None or invoice_lines.empty or frame.empty:
        return result
    lines = invoice_lines[
        ["invoice_line_id", "contract_line_id", "service_start", "service_end"]
    ].dropna()
    events = frame[["_row", "contract_line_id", "occurred_at"]].dropna()
    joined = events.merge(lines, on="contract_line_id", how="inner")
    inside = (joined["occurred_at"] >= joined["service_start"]) & (
        joined["occurred_at"] < joined["service_end"]
    )
    matched = joined[inside].sort_values(["_row", "invoice_line_id"], kind="stable")
    matched = matched.drop_duplicates("_row", keep="first")
    result.iloc[matched["_row"].to_numpy()] = matched["invoice_line_id"].to_numpy()
    return result
