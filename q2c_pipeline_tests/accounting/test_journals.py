from datetime import date

import pandas as pd

from q2c_pipeline.core.policy import Policy
from q2c_pipeline.engine import run_engine
from q2c_pipeline_tests.revenue.builders import T, company, frames, invoice, invoice_line


def _lines(result, source_type):
    jl = result.journal_lines
    return jl[jl["source_type"] == source_type]


def _by_account(lines, column="debit"):
    return lines.groupby("account")[["debit", "credit"]].sum().to_dict("index")


def test_invoice_billing_debits_receivable_with_tax_and_credits_deferred_revenue_and_tax():
    # 1,000.00 annual subscription + 80.00 tax on top: Dr AR 1,080.00 / Cr Deferred 1,000.00,
    # Cr TaxLiability 80.00
    tables = {**company(), **frames(
        invoices=[invoice("in_1", "2026-01-01")],
        invoice_lines=[invoice_line("il_1", "in_1", 100_000, "2026-01-01", "2027-01-01",
                                    tax=8_000)])}
    result = run_engine(tables, Policy(), date(2026, 1, 15))
    got = _by_account(_lines(result, "invoice"))
    assert got == {"AccountsReceivable": {"debit": 108_000, "credit": 0},
                   "DeferredRevenue": {"debit": 0, "credit": 100_000},
                   "TaxLiability": {"debit": 0, "credit": 8_000}}
    revenue = _lines(result, "revenue")
    # January: 100,000 x 31/365 = 8,493.15 -> 8,493, dated at period end
    assert revenue.loc[revenue["account"] == "Revenue", "credit"].tolist() == [8_493]
    assert set(revenue["entry_date"]) == {date(2026, 1, 31)}


def test_proportional_credit_note_splits_recognized_share_to_contra_and_trims_schedule():
    # 1,200.00 over Jan..Mar, month_even: 400.00 a month. A 300.00 credit on 2026-02-01:
    # recognized before February = 400/1,200 -> contra 100.00; deferred 200.00 comes off
    # Feb and Mar in proportion (100.00 each) -> 300.00 + 300.00.
    tables = {**company(), **frames(
        invoices=[invoice("in_1", "2026-01-01")],
        invoice_lines=[invoice_line("il_1", "in_1", 120_000, "2026-01-01", "2026-04-01")],
        credit_notes=[{"credit_note_id": "cn_1", "issued_at": T("2026-02-01"), "amount": 30_000,
                       "currency": "USD", "invoice_id": "in_1", "invoice_line_id": None,
                       "tax_amount": 0, "voided_at": pd.NaT}])}
    result = run_engine(tables, Policy(amortization="month_even"), date(2026, 3, 31))
    schedule = result.revenue_schedule
    assert schedule["amount"].tolist() == [40_000, 30_000, 30_000]
    assert _by_account(_lines(result, "credit_note")) == {
        "AccountsReceivable": {"debit": 0, "credit": 30_000},
        "CreditNotes": {"debit": 10_000, "credit": 0},
        "DeferredRevenue": {"debit": 20_000, "credit": 0}}
    closing = result.account_balances.query("period == '2026-03'").set_index("account")
    # everything billed is recognized or credited: deferred revenue is back to zero
    assert closing.loc["DeferredRevenue", "closing_balance"] == 0
    assert closing.loc["Revenue", "closing_balance"] == 100_000


def test_contra_in_full_credit_note_leaves_the_schedule_untouched():
    tables = {**company(), **frames(
        invoices=[invoice("in_1", "2026-01-01")],
        invoice_lines=[invoice_line("il_1", "in_1", 120_000, "2026-01-01", "2026-04-01")],
        credit_notes=[{"credit_note_id": "cn_1", "issued_at": T("2026-02-15"), "amount": 30_000,
                       "currency": "USD", "invoice_id": "in_1", "invoice_line_id": "il_1",
                       "tax_amount": 0, "voided_at": pd.NaT}])}
    policy = Policy(amortization="month_even", credit_note_treatment="contra_in_full")
    result = run_engine(tables, policy, date(2026, 3, 31))
    assert result.revenue_schedule["amount"].tolist() == [40_000, 40_000, 40_000]
    assert _by_account(_lines(result, "credit_note"))["CreditNotes"] == {"debit": 30_000,
                                                                         "credit": 0}


