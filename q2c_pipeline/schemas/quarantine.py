"""The quarantine: one row per rejected source record and broken rule."""

from __future__ import annotations

import pandera.pandas as pa
from pandera.typing import Series

from q2c_pipeline.schemas.base import CanonicalModel

OWNERS = ["sales_ops", "billing_ops", "controllership"]


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
    payload: Series[str] = pa.Field(description="The source record as received, JSON.")
