"""Intercompany pairs: US02 invoices and collects for a contract US01 signed, hand-computed.

Contract C1 (contracting entity US01): 12,000.00 ratable over 2026. Invoice in_1 (invoicing entity
US02) on 2026-01-01 bills it with 1,000.00 tax on top. A credit note of 1,200.00 + 100.00 tax on
2026-02-01; the customer pays the remaining 11,700.00 on 2026-02-10.

- US02 billing: Dr AR 1,300,000 / Cr TaxLiability 100,000 / Cr IntercompanyPayable 1,200,000.
- US01 billing leg: Dr IntercompanyReceivable 1,200,000 / Cr DeferredRevenue 1,200,000.
- US01 January revenue: 1,200,000 x 31/365 = 101,917.8 -> 101,918 (Dr Deferred, Cr Revenue).
- Credit note (proportional): recognized share 120,000 x 101,918 / 1,200,000 = 10,191.8 ->
  10,192 to CreditNotes, 109,808 off deferred revenue. US02: Dr TaxLiability 10,000,
  Dr IntercompanyPayable 10,192 + 109,808 / Cr AR 130,000. US01: Dr CreditNotes 10,192,
  Dr Deferred 109,808 / Cr IntercompanyReceivable 10,192 + 109,808.
- Payment (US02): Dr Cash 1,170,000 / Cr AR 1,170,000.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from q2c_pipeline.core.policy import Policy
from q2c_pipeline.engine import run_engine
from q2c_pipeline_tests.revenue.builders import T, catalog, frames, invoice, invoice_line


def _tables():
    return frames(
        legal_entities=[{"legal_entity": "US01", "functional_currency": "USD"},
                        {"legal_entity": "US02", "functional_currency": "USD"}],
        customers=[{"customer_id": "K1", "name": "Acme", "legal_entity": "US02",
                    "currency": "USD", "correlation_id": "K1"}],
        products=catalog("P"),
        contracts=[{"contract_id": "C1", "customer_id": "K1", "legal_entity": "US01",
                    "currency": "USD", "signed_date": T("2026-01-01"), "transaction_price": None,
                    "version": 1, "correlation_id": "C1"}],
        contract_lines=[{"contract_line_id": "L1", "contract_id": "C1", "product_code": "P",
                         "quantity": 1.0, "amount": 1_200_000, "ssp_amount": None,
                         "service_start": T("2026-01-01"), "service_end": T("2027-01-01"),
                         "revenue_pattern": "ratable", "revises_line_id": None,
                         "effective_date": pd.NaT, "allocation_group": None}],
        invoices=[{**invoice("in_1", "2026-01-01", contract="C1"), "legal_entity": "US02"}],
        invoice_lines=[invoice_line("il_1", "in_1", 1_200_000, "2026-01-01", "2027-01-01",
                                    tax=100_000, contract_line="L1")],
        credit_notes=[{"credit_note_id": "cn_1", "issued_at": T("2026-02-01"),
                       "amount": 120_000, "invoice_id": "in_1", "customer_id": "K1",
                       "invoice_line_id": "il_1", "tax_amount": 10_000, "reason": None,
                       "voided_at": pd.NaT, "correlation_id": "C1"}],
        payments=[{"payment_id": "py_1", "paid_at": T("2026-02-10"), "amount": 1_170_000,
                   "currency": "USD", "invoice_id": "in_1", "customer_id": "K1",
                   "correlation_id": "C1"}],
    )


def _entries(jl: pd.DataFrame, source_type: str) -> dict[str, list[tuple]]:
    lines = jl[jl["source_type"] == source_type]
    return {entity: [(r.account, r.debit, r.credit) for r in group.itertuples()]
            for entity, group in lines.groupby("legal_entity")}


def test_invoicing_entity_books_receivable_against_intercompany_payable():
    jl = run_engine(_tables(), Policy(), date(2026, 2, 28)).journal_lines
    billing = _entries(jl, "invoice")
    assert sorted(billing["US02"]) == [("AccountsReceivable", 1_300_000, 0),
                                       ("IntercompanyPayable", 0, 1_200_000),
                                       ("TaxLiability", 0, 100_000)]
    assert sorted(billing["US01"]) == [("DeferredRevenue", 0, 1_200_000),
                                       ("IntercompanyReceivable", 1_200_000, 0)]


def test_contracting_entity_recognizes_the_revenue_and_books_the_credit_note_contra():
    result = run_engine(_tables(), Policy(), date(2026, 2, 28))
    jl = result.journal_lines
    revenue = jl[jl["source_type"] == "revenue"]
    assert set(revenue["legal_entity"]) == {"US01"}
    january = revenue[revenue["period"] == "2026-01"]
    assert january.loc[january["account"] == "Revenue", "credit"].tolist() == [101_918]
    credit = _entries(jl, "credit_note")
    # One intercompany line mirrors each moved line (same amount and rate: exact in functional).
    assert sorted(credit["US01"]) == [("CreditNotes", 10_192, 0),
                                      ("DeferredRevenue", 109_808, 0),
                                      ("IntercompanyReceivable", 0, 10_192),
                                      ("IntercompanyReceivable", 0, 109_808)]
    assert sorted(credit["US02"]) == [("AccountsReceivable", 0, 130_000),
                                      ("IntercompanyPayable", 10_192, 0),
                                      ("IntercompanyPayable", 109_808, 0),
                                      ("TaxLiability", 10_000, 0)]
    assert _entries(jl, "payment") == {"US02": [("Cash", 1_170_000, 0),
                                                ("AccountsReceivable", 0, 1_170_000)]}


def test_every_journal_belongs_to_one_entity_and_balances_there():
    jl = run_engine(_tables(), Policy(), date(2026, 2, 28)).journal_lines
    per_journal = jl.groupby("journal_id").agg(
        entities=("legal_entity", "nunique"), debit=("debit", "sum"), credit=("credit", "sum"),
        debit_functional=("debit_functional", "sum"),
        credit_functional=("credit_functional", "sum"))
    assert (per_journal["entities"] == 1).all()
    assert (per_journal["debit"] == per_journal["credit"]).all()
    assert (per_journal["debit_functional"] == per_journal["credit_functional"]).all()


def test_intercompany_receivable_equals_payable_and_each_entity_keeps_its_own_accounts():
    balances = run_engine(_tables(), Policy(), date(2026, 2, 28)).account_balances
    feb = balances[balances["period"] == "2026-02"].set_index(["legal_entity", "account"])
    closing = feb["closing_balance"]
    assert closing[("US01", "IntercompanyReceivable")] == 1_080_000
    assert closing[("US02", "IntercompanyPayable")] == 1_080_000
    assert closing[("US02", "AccountsReceivable")] == 0
    assert closing[("US02", "Cash")] == 1_170_000
    assert closing[("US02", "TaxLiability")] == 90_000
    us01 = set(feb.loc["US01"].index)
    us02 = set(feb.loc["US02"].index)
    assert us01 == {"IntercompanyReceivable", "DeferredRevenue", "Revenue", "CreditNotes"}
    assert us02 == {"AccountsReceivable", "Cash", "TaxLiability", "IntercompanyPayable"}
    # US01's deferred revenue: billed 1,200,000 - January 101,918 - credit 109,808 - February
    # (the trimmed schedule's February row).
    result = run_engine(_tables(), Policy(), date(2026, 2, 28))
    february = result.revenue_schedule.set_index("period").loc["2026-02", "amount"]
    assert closing[("US01", "DeferredRevenue")] == 1_200_000 - 101_918 - 109_808 - february
    assert closing[("US01", "Revenue")] == 101_918 + february


def test_an_invoice_of_the_contracting_entity_itself_books_no_intercompany_lines():
    tables = _tables()
    tables["invoices"] = pd.DataFrame([{**invoice("in_1", "2026-01-01", contract="C1"),
                                        "legal_entity": "US01"}])
    jl = run_engine(tables, Policy(), date(2026, 2, 28)).journal_lines
    assert not jl["account"].str.startswith("Intercompany").any()
    assert set(jl["legal_entity"]) == {"US01"}
