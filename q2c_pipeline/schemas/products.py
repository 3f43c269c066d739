"""Canonical product catalog: revenue treatment and standalone selling price per product code.

The ERP catalog is the authority for SSP: ``ssp_amount`` is the price of one unit for
``ssp_term_months`` (or of one unit, when empty) in ``ssp_currency``; see
``q2c_pipeline.revenue.ssp`` for how it is scaled to a contract line.
"""

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
    ssp_term_months: Series[pd.Int64Dtype] = pa.Field(
        nullable=True, ge=1,
        description="The term ssp_amount is quoted for (12 = per unit per year); empty = per "
        "unit, whatever the service period.")
