"""Canonical credit notes, payments, refunds and invoice status events."""

from __future__ import annotations

from typing import Optional

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from q2c_pipeline.schemas.base import CURRENCY_PATTERN, SourcedModel


class CreditNotes(SourcedModel):
    credit_note_id: Series[str] = pa.Field(unique=True)
    issued_at: Series[pd.Timestamp]
    amount: Series[int] = pa.Field(
        gt=0, description="Credited after discounts, minor units, tax per tax_inclusive."
    )
    discount_amount: Series[int] = pa.Field(
        ge=0, description="Discount credited back off the line (Stripe discount_amount)."
    )
    currency: Series[str] = pa.Field(str_matches=CURRENCY_PATTERN)
    invoice_id: Series[str] = pa.Field(nullable=True)
    customer_id: Series[str] = pa.Field(nullable=True)
    invoice_line_id: Series[str] = pa.Field(nullable=True)
    tax_amount: Series[int] = pa.Field(ge=0)
    reason: Series[str] = pa.Field(nullable=True)
    voided_at: Series[pd.Timestamp] = pa.Field(nullable=True)


class Payments(SourcedModel):
    payment_id: Series[str] = pa.Field(unique=True)
    paid_at: Series[pd.Timestamp]
    amount: Series[int] = pa.Field(gt=0)
    currency: Series[str] = pa.Field(str_matches=CURRENCY_PATTERN)
    invoice_id: Series[str] = pa.Field(nullable=True)
    customer_id: Series[str] = pa.Field(nullable=True)
    product_code: Series[str] = pa.Field(nullable=True)
    tax_amount: Optional[Series[pd.Int64Dtype]] = pa.Field(
        nullable=True, ge=0,
        description="Tax included in a one-time charge paid without an invoice; empty = from the "
        "customer's tax code (ignored for payments of invoices).")


class Refunds(SourcedModel):
    refund_id: Series[str] = pa.Field(unique=True)
    invoice_id: Series[str]
    refunded_at: Series[pd.Timestamp]
    amount: Series[int] = pa.Field(gt=0)
    currency: Series[str] = pa.Field(str_matches=CURRENCY_PATTERN)
    payment_id: Series[str] = pa.Field(nullable=True)
    credit_note_id: Series[str] = pa.Field(
        nullable=True,
        description="The credit note this refund settles (Stripe credit_note.refunds): cash only, "
        "the credit note already reduced the invoice.")


class InvoiceEvents(SourcedModel):
    invoice_id: Series[str]
    occurred_at: Series[pd.Timestamp]
    event: Series[str] = pa.Field(isin=["void", "uncollectible"])