def test_foreign_currency_payment_books_realized_fx_gain_in_functional_currency():
    # EUR 1,000.00 invoice on 2026-01-10 at 1.10 = USD 1,100.00 receivable; paid 2026-02-10 at
    # 1.15 = USD 1,150.00 cash; the 50.00 difference is a realized FxGain.
    tables = {**company(), **frames(
        invoices=[invoice("in_1", "2026-01-10", currency="EUR")],
        invoice_lines=[invoice_line("il_1", "in_1", 100_000)],
        payments=[{"payment_id": "py_1", "paid_at": T("2026-02-10"), "amount": 100_000,
                   "currency": "EUR", "invoice_id": "in_1"}],
        fx_rates=[{"rate_date": T("2026-01-01"), "from_currency": "EUR", "to_currency": "USD",
                   "rate": "1.10"},
                  {"rate_date": T("2026-02-01"), "from_currency": "USD", "to_currency": "EUR",
                   "rate": "0.8695652173913043478260869565"}])}
    result = run_engine(tables, Policy(), date(2026, 2, 28))
    pay = _lines(result, "payment").set_index("account")
    assert pay.loc["Cash", "debit"] == 100_000
    # inverse pair: 100,000 / 0.86956521739130434782608695650 = 115,000.0000... -> 115,000
    assert pay.loc["Cash", "debit_functional"] == 115_000
    assert pay.loc["AccountsReceivable", "credit_functional"] == 110_000
    assert pay.loc["FxGain", "credit_functional"] == 5_000
    assert pay.loc["FxGain", "credit"] == 0


def test_missing_fx_rate_is_a_value_error_naming_pair_and_date():
    tables = {**company(), **frames(
        invoices=[invoice("in_1", "2026-01-10", currency="EUR")],
        invoice_lines=[invoice_line("il_1", "in_1", 100_000)])}
    try:
        run_engine(tables, Policy(), date(2026, 2, 28))
    except ValueError as error:
        assert "EUR->USD" in str(error) and "2026-01-10" in str(error)
    else:
        raise AssertionError("expected a ValueError for the missing rate")


def test_activity_in_a_closed_period_posts_to_the_first_open_period_keeping_its_date():
    tables = {**company(), **frames(
        invoices=[invoice("in_1", "2026-01-20")],
        invoice_lines=[invoice_line("il_1", "in_1", 50_000)],
        accounting_periods=[{"legal_entity": "US01", "period": "2026-01", "status": "closed"},
                            {"legal_entity": "US01", "period": "2026-02", "status": "closed"}])}
    result = run_engine(tables, Policy(), date(2026, 3, 31))
    billing = _lines(result, "invoice")
    assert set(billing["period"]) == {"2026-03"}
    assert set(billing["original_date"]) == {date(2026, 1, 20)}
    assert set(billing["entry_date"]) == {date(2026, 3, 1)}
    assert not result.journal_lines["period"].isin(["2026-01", "2026-02"]).any()


def test_recognition_before_billing_runs_through_unbilled_receivable():
    # A pending proration item known on 2026-01-10, invoiced 2026-02-01: January's revenue is
    # recognized through unbilled receivable, which the invoice then clears.
    tables = {**company(), **frames(
        invoices=[invoice("in_1", "2026-02-01")],
        invoice_lines=[invoice_line("il_1", "in_1", 31_000, "2026-01-01", "2026-02-01",
                                    created="2026-01-10")])}
    result = run_engine(tables, Policy(), date(2026, 2, 28))
    jan = _lines(result, "revenue").set_index("account")
    assert jan.loc["UnbilledAccountsReceivable", "debit"] == 31_000
    billing = _by_account(_lines(result, "invoice"))
    assert billing["UnbilledAccountsReceivable"] == {"debit": 0, "credit": 31_000}
