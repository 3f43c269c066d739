"""Canonical rated usage records (one row per usage event)."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from q2c_pipeline.schemas.base import CURRENCY_PATTERN, SourcedModel


class Usage(SourcedModel):
    usage_id: Series[str] = pa.Field(str_length={"min_value": 1})
    occurred_at: Series[pd.Timestamp]
    quantity: Series[float] = pa.Field(ge=0)
    amount: Series[int] = pa.Field(description=(
        "Rated amount, minor units: what the event adds to its billing period's amount "
        "(negative only when a volume tier lowers the rate of every unit; usage_pricing)."))
    currency: Series[str] = pa.Field(str_matches=CURRENCY_PATTERN)
    contract_line_id: Series[str] = pa.Field(nullable=True)
    customer_id: Series[str] = pa.Field(nullable=True)
    product_code: Series[str] = pa.Field(nullable=True)
    invoice_line_id: Series[str] = pa.Field(nullable=True)
