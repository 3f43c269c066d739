"""A small subscription contract and its billing, for hand-computed treatment tests.

The base case: contract C1 signed 2026-01-01, one seat line L1 of 12,000.00 for 2026
(2026-01-01..2027-01-01), amortized ``month_even`` (1,000.00 a month) so every figure can be
checked by hand; invoices of 1,000.00 a month in advance with 10% tax on top (1,100.00 gross),
each billing that month's service period.
"""

from __future__ import annotations

import pandas as pd

from q2c_pipeline.core.policy import Policy
from q2c_pipeline_tests.revenue.builders import T, company, frames, with_catalog

POLICY = Policy(amortization="month_even")
MONTH = 100_000
TAX = 10_000


def month_start(m: int) -> pd.Timestamp:
    return T("2026-01-01") + pd.DateOffset(months=m - 1)


def contract_line(lid="L1", amount=12 * MONTH, start="2026-01-01", end="2027-01-01",
                  pattern="ratable", product="SEAT", revises=None, effective=None,
                  treatment=None, version=None, quantity=1.0, ssp=None):
    return {"contract_line_id": lid, "contract_id": "C1", "product_code": product,
            "quantity": quantity, "amount": amount, "ssp_amount": ssp,
            "service_start": T(start) if start else pd.NaT,
            "service_end": T(end) if end else pd.NaT, "revenue_pattern": pattern,
            "revises_line_id": revises, "effective_date": T(effective) if effective else pd.NaT,
            "allocation_group": None, "modification_treatment": treatment, "version": version}


def versions(*dated):
    """Contract versions: version 1 signed 2026-01-01, then (signed, effective) per amendment."""
    header = {"contract_id": "C1", "customer_id": "K1", "legal_entity": "US01",
              "currency": "USD", "transaction_price": None, "correlation_id": "C1"}
    rows = [{**header, "signed_date": T("2026-01-01"), "effective_date": pd.NaT, "version": 1}]
    for number, (signed, effective) in enumerate(dated, start=2):
        rows.append({**header, "signed_date": T(signed),
                     "effective_date": T(effective) if effective else pd.NaT,
                     "version": number})
    return rows


def monthly_invoices(months, line="L1", amount=MONTH, tax=TAX, prefix="in"):
    """One invoice per month (finalized on its first day) billing that month of ``line``."""
    invoices, lines = [], []
    for m in months:
        start = month_start(m)
        invoices.append({"invoice_id": f"{prefix}_{m}", "customer_id": "K1", "currency": "USD",
                         "finalized_at": start, "contract_id": "C1", "legal_entity": None,
                         "status": "open", "correlation_id": "C1"})
        lines.append({"invoice_line_id": f"il_{prefix}_{m}", "invoice_id": f"{prefix}_{m}",
                      "amount": amount, "contract_line_id": line, "product_code": "SEAT",
                      "quantity": 1.0, "tax_amount": tax, "tax_inclusive": False,
                      "service_start": start, "service_end": month_start(m + 1),
                      "is_proration": False, "created_at": pd.NaT})
    return invoices, lines


def annual_invoice(amount=12 * MONTH, tax=12 * TAX, line="L1"):
    invoice = {"invoice_id": "in_year", "customer_id": "K1", "currency": "USD",
               "finalized_at": T("2026-01-01"), "contract_id": "C1", "legal_entity": None,
               "status": "open", "correlation_id": "C1"}
    item = {"invoice_line_id": "il_year", "invoice_id": "in_year", "amount": amount,
            "contract_line_id": line, "product_code": "SEAT", "quantity": 1.0,
            "tax_amount": tax, "tax_inclusive": False, "service_start": T("2026-01-01"),
            "service_end": T("2027-01-01"), "is_proration": False, "created_at": pd.NaT}
    return [invoice], [item]


def tables(lines=None, contract_versions=None, invoices=(), invoice_lines=(), **extra):
    out = {**company(), **frames(
        contracts=contract_versions or versions(),
        contract_lines=lines or [contract_line()])}
    if invoices:
        out["invoices"] = pd.DataFrame(list(invoices))
        out["invoice_lines"] = pd.DataFrame(list(invoice_lines))
    for name, rows in extra.items():
        out[name] = pd.DataFrame(rows)
    return with_catalog(out)


def movements(result, account):
    """{period: movement} of an account (signed by its normal balance)."""
    rows = result.account_balances[result.account_balances["account"] == account]
    return {p: int(m) for p, m in zip(rows["period"], rows["movement"], strict=True) if m}


def closing(result, period):
    rows = result.account_balances[result.account_balances["period"] == period]
    return {a: int(b) for a, b in zip(rows["account"], rows["closing_balance"], strict=True)
            if b}


def postings(result, source_type, source_id=None):
    """{account: (debit, credit)} of the journals of a source type (and document)."""
    jl = result.journal_lines
    rows = jl[jl["source_type"] == source_type]
    if source_id is not None:
        rows = rows[rows["source_id"] == source_id]
    return {a: (int(g["debit"].sum()), int(g["credit"].sum()))
            for a, g in rows.groupby("account")}


def revenue_by_period(result, source_id="L1"):
    sched = result.revenue_schedule
    rows = sched[sched["source_id"] == source_id]
    return dict(zip(rows["period"], rows["amount"].astype(int), strict=True))
