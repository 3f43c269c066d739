"""Canonical invoice lines (one row per invoice line)."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from q2c_pipeline.schemas.base import SourcedModel


class InvoiceLines(SourcedModel):
    invoice_line_id: Series[str] = pa.Field(unique=True, str_length={"min_value": 1})
    invoice_id: Series[str]
    amount: Series[int] = pa.Field(
        description="As invoiced after discounts (Stripe: line amount less its discount_amounts), "
        "minor units; includes tax if inclusive."
    )
    discount_amount: Series[int] = pa.Field(
        ge=0, description="Discounts taken off the line (line and invoice level), minor units."
    )
    contract_line_id: Series[str] = pa.Field(nullable=True)
    product_code: Series[str] = pa.Field(nullable=True)
    quantity: Series[float] = pa.Field(nullable=True)
    tax_amount: Series[int] = pa.Field(ge=0)
    tax_inclusive: Series[bool]
    service_start: Series[pd.Timestamp] = pa.Field(nullable=True)
    service_end: Series[pd.Timestamp] = pa.Field(nullable=True)
    is_proration: Series[bool]
    created_at: Series[pd.Timestamp] = pa.Field(nullable=True)

    @pa.dataframe_check
    def quantity_not_negative_unless_proration(cls, df: pd.DataFrame) -> Series[bool]:
        return df["quantity"].isna() | (df["quantity"] >= 0) | df["is_proration"]
