"""ERP reference data (CSV exports, every column text) -> canonical reference frames.

The ERP owns legal entities, the chart of accounts, accounting periods, tax codes, FX rates and the
product catalog (revenue pattern and standalone selling price). Money arrives as decimal strings
and leaves as integer minor units. Rows are neither dropped nor repaired: a value that cannot be
read becomes null (or stays as sent) so validation quarantines the row with its payload.
"""

from __future__ import annotations

import pandas as pd

from q2c_pipeline.sources.wire import (
    FLOAT,
    PAYLOAD_COLUMN,
    STR,
    column_spec,
    minor_from_wire,
    payloads_from_frame,
)

LEGAL_ENTITY_COLUMNS = column_spec("legal_entities")
CHART_OF_ACCOUNTS_COLUMNS = column_spec("chart_of_accounts")
ACCOUNTING_PERIOD_COLUMNS = column_spec("accounting_periods")
TAX_CODE_COLUMNS = column_spec("tax_codes")
FX_RATE_COLUMNS = column_spec("fx_rates")
PRODUCT_COLUMNS = column_spec("products")

_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def map_legal_entities(df: pd.DataFrame) -> pd.DataFrame:
    """``legal_entities.csv`` -> canonical legal entities (currency upper-cased)."""
    text = _text_columns(df, LEGAL_ENTITY_COLUMNS)
    text["functional_currency"] = _upper(text["functional_currency"])
    columns = dict(LEGAL_ENTITY_COLUMNS)
    if "timezone" in df.columns:  # optional: the entity's IANA time zone (empty = UTC)
        zone = df["timezone"].astype("string").str.strip()
        text["timezone"] = zone.where(zone.notna() & (zone != ""), None).astype(object)
        columns["timezone"] = STR
    return _finish(text, df, columns)


def map_chart_of_accounts(df: pd.DataFrame) -> pd.DataFrame:
    """``chart_of_accounts.csv`` -> one row per entity and logical account."""
    return _finish(_text_columns(df, CHART_OF_ACCOUNTS_COLUMNS), df, CHART_OF_ACCOUNTS_COLUMNS)


def map_accounting_periods(df: pd.DataFrame) -> pd.DataFrame:
    """``accounting_periods.csv`` -> entity periods; ``status`` lower-cased, ``closed_at`` UTC."""
    text = _text_columns(df, ACCOUNTING_PERIOD_COLUMNS)
    text["status"] = _lower(text["status"])
    text["closed_at"] = _timestamps(text["closed_at"])
    return _finish(text, df, ACCOUNTING_PERIOD_COLUMNS)


def map_tax_codes(df: pd.DataFrame) -> pd.DataFrame:
    """``tax_codes.csv`` -> tax codes with an integer rate in basis points."""
    text = _text_columns(df, TAX_CODE_COLUMNS)
    rate = pd.to_numeric(text["rate_bps"], errors="coerce")
    integral = rate.notna() & (rate == rate.round())
    text["rate_bps"] = rate.where(integral).astype("Int64")
    flag = _lower(text["is_inclusive"])
    text["is_inclusive"] = pd.array(
        flag.map(lambda v: True if v in _TRUE else False if v in _FALSE else None),
        dtype="boolean",
    )
    return _finish(text, df, TAX_CODE_COLUMNS)


def map_fx_rates(df: pd.DataFrame) -> pd.DataFrame:
    """``fx_rates.csv`` -> dated rates; the rate stays a decimal string (exact)."""
    text = _text_columns(df, FX_RATE_COLUMNS)
    text["rate_date"] = _timestamps(text["rate_date"])
    text["from_currency"] = _upper(text["from_currency"])
    text["to_currency"] = _upper(text["to_currency"])
    return _finish(text, df, FX_RATE_COLUMNS)


def map_products(catalog_df: pd.DataFrame) -> pd.DataFrame:
    """ERP product catalog -> canonical products; SSP decimal string -> minor units.

    The catalog is the authority for a product's revenue pattern and SSP (not Salesforce).
    """
    text = _text_columns(catalog_df, PRODUCT_COLUMNS)
    text["revenue_pattern"] = _lower(text["revenue_pattern"])
    text["ssp_currency"] = _upper(text["ssp_currency"])
    text["ssp_amount"] = pd.array(
        [
            minor_from_wire(amount, currency)
            for amount, currency in zip(text["ssp_amount"], text["ssp_currency"], strict=True)
        ],
        dtype="Int64",
    )
    # an integral term becomes a number; anything else stays as sent, for validation to refuse
    text["ssp_term_months"] = text["ssp_term_months"].map(
        lambda v: int(v) if isinstance(v, str) and v.isdigit() else v).astype(object)
    return _finish(text, catalog_df, PRODUCT_COLUMNS)


def _text_columns(df: pd.DataFrame, spec: dict[str, str]) -> pd.DataFrame:
    """The spec's columns as stripped text, blanks and absent columns as None."""
    out = pd.DataFrame(index=df.index)
    for column in spec:
        if column in df.columns:
            values = df[column].astype(object)
            values = values.where(values.notna(), None)
            stripped = values.map(lambda v: None if v is None else str(v).strip() or None)
            out[column] = stripped.astype(object)
        else:
            out[column] = pd.Series([None] * len(df), index=df.index, dtype=object)
    return out


def _upper(values: pd.Series) -> pd.Series:
    return values.map(lambda v: None if v is None else v.upper()).astype(object)


def _lower(values: pd.Series) -> pd.Series:
    return values.map(lambda v: None if v is None else v.lower()).astype(object)


def _timestamps(values: pd.Series) -> pd.Series:
    parsed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    return parsed.dt.tz_localize(None).astype("datetime64[ns]")


def _finish(mapped: pd.DataFrame, source: pd.DataFrame, spec: dict[str, str]) -> pd.DataFrame:
    out = mapped.reset_index(drop=True)
    for column, kind in spec.items():
        if kind == STR:
            out[column] = out[column].astype(object)
        elif kind == FLOAT:
            out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
    out[PAYLOAD_COLUMN] = pd.Series(
        payloads_from_frame(source.reset_index(drop=True).astype(object)), dtype=object
    ) if len(source) else pd.Series([], dtype=object)
    return out[[*spec, PAYLOAD_COLUMN]]
