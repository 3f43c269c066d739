"""Contract modifications: prospective, cumulative catch-up, separate contract; as-of schedules."""

from datetime import date

import pandas as pd
import pytest

from q2c_pipeline.core.policy import Policy
from q2c_pipeline.engine import run_engine, schedule_as_of
from q2c_pipeline_tests.revenue.builders import T, catalog, company, frames

# Base: 12,000.00 over 2026 signed 2026-01-01 (version 1). Amendment (version 2, signed
# 2026-07-01): +6,000.00 from 2026-07-01 on line L1, or a new 3,000.00 line for the rest of 2026.


def _amended(treatment, delta_amount=600_000, end=None):
    lines = [
        {"contract_line_id": "L1", "contract_id": "C1", "product_code": "P", "quantity": 1.0,
         "amount": 1_200_000, "ssp_amount": None, "service_start": T("2026-01-01"),
         "service_end": T("2027-01-01"), "revenue_pattern": "ratable", "revises_line_id": None,
         "effective_date": pd.NaT, "allocation_group": None, "modification_treatment": None},
        {"contract_line_id": "L1a", "contract_id": "C1", "product_code": "P", "quantity": 1.0,
         "amount": delta_amount, "ssp_amount": None, "service_start": pd.NaT,
         "service_end": T(end) if end else pd.NaT, "revenue_pattern": None,
         "revises_line_id": "L1", "effective_date": T("2026-07-01"), "allocation_group": None,
         "modification_treatment": treatment},
    ]
    header = {"contract_id": "C1", "customer_id": "K1", "legal_entity": "US01",
              "currency": "USD", "transaction_price": None, "correlation_id": "C1"}
    return {**company(), "products": catalog("P"), **frames(
        contracts=[{**header, "signed_date": T("2026-01-01"), "version": 1},
                   {**header, "signed_date": T("2026-07-01"), "version": 2}],
        contract_lines=lines)}


def _by_period(schedule, source_id="L1"):
    rows = schedule[schedule["source_id"] == source_id]
    return rows.set_index("period")


def test_cumulative_catch_up_recognizes_the_elapsed_share_of_the_change_in_its_first_month():
    # ASC 606-10-25-13(b): the +6,000.00 is spread over the whole of 2026 by day as if it had
    # been there from the start: Jan 6,000.00 x 31/365 = 509.589 -> 509.59, Feb x 28/365 =
    # 460.27, Mar 509.59, Apr x 30/365 = 493.15, May 509.59, Jun 493.15: 2,975.34 elapsed by
    # July, recognized in July with July's own 509.59 and the base's 1,019.18:
    # 1,019.18 + 509.59 + 2,975.34 = 4,504.11. December takes the rest of the change:
    # 6,000.00 - 5,490.41 = 509.59 (+ base 1,019.17).
    result = run_engine(_amended("catch_up"), Policy(), date(2026, 12, 31))
    sched = _by_period(result.revenue_schedule)
    assert sched.loc["2026-06", "amount"] == 98_630
    assert sched.loc["2026-07", "amount"] == 450_411
    assert sched.loc["2026-12", "amount"] == 101_917 + 50_959
    assert sched["amount"].sum() == 1_800_000
    assert sched.loc["2026-07", "treatment"] == "catch_up"
    assert sched.loc["2026-07", "schedule_version"] == 2
    assert set(sched.loc[:"2026-06", "treatment"]) == {"original"}


def test_cumulative_catch_up_ignores_the_catch_up_policy_switch():
    # catch_up: false only concerns service before a line is booked; the modification's
    # catch-up is the accounting treatment itself and still lands in July.
    result = run_engine(_amended("catch_up"), Policy(catch_up=False), date(2026, 12, 31))
    assert _by_period(result.revenue_schedule).loc["2026-07", "amount"] == 450_411


def test_modification_at_standalone_price_is_a_separate_contract_with_its_own_obligation():
    # ASC 606-10-25-12: the new 3,000.00 line (2026-07-01..2027-01-01, 184 days) is its own
    # contract: allocated exactly its price, scheduled on its own (July 3,000.00 x 31/184 =
    # 505.43), and the original line's schedule is untouched.
    result = run_engine(_amended("separate_contract", 300_000, "2027-01-01"), Policy(),
                        date(2026, 12, 31))
    alloc = result.allocation.set_index("contract_line_id")
    assert alloc.loc["L1a", "allocated_amount"] == 300_000
    assert alloc.loc["L1a", "transaction_price"] == 300_000
    assert alloc.loc["L1", "allocated_amount"] == 1_200_000
    new = _by_period(result.revenue_schedule, "L1a")
    assert new.loc["2026-07", "amount"] == 50_543
    assert new["amount"].sum() == 300_000
    assert set(new["treatment"]) == {"separate_contract"}
    assert set(new["schedule_version"]) == {2}
    original = _by_period(result.revenue_schedule, "L1")
    assert original["amount"].sum() == 1_200_000
    assert set(original["treatment"]) == {"original"}


