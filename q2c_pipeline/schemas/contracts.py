"""Canonical contracts (one row per contract version) and contract lines (performance
obligations)."""

from __future__ import annotations

from typing import Optional

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from q2c_pipeline.schemas.base import CURRENCY_PATTERN, REVENUE_PATTERNS, SourcedModel


class Contracts(SourcedModel):
    contract_id: Series[str] = pa.Field(str_length={"min_value": 1})
    customer_id: Series[str]
    legal_entity: Series[str]
    currency: Series[str] = pa.Field(str_matches=CURRENCY_PATTERN)
    signed_date: Series[pd.Timestamp] = pa.Field(
        description="When this version was signed (agreed); a close as of an earlier day does "
        "not see it.")
    effective_date: Series[pd.Timestamp] = pa.Field(
        nullable=True,
        description="When this version's changes take effect; empty = signed_date. A close "
        "before the later of the two does not see the version.")
    transaction_price: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    version: Series[int] = pa.Field(ge=1)
    amends_contract_id: Series[str] = pa.Field(nullable=True)
    status: Series[str] = pa.Field(nullable=True)

    @pa.dataframe_check
    def one_row_per_contract_version(cls, df: pd.DataFrame) -> Series[bool]:
        return ~df.duplicated(subset=["contract_id", "version"], keep=False)


class ContractLines(SourcedModel):
    contract_line_id: Series[str] = pa.Field(unique=True, str_length={"min_value": 1})
    contract_id: Series[str]
    product_code: Series[str]
    quantity: Series[float] = pa.Field(description="Units; negative only on amendment deltas.")
    amount: Series[int] = pa.Field(description="Stated price for quantity and term, minor units.")
    ssp_amount: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=0)
    service_start: Series[pd.Timestamp] = pa.Field(nullable=True)
    service_end: Series[pd.Timestamp] = pa.Field(nullable=True)
    revenue_pattern: Series[str] = pa.Field(nullable=True, isin=REVENUE_PATTERNS)
    revises_line_id: Series[str] = pa.Field(nullable=True)
    effective_date: Series[pd.Timestamp] = pa.Field(nullable=True)
    allocation_group: Series[str] = pa.Field(nullable=True)
    version: Series[pd.Int64Dtype] = pa.Field(
        nullable=True, ge=1,
        description="The contract version that introduced the line (an amendment's delta or "
        "added product); empty = derived from effective_date (version 1 without one).")
    modification_treatment: Optional[Series[str]] = pa.Field(
        nullable=True,
        isin=["prospective", "catch_up", "separate_contract"],
        description="How an amendment delta is accounted for (ASC 606-10-25-12/13); "
        "empty = prospective.",
    )

    @pa.dataframe_check
    def quantity_negative_only_on_amendments(cls, df: pd.DataFrame) -> Series[bool]:
        return (df["quantity"] >= 0) | df["revises_line_id"].notna()

    @pa.dataframe_check
    def service_end_after_start(cls, df: pd.DataFrame) -> Series[bool]:
        both = df["service_start"].notna() & df["service_end"].notna()
        return ~both | (df["service_end"] > df["service_start"])

    @pa.dataframe_check
    def amount_negative_only_on_amendments(cls, df: pd.DataFrame) -> Series[bool]:
        # a negative price on a line that amends nothing is not a sale: a credit or a keying
        # error for sales ops to look at, never allocated as if it were a discount
        # (a negative quantity is the negative_quantity rule's to explain)
        # (an empty amount or quantity is another rule's: missing_value, invalid_type)
        amount = pd.to_numeric(df["amount"], errors="coerce").fillna(0)
        quantity = pd.to_numeric(df["quantity"], errors="coerce").fillna(0)
        return ((amount >= 0) | df["revises_line_id"].notna() | (quantity < 0)).astype(bool)
