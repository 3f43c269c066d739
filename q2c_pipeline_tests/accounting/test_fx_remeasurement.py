"""Month-end remeasurement of open foreign-currency receivables and cash, hand-computed.

US01 keeps its books in USD, holds EUR cash too (``settlement_currencies: EUR``) and invoices
a customer 1,000.00 EUR on 2026-01-15 for a service running 2026-01-15..2026-07-15 (so
deferred revenue exists too). EUR->USD: 1.10 from 2026-01-01,
1.20 from 2026-01-31, 1.15 from 2026-02-28. The customer pays 400.00 EUR on 2026-02-20.

- Billing at 1.10: AR 100,000 EUR cents = 110,000 USD cents.
- 2026-01-31 at 1.20: AR 100,000 -> 120,000; carried at 110,000: unrealized gain 10,000.
  Reversed 2026-02-01.
- Payment at 1.20: Cash 48,000; AR off at its historical 1.10: 44,000; realized gain 4,000.
- 2026-02-28 at 1.15: AR 60,000 EUR -> 69,000, carried 110,000 - 44,000 = 66,000: +3,000;
  Cash 40,000 EUR -> 46,000, carried 48,000: -2,000; net unrealized gain 1,000. Reversed
  2026-03-01.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from q2c_pipeline.core.policy import Policy
from q2c_pipeline.engine import run_engine
from q2c_pipeline_tests.revenue.builders import T, company, frames, invoice, invoice_line


def _tables(periods=None, settles_in="EUR"):
    tables = {**company(), **frames(
        invoices=[invoice("in_1", "2026-01-15", currency="EUR")],
        invoice_lines=[invoice_line("il_1", "in_1", 100_000, "2026-01-15", "2026-07-15")],
        payments=[{"payment_id": "py_1", "paid_at": T("2026-02-20"), "amount": 40_000,
                   "currency": "EUR", "invoice_id": "in_1", "customer_id": "K1",
                   "correlation_id": "in_1"}],
        fx_rates=[{"rate_date": T(day), "from_currency": "EUR", "to_currency": "USD",
                   "rate": rate}
                  for day, rate in (("2026-01-01", "1.10"), ("2026-01-31", "1.20"),
                                    ("2026-02-28", "1.15"))],
    )}
    tables["legal_entities"]["settlement_currencies"] = settles_in
    if periods is not None:
        tables["accounting_periods"] = pd.DataFrame(periods)
    return tables


def _remeasurement(journal_lines: pd.DataFrame) -> list[tuple]:
    lines = journal_lines[journal_lines["source_type"] == "fx_remeasurement"]
    return [(str(r.entry_date), r.account, r.debit, r.credit, r.debit_functional,
             r.credit_functional) for r in lines.itertuples()]


def test_open_receivable_and_cash_are_remeasured_at_month_end_and_reversed_on_day_one():
    result = run_engine(_tables(), Policy(), date(2026, 3, 5))
    assert _remeasurement(result.journal_lines) == [
        ("2026-01-31", "AccountsReceivable", 0, 0, 10_000, 0),
        ("2026-01-31", "FxGain", 0, 0, 0, 10_000),
        ("2026-02-01", "AccountsReceivable", 0, 0, 0, 10_000),
        ("2026-02-01", "FxGain", 0, 0, 10_000, 0),
        ("2026-02-28", "AccountsReceivable", 0, 0, 3_000, 0),
        ("2026-02-28", "Cash", 0, 0, 0, 2_000),
        ("2026-02-28", "FxGain", 0, 0, 0, 1_000),
        ("2026-03-01", "AccountsReceivable", 0, 0, 0, 3_000),
        ("2026-03-01", "Cash", 0, 0, 2_000, 0),
        ("2026-03-01", "FxGain", 0, 0, 1_000, 0),
    ]
    # The realized gain on the payment is untouched (payment rate 1.20 vs invoice rate 1.10).
    realized = result.journal_lines[(result.journal_lines["source_type"] == "payment")
                                    & (result.journal_lines["account"] == "FxGain")]
    assert realized["credit_functional"].tolist() == [4_000]


def test_remeasurement_lifts_the_month_end_balance_and_the_reversal_restores_history():
    balances = run_engine(_tables(), Policy(), date(2026, 3, 5)).account_balances
    closing = balances.set_index(["account", "period"])["closing_balance_functional"]
    assert closing[("AccountsReceivable", "2026-01")] == 120_000
    assert closing[("AccountsReceivable", "2026-02")] == 69_000
    assert closing[("Cash", "2026-02")] == 46_000
    assert closing[("AccountsReceivable", "2026-03")] == 66_000  # reversed: historical again
    assert closing[("Cash", "2026-03")] == 48_000


def test_deferred_revenue_is_non_monetary_and_keeps_its_historical_rate():
    jl = run_engine(_tables(), Policy(), date(2026, 3, 5)).journal_lines
    remeasured = set(jl.loc[jl["source_type"] == "fx_remeasurement", "account"])
    assert remeasured == {"AccountsReceivable", "Cash", "FxGain"}


def test_each_remeasurement_journal_balances_in_functional_currency_with_zero_in_euro():
    jl = run_engine(_tables(), Policy(), date(2026, 3, 5)).journal_lines
    fx = jl[jl["source_type"] == "fx_remeasurement"]
    assert fx["journal_id"].nunique() == 4
    sums = fx.groupby("journal_id")[["debit_functional", "credit_functional"]].sum()
    assert (sums["debit_functional"] == sums["credit_functional"]).all()
    assert (fx["debit"] == 0).all() and (fx["credit"] == 0).all()
    assert set(fx["currency"]) == {"EUR"}


def test_reversal_waits_until_its_day_one_is_known():
    # As of the month end the remeasurement is booked; its reversal is dated in the future.
    jl = run_engine(_tables(), Policy(), date(2026, 1, 31)).journal_lines
    assert _remeasurement(jl) == [("2026-01-31", "AccountsReceivable", 0, 0, 10_000, 0),
                                  ("2026-01-31", "FxGain", 0, 0, 0, 10_000)]
    # Mid-month the current month end is not reached yet.
    assert _remeasurement(run_engine(_tables(), Policy(), date(2026, 1, 30)).journal_lines) == []


def test_a_closed_month_is_not_remeasured():
    periods = [{"legal_entity": "US01", "period": "2026-01", "status": "closed",
                "closed_at": T("2026-02-03")}]
    jl = run_engine(_tables(periods), Policy(), date(2026, 2, 28)).journal_lines
    dates = {d for d, *_ in _remeasurement(jl)}
    assert dates == {"2026-02-28"}


def test_a_loss_goes_to_fx_loss_and_the_same_input_gives_the_same_keys():
    tables = _tables()
    tables["fx_rates"] = pd.DataFrame([
        {"rate_date": T("2026-01-01"), "from_currency": "EUR", "to_currency": "USD",
         "rate": "1.10"},
        {"rate_date": T("2026-01-31"), "from_currency": "EUR", "to_currency": "USD",
         "rate": "1.05"}])
    first = run_engine(tables, Policy(), date(2026, 1, 31)).journal_lines
    # 100,000 EUR cents at 1.05 = 105,000 against 110,000 carried: a 5,000 loss.
    assert _remeasurement(first) == [("2026-01-31", "AccountsReceivable", 0, 0, 0, 5_000),
                                     ("2026-01-31", "FxLoss", 0, 0, 5_000, 0)]
    again = run_engine(tables, Policy(), date(2026, 1, 31)).journal_lines
    pd.testing.assert_frame_equal(first, again)


def test_cash_in_a_currency_the_entity_does_not_settle_in_is_never_remeasured():
    # why: a Stripe account settling in USD converts the EUR charge when it is paid: the 48,000
    # USD cents are the cash, its realized FX was booked at the payment; only the receivable
    # is still EUR at the month end (AR +3,000 on 2026-02-28, as above)
    result = run_engine(_tables(settles_in=None), Policy(), date(2026, 3, 5))
    remeasured = {account for _, account, *_ in _remeasurement(result.journal_lines)}
    assert remeasured == {"AccountsReceivable", "FxGain"}
