"""Shared pieces of the canonical pandera models.

Conventions (docs/canonical-model.md, pinned in DECISIONLOG.md):
- ids are strings, qualified by source where they could collide (``sf:800...``, ``stripe:in_...``);
- money is integer minor units of the row's ``currency`` (int64, or nullable ``Int64``), never
  float;
- timestamps are naive ``datetime64[ns]`` meaning UTC; service periods are half-open;
- every row that came from a source keeps ``source_system``, ``source_id`` and ``correlation_id``.
"""

from __future__ import annotations

import pandera.pandas as pa
from pandera.typing import Series

CURRENCY_PATTERN = r"^[A-Z]{3}$"
REVENUE_PATTERNS = ["ratable", "point_in_time", "usage"]


class CanonicalModel(pa.DataFrameModel):
    """Base config: strict column sets, coercion to the declared dtypes."""

    class Config:
        strict = True
        coerce = True


class SourcedModel(CanonicalModel):
    """Rows that came from a source system carry their lineage."""

    source_system: Series[str] = pa.Field(
        isin=["salesforce", "stripe", "erp", "usage", "interchange"],
        description="System the row was read from.",
    )
    source_id: Series[str] = pa.Field(str_length={"min_value": 1}, description="Id in that system.")
    correlation_id: Series[str] = pa.Field(
        str_length={"min_value": 1},
        description="The Salesforce contract or opportunity that caused the row, else its own id.",
    )
