"""Canonical product catalog: revenue treatment and standalone selling price per product code."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from q2c_pipeline.schemas.base import CURRENCY_PATTERN, REVENUE_PATTERNS, CanonicalModel


class Products(CanonicalModel):
    product_code: Series[str] = pa.Field(unique=True, str_length={"min_value": 1})
    revenue_pattern: Series[str] = pa.Field(isin=REVENUE_PATTERNS)
    name: Series[str] = pa.Field(nullable=True)
    family: Series[str] = pa.Field(nullable=True)
    ssp_amount: Series[pd.Int64Dtype] = pa.Field(
        nullable=True, ge=0, description="SSP, minor units."
    )
    ssp_currency: Series[str] = pa.Field(nullable=True, str_matches=CURRENCY_PATTERN)
