"""Canonical invoices (one row per invoice)."""

from __future__ import annotations

from typing import Optional

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
    amount_paid: Optional[Series[pd.Int64Dtype]] = pa.Field(
        nullable=True, ge=0,
        description="What the source says the invoice's payments add up to (Stripe "
        "amount_paid less amount_paid_off_stripe), minor units; empty = not stated or paid "
        "out of band.")
    amount_due: Optional[Series[pd.Int64Dtype]] = pa.Field(
        nullable=True,
        description="What the source asked the customer to pay (Stripe amount_due: the total "
        "less pre-payment credit notes, plus a positive starting balance), minor units.")
    amount_overpaid: Optional[Series[pd.Int64Dtype]] = pa.Field(
        nullable=True, ge=0,
        description="What the source says was paid beyond the invoice and credited to the "
        "customer's balance (Stripe amount_overpaid), minor units; empty = none.")
