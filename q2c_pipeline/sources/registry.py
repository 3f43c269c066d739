"""Which source objects q2c lands, and under which raw table, id and change-stamp fields."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceObject:
    system: str          # salesforce | stripe | erp
    name: str            # the object's name in its system (Account, invoices, customers.csv)
    raw_table: str       # raw.<raw_table> in DuckDB
    id_fields: tuple[str, ...]
    modstamp_field: str | None

    @property
    def asset_name(self) -> str:
        return self.raw_table


SALESFORCE_OBJECTS = (
    SourceObject("salesforce", "Account", "salesforce_accounts", ("Id",), "SystemModstamp"),
    SourceObject("salesforce", "Product2", "salesforce_products", ("Id",), "SystemModstamp"),
    SourceObject("salesforce", "Opportunity", "salesforce_opportunities", ("Id",), "SystemModstamp"),
    SourceObject(
        "salesforce", "OpportunityLineItem", "salesforce_opportunity_line_items", ("Id",),
        "SystemModstamp",
    ),
    SourceObject("salesforce", "Contract", "salesforce_contracts", ("Id",), "SystemModstamp"),
    SourceObject(
        "salesforce", "SBQQ__Subscription__c", "salesforce_subscriptions", ("Id",), "SystemModstamp"
    ),
)

STRIPE_RESOURCES = tuple(
    SourceObject("stripe", name, f"stripe_{name}", ("id",), "created")
    for name in (
        "customers",
        "products",
        "prices",
        "subscriptions",
        "invoices",
        "credit_notes",
        "invoice_payments",
        "refunds",
    )
)

ERP_TABLES = (
    SourceObject("erp", "legal_entities", "erp_legal_entities", ("legal_entity",), None),
    SourceObject(
        "erp", "chart_of_accounts", "erp_chart_of_accounts", ("legal_entity", "account"), None
    ),
    SourceObject(
        "erp", "accounting_periods", "erp_accounting_periods", ("legal_entity", "period"), None
    ),
    SourceObject("erp", "products", "erp_products", ("product_code",), None),
    SourceObject("erp", "tax_codes", "erp_tax_codes", ("tax_code",), None),
    SourceObject(
        "erp", "fx_rates", "erp_fx_rates", ("rate_date", "from_currency", "to_currency"), None
    ),
    SourceObject("erp", "customers", "erp_customers", ("erp_customer_id",), None),
)
