from datetime import date

import pandas as pd

from q2c_pipeline.core.policy import Policy
from q2c_pipeline.engine import run_engine
from q2c_pipeline_tests.revenue.builders import (
    T,
    company,
    frames,
    invoice,
    invoice_line,
    with_catalog,
)


def _contract(lines):
    return with_catalog({**company(), **frames(
        contracts=[{"contract_id": "C1", "customer_id": "K1", "legal_entity": "US01",
                    "currency": "USD", "signed_date": T("2026-01-01"), "transaction_price": None,
                    "version": 1, "correlation_id": "C1"},
                   {"contract_id": "C1", "customer_id": "K1", "legal_entity": "US01",
                    "currency": "USD", "signed_date": T("2026-06-20"), "transaction_price": None,
                    "version": 2, "correlation_id": "C1"}],
        contract_lines=[{"contract_line_id": lid, "contract_id": "C1", "product_code": "P",
                         "quantity": 1.0, "amount": amount, "ssp_amount": None,
                         "service_start": T(s) if s else pd.NaT,
                         "service_end": T(e) if e else pd.NaT, "revenue_pattern": pattern,
                         "revises_line_id": rev, "effective_date": T(eff) if eff else pd.NaT,
                         "allocation_group": None}
                        for lid, amount, s, e, pattern, rev, eff in lines])})


def test_mid_term_upgrade_is_spread_prospectively_from_its_effective_date():
    # ASC 606-10-25-13(a): base 12,000.00 over 2026 by day; upgrade +6,000.00 effective
    # 2026-07-01. Recognized January..June: 1,019.18 + 920.55 + 1,019.18 + 986.30 + 1,019.18 +
    # 986.30 = 5,950.69, so 6,049.31 is unrecognized; with the 6,000.00 promised by the
    # amendment, 12,049.31 is spread over the 184 days left: July 12,049.31 x 31/184 =
    # 2,030.0468 -> 2,030.05
    tables = _contract([("L1", 1_200_000, "2026-01-01", "2027-01-01", "ratable", None, None),
                        ("L1a", 600_000, None, None, None, "L1", "2026-07-01")])
    result = run_engine(tables, Policy(), date(2026, 12, 31))
    sched = result.revenue_schedule.set_index("period")
    assert sched.loc["2026-06", "amount"] == 98_630
    assert sched.loc["2026-07", "amount"] == 101_918 + 101_087
    assert sched["amount"].sum() == 1_800_000
    # the months before the amendment keep version 1's rows; July on carry version 2
    before, after = sched.loc[:"2026-06"], sched.loc["2026-07":]
    assert set(before["treatment"]) == {"original"} and set(before["schedule_version"]) == {1}
    assert set(after["treatment"]) == {"prospective"} and set(after["schedule_version"]) == {2}
    assert result.allocation["allocated_amount"].tolist() == [1_800_000]


def test_point_in_time_line_without_start_is_recognized_at_contract_signing():
    tables = _contract([("L1", 50_000, None, None, "point_in_time", None, None)])
    result = run_engine(tables, Policy(), date(2026, 3, 31))
    assert result.revenue_schedule[["period", "amount"]].values.tolist() == [["2026-01", 50_000]]


def test_usage_is_recognized_when_it_occurs_and_its_billing_clears_unbilled_receivable():
    tables = {**company(), **frames(
        usage=[{"usage_id": "u1", "occurred_at": T("2026-01-05"), "quantity": 10.0,
                "amount": 2_500, "currency": "USD", "customer_id": "K1",
                "invoice_line_id": "il_1"}],
        invoices=[invoice("in_1", "2026-02-01")],
        invoice_lines=[invoice_line("il_1", "in_1", 2_500, "2026-01-01", "2026-02-01")])}
    result = run_engine(tables, Policy(), date(2026, 2, 28))
    jl = result.journal_lines
    usage = jl[jl["source_type"] == "usage"].set_index("account")
    assert usage.loc["UnbilledAccountsReceivable", "debit"] == 2_500
    assert usage.loc["Revenue", "credit"] == 2_500
    assert result.revenue_schedule["amount"].sum() == 2_500  # never recognized twice
    billing = jl[jl["source_type"] == "invoice"].set_index("account")
    assert billing.loc["UnbilledAccountsReceivable", "credit"] == 2_500


def test_events_after_as_of_are_ignored_so_a_past_as_of_is_reproducible():
    tables = {**company(), **frames(
        invoices=[invoice("in_1", "2026-01-01"), invoice("in_2", "2026-03-01")],
        invoice_lines=[invoice_line("il_1", "in_1", 10_000), invoice_line("il_2", "in_2", 7)])}
    early = run_engine(tables, Policy(), date(2026, 1, 31))
    assert set(early.journal_lines["source_id"]) == {"in_1", "il_1"}
    assert early.account_balances["period"].max() == "2026-01"
