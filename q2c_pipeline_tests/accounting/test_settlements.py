"""Hand-computed journals for refunds, voids, write-offs and recoveries, credit-note voids, tax
inclusive vs exclusive, and realized FX on settlement.

Common case: a 1,200.00 subscription for 2026-01-01..2026-04-01 with 120.00 tax on top (AR
1,320.00), finalized 2026-01-01, `month_even` amortization: 400.00 a month. A reduction on
2026-02-01 finds January's 400.00 recognized: its recognized share is 400/1,200 of its pre-tax
amount (to the contra account) and the rest comes off February and March in proportion. (A
reduction later in February finds those days served too: see
``test_a_reduction_mid_month_finds_the_days_of_its_month_already_served``.)
"""

from datetime import date

import pytest

from q2c_pipeline.core.policy import Policy
from q2c_pipeline.engine import run_engine
from q2c_pipeline_tests.revenue.builders import T, company, frames, invoice, invoice_line

POLICY = Policy(amortization="month_even")
PAID = [{"payment_id": "py_1", "paid_at": T("2026-01-05"), "amount": 132_000,
         "currency": "USD", "invoice_id": "in_1"}]


def _subscription(**extra):
    return {**company(), **frames(
        invoices=[invoice("in_1", "2026-01-01")],
        invoice_lines=[invoice_line("il_1", "in_1", 120_000, "2026-01-01", "2026-04-01",
                                    tax=12_000)],
        **extra)}


def _postings(result, source_type):
    jl = result.journal_lines
    rows = jl[jl["source_type"] == source_type]
    return {account: (int(g["debit"].sum()), int(g["credit"].sum()))
            for account, g in rows.groupby("account")}


def _closing(result, period="2026-03"):
    rows = result.account_balances[result.account_balances["period"] == period]
    return dict(zip(rows["account"], rows["closing_balance"], strict=True))


def test_full_refund_returns_cash_and_splits_revenue_into_contra_and_deferred():
    # refund 1,320.00: tax 120.00; pre-tax 1,200.00 = 400.00 recognized (Refunds) + 800.00
    # deferred (cleared; February and March drop to zero)
    refund = [{"refund_id": "re_1", "invoice_id": "in_1", "refunded_at": T("2026-02-01"),
               "amount": 132_000, "currency": "USD"}]
    result = run_engine(_subscription(payments=PAID, refunds=refund), POLICY, date(2026, 3, 31))
    assert _postings(result, "refund") == {
        "Cash": (0, 132_000), "Refunds": (40_000, 0), "DeferredRevenue": (80_000, 0),
        "TaxLiability": (12_000, 0)}
    assert result.revenue_schedule[["period", "amount"]].values.tolist() == [["2026-01", 40_000]]
    closing = _closing(result)
    assert closing["Cash"] == 0 and closing["DeferredRevenue"] == 0
    assert closing["Revenue"] - closing["Refunds"] == 0


def test_partial_refund_takes_a_quarter_off_each_remaining_month():
    # refund 330.00 of 1,320.00: tax 330 x 120/1,320 = 30.00; pre-tax 300.00 = 100.00 recognized
    # share (Refunds) + 200.00 deferred: February and March 400.00 -> 300.00
    refund = [{"refund_id": "re_1", "invoice_id": "in_1", "refunded_at": T("2026-02-01"),
               "amount": 33_000, "currency": "USD"}]
    result = run_engine(_subscription(payments=PAID, refunds=refund), POLICY, date(2026, 3, 31))
    assert _postings(result, "refund") == {
        "Cash": (0, 33_000), "Refunds": (10_000, 0), "DeferredRevenue": (20_000, 0),
        "TaxLiability": (3_000, 0)}
    assert result.revenue_schedule["amount"].tolist() == [40_000, 30_000, 30_000]
    closing = _closing(result)
    assert closing["Cash"] == 99_000 and closing["TaxLiability"] == 9_000


def test_invoice_void_reverses_the_open_receivable_through_voids():
    # unpaid, voided 2026-02-01: the whole 1,320.00 receivable; 400.00 to Voids, 800.00 deferred
    events = [{"invoice_id": "in_1", "occurred_at": T("2026-02-01"), "event": "void"}]
    result = run_engine(_subscription(invoice_events=events), POLICY, date(2026, 3, 31))
    assert _postings(result, "invoice_void") == {
        "AccountsReceivable": (0, 132_000), "Voids": (40_000, 0),
        "DeferredRevenue": (80_000, 0), "TaxLiability": (12_000, 0)}
    closing = _closing(result)
    assert closing["AccountsReceivable"] == 0 and closing["Revenue"] == closing["Voids"] == 40_000


