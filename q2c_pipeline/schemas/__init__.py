"""Canonical pandera models: the executable form of docs/canonical-model.md."""

from functools import cache

import pandas as pd

from q2c_pipeline.schemas.contracts import ContractLines, Contracts
from q2c_pipeline.schemas.customers import Customers
from q2c_pipeline.schemas.invoice_lines import InvoiceLines
from q2c_pipeline.schemas.invoices import Invoices
from q2c_pipeline.schemas.products import Products
from q2c_pipeline.schemas.quarantine import Quarantine
from q2c_pipeline.schemas.reference import (
    AccountingPeriods,
    ChartOfAccounts,
    FxRates,
    LegalEntities,
    TaxCodes,
)
from q2c_pipeline.schemas.settlements import CreditNotes, InvoiceEvents, Payments, Refunds
from q2c_pipeline.schemas.usage import Usage

# Canonical table name -> (model, primary key columns)
CANONICAL_TABLES = {
    "legal_entities": (LegalEntities, ["legal_entity"]),
    "chart_of_accounts": (ChartOfAccounts, ["legal_entity", "account"]),
    "accounting_periods": (AccountingPeriods, ["legal_entity", "period"]),
    "tax_codes": (TaxCodes, ["tax_code"]),
    "fx_rates": (FxRates, ["rate_date", "from_currency", "to_currency"]),
    "customers": (Customers, ["customer_id"]),
    "products": (Products, ["product_code"]),
    "contracts": (Contracts, ["contract_id", "version"]),
    "contract_lines": (ContractLines, ["contract_line_id"]),
    "invoices": (Invoices, ["invoice_id"]),
    "invoice_lines": (InvoiceLines, ["invoice_line_id"]),
    "credit_notes": (CreditNotes, ["credit_note_id"]),
    "payments": (Payments, ["payment_id"]),
    "refunds": (Refunds, ["refund_id"]),
    "invoice_events": (InvoiceEvents, ["invoice_id", "occurred_at", "event"]),
    "usage": (Usage, ["usage_id"]),
}


@cache
def _timestamp_columns(table: str) -> tuple[str, ...]:
    model = CANONICAL_TABLES[table][0]
    columns = model.to_schema().columns
    return tuple(name for name, column in columns.items()
                 if pd.api.types.is_datetime64_any_dtype(column.dtype.type))


def timestamp_columns(table: str) -> list[str]:
    """The timestamp (naive UTC) columns of a canonical table, in model order.

    Read from the pandera model's declared dtypes, so a new ``Series[pd.Timestamp]`` field is
    parsed and compared as a timestamp everywhere without another list to update. An unknown table
    raises KeyError.
    """
    return list(_timestamp_columns(table))


__all__ = [
    "CANONICAL_TABLES",
    "AccountingPeriods",
    "ChartOfAccounts",
    "ContractLines",
    "Contracts",
    "CreditNotes",
    "Customers",
    "FxRates",
    "InvoiceEvents",
    "InvoiceLines",
    "Invoices",
    "LegalEntities",
    "Payments",
    "Products",
    "Quarantine",
    "Refunds",
    "TaxCodes",
    "Usage",
    "timestamp_columns",
]


# Documented defaults of columns a hand-made table (an interchange folder, a frame given to the
# engine) may leave out or empty; the mappers always state them. docs/canonical-model.md.
COLUMN_DEFAULTS: dict[str, dict[str, object]] = {
    "contracts": {"version": 1},
    "invoices": {"status": "open"},
    "invoice_lines": {"tax_amount": 0, "tax_inclusive": False, "is_proration": False,
                      "discount_amount": 0},
    "credit_notes": {"tax_amount": 0, "discount_amount": 0},
}
# Columns whose default is the value of the parent record: (parent table, join column).
INHERITED_DEFAULTS: dict[str, dict[str, tuple[str, str]]] = {
    "credit_notes": {"currency": ("invoices", "invoice_id")},
    "refunds": {"currency": ("invoices", "invoice_id")},
}
