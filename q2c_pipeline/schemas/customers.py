"""Canonical customers: one row per customer (Salesforce Account joined to the ERP customer
master)."""

from __future__ import annotations

import pandera.pandas as pa
from pandera.typing import Series

from q2c_pipeline.schemas.base import CURRENCY_PATTERN, SourcedModel


class Customers(SourcedModel):
    customer_id: Series[str] = pa.Field(unique=True, str_length={"min_value": 1})
    name: Series[str]
    legal_entity: Series[str] = pa.Field(str_length={"min_value": 1})
    currency: Series[str] = pa.Field(str_matches=CURRENCY_PATTERN)
    parent_customer_id: Series[str] = pa.Field(nullable=True)
    country: Series[str] = pa.Field(nullable=True)
    tax_region: Series[str] = pa.Field(nullable=True)
    erp_customer_id: Series[str] = pa.Field(nullable=True)
    billing_customer_id: Series[str] = pa.Field(
        nullable=True, description="The customer's id in the billing system (stripe:cus_...)."
    )
