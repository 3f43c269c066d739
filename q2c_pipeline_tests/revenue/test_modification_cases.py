"""Contract modifications where they meet time: versions known by their accounting date, products
added mid-term, future-dated and backdated amendments, cancellations and cuts larger than what
remains (ASC 606-10-25-10..13, 32-42..45)."""

from datetime import date

from q2c_pipeline.core.policy import Policy
from q2c_pipeline.engine import run_engine, schedule_as_of
from q2c_pipeline_tests.revenue.contract_builders import (
    MONTH,
    POLICY,
    closing,
    contract_line,
    revenue_by_period,
    tables,
    versions,
)

DEC = date(2026, 12, 31)
DAY = Policy(amortization="day")


def test_a_product_added_by_a_july_amendment_starts_then_and_never_rewrites_january():
    # Seats 12,000.00 for 2026 by day; an amendment signed 2026-06-20, effective 2026-07-01,
    # adds support at 3,000.00 for July..December (its SSP; no catalog). ASC 606-10-25-13(a):
    # 6,049.32 of the seats is unrecognized (184/365 x 12,000.00), the amendment promises
    # 3,000.00; 9,049.32 over the two remaining obligations by remaining SSP (6,049.32 :
    # 3,000.00) gives each exactly that. January..June are the rows version 1 wrote.
    lines = [contract_line(), contract_line("L2", 300_000, start="2026-07-01", product="SUPPORT",
                                            effective="2026-07-01")]
    amended = tables(lines, versions(("2026-06-20", "2026-07-01")))
    before = schedule_as_of(amended, DAY, date(2026, 6, 30))
    after = schedule_as_of(amended, DAY, DEC)
    assert set(before["source_id"]) == {"L1"}
    first_half = after[after["period"] <= "2026-06"].reset_index(drop=True)
    assert first_half.equals(before[before["period"] <= "2026-06"].reset_index(drop=True))
    support = after[after["source_id"] == "L2"]
    assert support["period"].min() == "2026-07" and support["amount"].sum() == 300_000
    seats = after[after["source_id"] == "L1"]
    assert seats["amount"].sum() == 1_200_000
    result = run_engine(amended, DAY, DEC)
    assert result.allocation.set_index("contract_line_id")["allocated_amount"].to_dict() == {
        "L1": 1_200_000, "L2": 300_000}


def test_a_future_dated_amendment_is_unseen_by_a_close_before_its_effective_date():
    # +6,000.00 on the seats, signed 2026-03-01 but effective 2026-04-01: a close as of
    # 2026-03-31 gives exactly the unamended schedule; as of April the amendment is there.
    lines = [contract_line(), contract_line("L1a", 6 * MONTH, start=None, end=None,
                                            revises="L1", effective="2026-04-01")]
    amended = tables(lines, versions(("2026-03-01", "2026-04-01")))
    plain = schedule_as_of(tables(), POLICY, date(2026, 3, 31))
    march = schedule_as_of(amended, POLICY, date(2026, 3, 31))
    assert march.equals(plain)
    april = run_engine(amended, POLICY, date(2026, 4, 30))
    # 9,000.00 unrecognized + 6,000.00 = 15,000.00 over April..December: 1,666.66 a month
    # (month_even truncates; December takes the rest)
    got = revenue_by_period(april)
    assert [got[f"2026-{m:02d}"] for m in (3, 4, 11, 12)] == [MONTH, 166_666, 166_666, 166_672]


def test_a_backdated_cancellation_reverses_the_month_already_booked_in_the_signing_month():
    # Cancelled from 2026-04-01 by an amendment signed only on 2026-05-10 (delta -9,000.00):
    # April's 1,000.00 was already recognized and its period stays as booked; the reversal of
    # April's revenue is a cumulative catch-up in May (-1,000.00); nothing after.
    lines = [contract_line(), contract_line("L1c", -9 * MONTH, start="2026-04-01",
                                            revises="L1", effective="2026-04-01",
                                            quantity=-1.0)]
    result = run_engine(tables(lines, versions(("2026-05-10", "2026-04-01"))), POLICY, DEC)
    got = revenue_by_period(result)
    assert got == {"2026-01": MONTH, "2026-02": MONTH, "2026-03": MONTH, "2026-04": MONTH,
                   "2026-05": -MONTH}
    assert sum(got.values()) == 3 * MONTH


def test_a_price_cut_larger_than_what_remains_is_a_catch_up_never_negative_later_months():
    # On 2026-10-01 the price drops by 4,000.00 for October..December, where 3,000.00 remains:
    # the consideration left is 3,000.00 - 4,000.00 = -1,000.00, so nothing is spread over
    # October..December and the -1,000.00 is a reduction of revenue in October (ASC
    # 606-10-32-43: "a reduction of revenue in the period in which the transaction price
    # changes"). Revenue for the year = 8,000.00 = the new price.
    lines = [contract_line(), contract_line("L1p", -4 * MONTH, start=None, end=None,
                                            revises="L1", effective="2026-10-01",
                                            quantity=0.0)]
    result = run_engine(tables(lines, versions(("2026-09-25", "2026-10-01"))), POLICY, DEC)
    got = revenue_by_period(result)
    assert {p: a for p, a in got.items() if p >= "2026-10"} == {"2026-10": -MONTH}
    assert sum(got.values()) == 8 * MONTH
    assert closing(result, "2026-12")["Revenue"] == 8 * MONTH


def test_cancelling_one_obligation_pools_what_is_left_over_the_one_that_remains():
    # 25-13(a) with two obligations: seats (stated 12,000.00) and support (6,000.00) for 2026
    # at a bundle price of 15,000.00: relative SSP 12,000 : 6,000 -> 10,000.00 / 5,000.00.
    # Seats cancelled from 2026-07-01, the CPQ delta -6,000.00 (the seats' stated rest of year).
    # By day, January..June recognized: seats 849.32 + 767.12 + 849.32 + 821.92 + 849.32 +
    # 821.92 = 4,958.92; support 424.66 + 383.56 + 424.66 + 410.96 + 424.66 + 410.96 =
    # 2,479.46. Unrecognized: 5,041.08 + 2,520.54 = 7,561.62; with -6,000.00 promised, 1,561.62
    # is left for the one obligation that remains, the support's July..December. The seats
    # recognize nothing after June; the year's revenue is the new price, 9,000.00.
    lines = [contract_line(amount=12 * MONTH), contract_line("L2", 6 * MONTH, product="SUPPORT"),
             contract_line("L1c", -6 * MONTH, start="2026-07-01", revises="L1",
                           effective="2026-07-01", quantity=-1.0)]
    header = versions(("2026-06-25", "2026-07-01"))
    header[0]["transaction_price"] = 15 * MONTH
    result = run_engine(tables(lines, header), DAY, DEC)
    seats, support = revenue_by_period(result, "L1"), revenue_by_period(result, "L2")
    assert sum(seats.values()) == 495_892 and max(seats) == "2026-06"
    assert sum(a for p, a in support.items() if p >= "2026-07") == 156_162
    assert sum(seats.values()) + sum(support.values()) == 9 * MONTH
