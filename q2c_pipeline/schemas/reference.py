"""Reference data from the ERP: legal entities, chart of accounts, periods, tax codes, FX rates."""

from __future__ import annotations

import zoneinfo
from typing import Optional

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from q2c_pipeline.schemas.base import CURRENCY_PATTERN, CanonicalModel

TIME_ZONES = sorted(zoneinfo.available_timezones())


class LegalEntities(CanonicalModel):
    """One row per legal entity."""

    legal_entity: Series[str] = pa.Field(unique=True, str_length={"min_value": 1})
    functional_currency: Series[str] = pa.Field(str_matches=CURRENCY_PATTERN)
    country: Series[str] = pa.Field(nullable=True)
    calendar: Series[str] = pa.Field(nullable=True)
    timezone: Optional[Series[str]] = pa.Field(
        nullable=True, isin=TIME_ZONES,
        description="IANA time zone of the entity's books (empty = UTC): event times are dated "
        "in it (an invoice finalized 02:00 UTC on 1 February is January's in Los Angeles).")
    settlement_currencies: Optional[Series[str]] = pa.Field(
        nullable=True, str_matches=r"^[A-Z]{3}( [A-Z]{3})*$",
        description="Currencies the entity holds cash in, space-separated (empty = its "
        "functional currency): cash in any other currency is converted when it moves.")


class ChartOfAccounts(CanonicalModel):
    """One row per entity and logical account: the GL account it posts to."""

    legal_entity: Series[str]
    account: Series[str] = pa.Field(description="Logical account (canonical-model.md).")
    gl_account: Series[str] = pa.Field(str_length={"min_value": 1})
    gl_name: Series[str] = pa.Field(nullable=True)
    department: Series[str] = pa.Field(nullable=True)

    @pa.dataframe_check
    def one_mapping_per_entity_account(cls, df: pd.DataFrame) -> Series[bool]:
        return ~df.duplicated(subset=["legal_entity", "account"], keep=False)


class AccountingPeriods(CanonicalModel):
    """One row per entity and period (``YYYY-MM``)."""

    legal_entity: Series[str]
    period: Series[str] = pa.Field(str_matches=r"^\d{4}-(0[1-9]|1[0-2])$")
    status: Series[str] = pa.Field(isin=["open", "closed"])
    closed_at: Series[pd.Timestamp] = pa.Field(nullable=True)


class TaxCodes(CanonicalModel):
    """One row per tax code."""

    tax_code: Series[str] = pa.Field(unique=True)
    country: Series[str] = pa.Field(nullable=True)
    rate_bps: Series[int] = pa.Field(ge=0, le=10_000, description="Rate in basis points.")
    is_inclusive: Series[bool]


class FxRates(CanonicalModel):
    """1 ``from_currency`` = ``rate`` ``to_currency`` from ``rate_date`` on.

    ``rate`` is a decimal string (exact); the engine parses it with ``decimal.Decimal``.
    """

    rate_date: Series[pd.Timestamp]
    from_currency: Series[str] = pa.Field(str_matches=CURRENCY_PATTERN)
    to_currency: Series[str] = pa.Field(str_matches=CURRENCY_PATTERN)
    rate: Series[str] = pa.Field(str_matches=r"^\d+(\.\d+)?$")