def test_uncollectible_writes_off_the_receivable_and_later_cash_reverses_bad_debt_first():
    # written off 2026-02-01 (credit loss 400.00, deferred 800.00 cleared off February and
    # March, tax relief 120.00); 660.00 arrives 2026-03-20 (the receivable stays at zero). Tax
    # inside the cash reverses the relief in proportion: 660 x 120/1,320 = 60.00; pre-tax 600.00
    # = 400.00 credit loss reversed first + 200.00 given back to the schedule (a quarter of each
    # cut month: February's 100.00 caught up on 03-20, March 100.00): revenue 400.00 in January,
    # 200.00 in March. Tax never reaches revenue.
    events = [{"invoice_id": "in_1", "occurred_at": T("2026-02-01"), "event": "uncollectible"}]
    late = [{"payment_id": "py_9", "paid_at": T("2026-03-20"), "amount": 66_000,
             "currency": "USD", "invoice_id": "in_1"}]
    result = run_engine(_subscription(invoice_events=events, payments=late), POLICY,
                        date(2026, 3, 31))
    assert _postings(result, "uncollectible") == {
        "AccountsReceivable": (0, 132_000), "CreditLossExpense": (40_000, 0),
        "DeferredRevenue": (80_000, 0), "TaxLiability": (12_000, 0)}
    assert _postings(result, "recovery") == {
        "Cash": (66_000, 0), "TaxLiability": (0, 6_000), "CreditLossExpense": (0, 40_000),
        "DeferredRevenue": (0, 20_000)}
    jl = result.journal_lines
    revenue = jl[jl["account"] == "Revenue"].groupby("period")["credit"].sum().to_dict()
    assert revenue == {"2026-01": 40_000, "2026-03": 20_000}
    closing = _closing(result)
    assert closing["AccountsReceivable"] == 0 and closing.get("Recoverables", 0) == 0
    assert closing["CreditLossExpense"] == 0 and closing["TaxLiability"] == 6_000
    assert closing["DeferredRevenue"] == 0 and closing["Revenue"] == 60_000

    # Stripe's methodology (bad_debt_presentation: contra_revenue, recovery_after_write_off:
    # recoverables): BadDebt 400.00 reversed, the 200.00 rest to Recoverables
    stripe = Policy(amortization="month_even", bad_debt_presentation="contra_revenue",
                    recovery_after_write_off="recoverables")
    result = run_engine(_subscription(invoice_events=events, payments=late), stripe,
                        date(2026, 3, 31))
    assert _postings(result, "recovery") == {
        "Cash": (66_000, 0), "TaxLiability": (0, 6_000), "BadDebt": (0, 40_000),
        "Recoverables": (0, 20_000)}
    closing = _closing(result)
    assert closing["Recoverables"] == 20_000 and closing["BadDebt"] == 0


def test_partial_payment_before_write_off_leaves_only_the_outstanding_part_to_write_off():
    # 660.00 paid 2026-01-20, then uncollectible: 660.00 outstanding gross = half of each part:
    # tax 60.00, pre-tax 600.00 = 200.00 credit loss + 400.00 deferred
    part = [{"payment_id": "py_1", "paid_at": T("2026-01-20"), "amount": 66_000,
             "currency": "USD", "invoice_id": "in_1"}]
    events = [{"invoice_id": "in_1", "occurred_at": T("2026-02-01"), "event": "uncollectible"}]
    result = run_engine(_subscription(payments=part, invoice_events=events), POLICY,
                        date(2026, 3, 31))
    assert _postings(result, "uncollectible") == {
        "AccountsReceivable": (0, 66_000), "CreditLossExpense": (20_000, 0),
        "DeferredRevenue": (40_000, 0), "TaxLiability": (6_000, 0)}


def test_credit_note_void_reverses_the_credit_and_returns_its_deferred_share_from_the_void_month():
    # credit 300.00 + 30.00 tax on top, 2026-02-01: 100.00 CreditNotes,
    # 200.00 deferred off Feb/Mar (300.00 each). Voided 2026-03-05: every line reversed; the
    # 200.00 goes back from March (February has passed): 400.00 / 300.00 / 500.00
    note = [{"credit_note_id": "cn_1", "issued_at": T("2026-02-01"), "amount": 30_000,
             "currency": "USD", "invoice_id": "in_1", "invoice_line_id": "il_1",
             "tax_amount": 3_000, "voided_at": T("2026-03-05")}]
    result = run_engine(_subscription(credit_notes=note), POLICY, date(2026, 3, 31))
    assert _postings(result, "credit_note") == {
        "AccountsReceivable": (0, 33_000), "CreditNotes": (10_000, 0),
        "DeferredRevenue": (20_000, 0), "TaxLiability": (3_000, 0)}
    assert _postings(result, "credit_note_void") == {
        "AccountsReceivable": (33_000, 0), "CreditNotes": (0, 10_000),
        "DeferredRevenue": (0, 20_000), "TaxLiability": (0, 3_000)}
    assert result.revenue_schedule["amount"].tolist() == [40_000, 30_000, 50_000]
    closing = _closing(result)
    assert closing["AccountsReceivable"] == 132_000 and closing["CreditNotes"] == 0


