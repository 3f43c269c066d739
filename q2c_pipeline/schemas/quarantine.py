"""The quarantine: one row per rejected source record and broken rule."""

from __future__ import annotations

import hashlib

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from q2c_pipeline.schemas.base import CanonicalModel

OWNERS = ["sales_ops", "billing_ops", "controllership"]

# What makes one exception: the record as received, where it was headed and the rule it broke.
# A new version of the record from the source is a new exception (a decision taken on the old
# one does not carry over to content nobody has looked at).
EXCEPTION_ID_PARTS = ["source_system", "source_table", "record_id", "field", "rule", "payload"]


def exception_ids(quarantine: pd.DataFrame) -> pd.Series:
    """The stable id of each quarantine row: md5 of its identifying parts."""
    parts = quarantine[EXCEPTION_ID_PARTS].astype(object).where(
        quarantine[EXCEPTION_ID_PARTS].notna(), "")
    return pd.Series([hashlib.md5("|".join(map(str, row)).encode("utf-8")).hexdigest()
                      for row in parts.itertuples(index=False)], index=quarantine.index,
                     dtype=object)


class Quarantine(CanonicalModel):
    source_system: Series[str]
    source_table: Series[str] = pa.Field(description="Canonical table the record was headed for.")
    record_id: Series[str]
    field: Series[str] = pa.Field(nullable=True, description="Column that broke the rule.")
    rule: Series[str] = pa.Field(description="Stable rule name, e.g. unknown_product_code.")
    reason: Series[str] = pa.Field(description="Human-readable: record, field, rule and value.")
    owner: Series[str] = pa.Field(isin=OWNERS, description="Team that must fix it at the source.")
    correlation_id: Series[str] = pa.Field(nullable=True)
    legal_entity: Series[str] = pa.Field(
        nullable=True, description="Legal entity whose close the record is stuck in, if known."
    )
    customer_id: Series[str] = pa.Field(nullable=True, description="Customer, if known.")
    effective_date: Series[str] = pa.Field(
        nullable=True, description="Business date (YYYY-MM-DD) whose period the record is stuck "
        "in: the invoice's finalization, the contract's effective date, the payment's date; its "
        "parent's where it has none; null when unknown (it then blocks every period's lock).")
    payload: Series[str] = pa.Field(description="The source record as received, JSON.")
