import pandas as pd
import pytest

from q2c_pipeline.core.calendar import period_labels
from q2c_pipeline.revenue.schedules import spread_amounts

T = pd.Timestamp


def _spread(amount, start, end, method):
    items = pd.DataFrame({"amount": [amount], "start": [T(start)],
                          "end": [T(end) if end else pd.NaT]})
    out = spread_amounts(items, method)
    return dict(zip(period_labels(out["month"]), out["amount"], strict=True))


def test_day_schedule_rounds_half_up_and_puts_residual_in_last_period():
    # 12,000.00 USD = 1,200,000 minor over 365 days of 2026.
    # 31-day month: 1,200,000 x 31/365 = 101,917.808 -> 101,918
    # 30-day month: 1,200,000 x 30/365 =  98,630.137 ->  98,630
    # February:     1,200,000 x 28/365 =  92,054.795 ->  92,055
    # Jan..Nov = 6 x 101,918 + 4 x 98,630 + 92,055 = 1,098,083 -> December = 101,917
    got = _spread(1_200_000, "2026-01-01", "2027-01-01", "day")
    assert got["2026-01"] == 101_918
    assert got["2026-02"] == 92_055
    assert got["2026-04"] == 98_630
    assert got["2026-12"] == 101_917
    assert len(got) == 12
    assert sum(got.values()) == 1_200_000


def test_month_even_schedule_truncates_equal_shares_and_last_month_absorbs():
    # 2026-01-15..2026-04-15 = 3 whole months: 1,000 / 3 = 333 (truncated), last 334
    got = _spread(1_000, "2026-01-15", "2026-04-15", "month_even")
    assert got == {"2026-01": 333, "2026-02": 333, "2026-03": 334}


def test_month_prorated_schedule_prorates_first_partial_month_by_elapsed_time():
    # 2026-01-16..2026-03-01: 16 days in January of 44; 3,100 x 16/44 = 1,127.27 -> 1,127;
    # February is a full month and the last one: 3,100 - 1,127 = 1,973
    got = _spread(3_100, "2026-01-16", "2026-03-01", "month_prorated")
    assert got == {"2026-01": 1_127, "2026-02": 1_973}


def test_millisecond_schedule_counts_a_half_day():
    # 2026-01-31T12:00 .. 2026-02-01T12:00: half the time in each month: 101 -> 51 (half-up), 50
    got = _spread(101, "2026-01-31T12:00", "2026-02-01T12:00", "millisecond")
    assert got == {"2026-01": 51, "2026-02": 50}


def test_point_in_time_item_falls_entirely_in_its_month():
    assert _spread(-4_200, "2026-05-20", None, "day") == {"2026-05": -4_200}


def test_negative_amendment_delta_spreads_like_a_positive_one():
    got = _spread(-1_200_000, "2026-01-01", "2027-01-01", "day")
    assert got["2026-01"] == -101_918
    assert sum(got.values()) == -1_200_000


@pytest.mark.parametrize("method", ["day", "millisecond", "month_even", "month_prorated"])
def test_every_schedule_sums_exactly_to_its_amount(method):
    items = pd.DataFrame({
        "amount": [999_999_999_999, 7, 1, 36_000_00],
        "start": [T("2024-02-29"), T("2026-03-31T23:59"), T("2026-01-01"), T("2026-01-15")],
        "end": [T("2027-02-28"), T("2026-04-01T00:01"), T("2026-01-02"), T("2029-01-15")],
    })
    out = spread_amounts(items, method)
    assert out.groupby("item")["amount"].sum().tolist() == items["amount"].tolist()


# Stripe's settings example (docs.stripe.com/revenue-recognition/revenue-settings/examples,
# "Amortization granularity"): a 4-month, 120 USD subscription from 15 June 12:00:00 UTC to
# 13 October 12:00:00 UTC (120 days), one figure per month in the published tables.
STRIPE_START, STRIPE_END = "2026-06-15T12:00", "2026-10-13T12:00"


@pytest.mark.parametrize(("method", "published"), [
    # "By day ... Cut off the last day": 15 June counts in full (16 days), 13 October is cut off
    # (12 days): 16 + 31 + 31 + 30 + 12 = 120 days, 1.00 a day.
    ("day", {"2026-06": 1_600, "2026-07": 3_100, "2026-08": 3_100, "2026-09": 3_000,
             "2026-10": 1_200}),
    # by millisecond: 15.5 days in June, 12.5 in October
    ("millisecond", {"2026-06": 1_550, "2026-07": 3_100, "2026-08": 3_100, "2026-09": 3_000,
                     "2026-10": 1_250}),
    # "By month evenly ... Cut off the last month": 120 / 4 = 30.00 for June..September, nothing
    # in October
    ("month_even", {"2026-06": 3_000, "2026-07": 3_000, "2026-08": 3_000, "2026-09": 3_000}),
    # "first and last month prorated": June 15.50 and October 12.50 by the millisecond; the
    # 92.00 between them in equal truncated shares 30.66, 30.66 and the last full month takes
    # the residue: 92.00 - 61.32 = 30.68
    ("month_prorated", {"2026-06": 1_550, "2026-07": 3_066, "2026-08": 3_066,
                        "2026-09": 3_068, "2026-10": 1_250}),
])
def test_amortization_reproduces_stripes_published_settings_example(method, published):
    assert _spread(12_000, STRIPE_START, STRIPE_END, method) == published


def test_day_amortization_never_puts_the_residue_in_a_month_with_no_counted_day():
    # why: an end at 06:00 on the 1st cuts that day off, so November has no day of the term;
    # 100 over 2026-10-01..2026-11-01T06:00 is October's alone
    assert _spread(100, "2026-10-01", "2026-11-01T06:00", "day") == {"2026-10": 100}