def test_credit_note_voided_after_as_of_is_still_a_credit_on_that_day():
    note = [{"credit_note_id": "cn_1", "issued_at": T("2026-02-01"), "amount": 30_000,
             "currency": "USD", "invoice_id": "in_1", "invoice_line_id": "il_1",
             "tax_amount": 3_000, "voided_at": T("2026-03-05")}]
    result = run_engine(_subscription(credit_notes=note), POLICY, date(2026, 2, 28))
    assert "credit_note_void" not in set(result.journal_lines["source_type"])


@pytest.mark.parametrize(("amount", "inclusive"), [(132_000, True), (120_000, False)])
def test_tax_inclusive_and_exclusive_lines_with_the_same_net_book_the_same_journal(amount,
                                                                                  inclusive):
    # 1,320.00 including 120.00 tax == 1,200.00 plus 120.00 tax on top
    tables = {**company(), **frames(
        invoices=[invoice("in_1", "2026-01-01")],
        invoice_lines=[invoice_line("il_1", "in_1", amount, "2026-01-01", "2026-04-01",
                                    tax=12_000, inclusive=inclusive)])}
    result = run_engine(tables, POLICY, date(2026, 1, 31))
    assert _postings(result, "invoice") == {
        "AccountsReceivable": (132_000, 0), "DeferredRevenue": (0, 120_000),
        "TaxLiability": (0, 12_000)}
    assert result.revenue_schedule["amount"].sum() == 120_000


def test_credit_note_on_a_tax_inclusive_line_takes_its_tax_out_of_its_amount():
    # credit 330.00 including 30.00 tax: pre-tax 300.00 = 100.00 contra + 200.00 deferred
    tables = {**company(), **frames(
        invoices=[invoice("in_1", "2026-01-01")],
        invoice_lines=[invoice_line("il_1", "in_1", 132_000, "2026-01-01", "2026-04-01",
                                    tax=12_000, inclusive=True)],
        credit_notes=[{"credit_note_id": "cn_1", "issued_at": T("2026-02-01"), "amount": 33_000,
                       "currency": "USD", "invoice_id": "in_1", "invoice_line_id": "il_1",
                       "tax_amount": 3_000, "voided_at": None}])}
    result = run_engine(tables, POLICY, date(2026, 3, 31))
    assert _postings(result, "credit_note") == {
        "AccountsReceivable": (0, 33_000), "CreditNotes": (10_000, 0),
        "DeferredRevenue": (20_000, 0), "TaxLiability": (3_000, 0)}


def _eur_invoice_paid_at(rate):
    return {**company(), **frames(
        invoices=[invoice("in_1", "2026-01-10", currency="EUR")],
        invoice_lines=[invoice_line("il_1", "in_1", 100_000)],
        payments=[{"payment_id": "py_1", "paid_at": T("2026-02-01"), "amount": 100_000,
                   "currency": "EUR", "invoice_id": "in_1"}],
        fx_rates=[{"rate_date": T("2026-01-01"), "from_currency": "EUR", "to_currency": "USD",
                   "rate": "1.10"},
                  {"rate_date": T("2026-02-01"), "from_currency": "EUR", "to_currency": "USD",
                   "rate": rate}])}


@pytest.mark.parametrize(("rate", "account", "side", "amount"), [
    # receivable booked at 1.10 = 1,100.00; cash at 1.15 = 1,150.00: gain 50.00 (credit)
    ("1.15", "FxGain", "credit_functional", 5_000),
    # cash at 1.05 = 1,050.00: loss 50.00 (debit)
    ("1.05", "FxLoss", "debit_functional", 5_000),
    # cash at 1.1 exactly: no FX line at all
    ("1.1", None, None, 0),
])
def test_settlement_books_realized_fx_gain_or_loss_in_functional_currency(rate, account, side,
                                                                          amount):
    result = run_engine(_eur_invoice_paid_at(rate), Policy(), date(2026, 2, 28))
    jl = result.journal_lines
    pay = jl[jl["source_type"] == "payment"].set_index("account")
    assert pay.loc["AccountsReceivable", "credit_functional"] == 110_000
    fx = pay[pay.index.isin(["FxGain", "FxLoss"])]
    if account is None:
        assert len(fx) == 0
    else:
        assert list(fx.index) == [account]
        assert fx.loc[account, side] == amount
        assert fx.loc[account, "debit"] == fx.loc[account, "credit"] == 0
    assert pay["debit_functional"].sum() == pay["credit_functional"].sum()