@pytest.mark.parametrize("treatment", ["prospective", "catch_up", "separate_contract"])
def test_an_amendment_never_rewrites_the_schedule_rows_of_an_earlier_version(treatment):
    tables = _amended(treatment, 300_000 if treatment == "separate_contract" else 600_000)
    before = schedule_as_of(tables, Policy(), date(2026, 6, 30))
    after = schedule_as_of(tables, Policy(), date(2026, 12, 31))
    # as of 2026-06-30 version 2 is not signed yet: only version 1's schedule exists
    assert set(before["schedule_version"]) == {1}
    assert before["amount"].sum() == 1_200_000
    first_half = after[after["period"] <= "2026-06"].reset_index(drop=True)
    assert first_half.equals(before[before["period"] <= "2026-06"].reset_index(drop=True))
    assert after["amount"].sum() == 1_200_000 + (
        300_000 if treatment == "separate_contract" else 600_000)


def test_unknown_modification_treatment_is_refused_naming_the_line():
    # The engine validates its input: the record is refused as the pipeline would quarantine it.
    with pytest.raises(ValueError, match=r"invalid_value: contract_lines record 'L1a': field "
                       r"'modification_treatment' value 'retro'"):
        run_engine(_amended("retro"), Policy(), date(2026, 12, 31))


def test_day_granularity_books_one_recognition_entry_per_day_summing_to_the_month():
    # 365.00 over 2026 (Stripe's annual example): 1.00 a day. As of 2026-01-15 the recognition
    # entries are the 15 days 2026-01-01..15, 1.00 each, each dated on its day.
    tables = {**company(), **frames(
        invoices=[{"invoice_id": "in_1", "customer_id": "K1", "currency": "USD",
                   "finalized_at": T("2026-01-01"), "correlation_id": "in_1"}],
        invoice_lines=[{"invoice_line_id": "il_1", "invoice_id": "in_1", "amount": 36_500,
                        "service_start": T("2026-01-01"), "service_end": T("2027-01-01")}])}
    result = run_engine(tables, Policy(journal_granularity="day"), date(2026, 1, 15))
    revenue = result.journal_lines.query("source_type == 'revenue' and account == 'Revenue'")
    assert revenue["credit"].tolist() == [100] * 15
    assert revenue["entry_date"].tolist() == [date(2026, 1, d) for d in range(1, 16)]
    assert revenue["journal_id"].nunique() == 15
    deferred = result.account_balances.set_index("account").loc["DeferredRevenue"]
    assert deferred["closing_balance"] == 36_500 - 1_500


def test_day_granularity_rounds_days_cumulatively_and_catches_up_on_the_booking_day():
    # 1,000.00 for 2026-01-01..04 (3 days): 333.33, 666.67 - 333.33 = 333.34, 333.33.
    # 12.00 for 2026-01-01..13 booked 2026-01-10: the nine days before are caught up on the
    # 10th (10 x 1.00), then 1.00 on the 11th and the 12th.
    tables = {**company(), **frames(
        invoices=[{"invoice_id": "in_1", "customer_id": "K1", "currency": "USD",
                   "finalized_at": T("2026-01-01"), "correlation_id": "in_1"},
                  {"invoice_id": "in_2", "customer_id": "K1", "currency": "USD",
                   "finalized_at": T("2026-01-10"), "correlation_id": "in_2"}],
        invoice_lines=[{"invoice_line_id": "il_1", "invoice_id": "in_1", "amount": 100_000,
                        "service_start": T("2026-01-01"), "service_end": T("2026-01-04")},
                       {"invoice_line_id": "il_2", "invoice_id": "in_2", "amount": 1_200,
                        "service_start": T("2026-01-01"), "service_end": T("2026-01-13")}])}
    result = run_engine(tables, Policy(journal_granularity="day"), date(2026, 1, 31))
    revenue = result.journal_lines.query("source_type == 'revenue' and account == 'Revenue'")
    by_line = {sid: dict(zip(g["entry_date"], g["credit"], strict=True))
               for sid, g in revenue.groupby("source_id")}
    assert by_line["il_1"] == {date(2026, 1, 1): 33_333, date(2026, 1, 2): 33_334,
                               date(2026, 1, 3): 33_333}
    assert by_line["il_2"] == {date(2026, 1, 10): 1_000, date(2026, 1, 11): 100,
                               date(2026, 1, 12): 100}
