"""Canonical invoices (one row per invoice)."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from q2c_pipeline.schemas.base import CURRENCY_PATTERN, SourcedModel


class Invoices(SourcedModel):
    invoice_id: Series[str] = pa.Field(unique=True, str_length={"min_value": 1})
    customer_id: Series[str]
    currency: Series[str] = pa.Field(str_matches=CURRENCY_PATTERN)
    finalized_at: Series[pd.Timestamp]
    contract_id: Series[str] = pa.Field(nullable=True)
    legal_entity: Series[str] = pa.Field(nullable=True)
    due_date: Series[pd.Timestamp] = pa.Field(nullable=True)
    billing_system: Series[str] = pa.Field(nullable=True)
    status: Series[str] = pa.Field(isin=["open", "paid", "void", "uncollectible"])
