"""Raw metered usage events -> canonical rated usage (vectorized: usage is the volume table).

A raw event (``usage/usage_events_YYYY-MM-DD.parquet``) carries ``event_id``, ``event_name``,
``stripe_customer_id``, ``sf_subscription_id``, ``product_code``, ``quantity`` and ``timestamp``
(UTC). Rating is integer math: ``amount = quantity x unit_amount`` in minor units of the customer's
billing currency, with the unit price of the metered price for (product code, currency). A
quantity that is not a whole non-negative number cannot be rated exactly and gets a null amount;
an event whose customer or price is unknown keeps null links; validation rejects such rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from q2c_pipeline.sources.wire import PAYLOAD_COLUMN, payloads_from_frame

SOURCE_SYSTEM = "usage"
USAGE_COLUMNS = [
    "source_system", "source_id", "correlation_id", "usage_id", "occurred_at", "quantity",
    "amount", "currency", "contract_line_id", "customer_id", "product_code", "invoice_line_id",
]
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

    - ``usage_prices``: ``product_code, currency, unit_amount`` (``billing.map_usage_prices``).
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
    })
    frame = frame.merge(_customer_keys(customers), on="billing_customer_id", how="left")
    frame = frame.merge(_price_keys(usage_prices), on=["product_code", "currency"], how="left")
    frame = frame.merge(_contract_keys(contract_lines), on="contract_line_id", how="left")
    frame = frame.sort_values("_row", kind="stable").reset_index(drop=True)

    rateable = quantity.notna() & (quantity >= 0) & (quantity == np.floor(quantity))
    rateable &= frame["unit_amount"].notna().to_numpy()
    units = quantity.where(rateable, 0).astype("int64")
    amount = pd.array(
        units.to_numpy() * frame["unit_amount"].fillna(0).astype("int64").to_numpy(),
        dtype="Int64",
    )
    amount[~rateable.to_numpy()] = pd.NA

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
    out[PAYLOAD_COLUMN] = pd.Series(payloads_from_frame(raw[EVENT_COLUMNS]), dtype=object)
    if n_rows == 0:
        out[PAYLOAD_COLUMN] = pd.Series([], dtype=object)
    return out[[*USAGE_COLUMNS, PAYLOAD_COLUMN]]


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


def _price_keys(usage_prices: pd.DataFrame) -> pd.DataFrame:
    keys = usage_prices[["product_code", "currency", "unit_amount"]].dropna()
    return keys.drop_duplicates(["product_code", "currency"], keep="first")


def _contract_keys(contract_lines: pd.DataFrame | None) -> pd.DataFrame:
    if contract_lines is None:
        return pd.DataFrame({"contract_line_id": pd.Series([], dtype=object),
                             "contract_id": pd.Series([], dtype=object)})
    keys = contract_lines[["contract_line_id", "contract_id"]].dropna(subset=["contract_line_id"])
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
