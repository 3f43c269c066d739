"""The straightforward per-row implementation of ``day`` amortization.

One obligation at a time, one month at a time, plain Python integers and ``datetime.date``
ordinals: slow, and obviously right. It is the oracle the vectorized ``spread_amounts`` is tested
against (``q2c_pipeline_tests/revenue/test_schedules_reference.py``) and the baseline the
benchmark (``benchmarks/revenue_schedules.py``) measures the engine against. Never used on a hot
path.
"""

from __future__ import annotations

import datetime


def spread_with_loop(items) -> list[tuple[int, int, int]]:
    """The baseline: one obligation at a time, one month at a time, plain Python integers.

    Same convention as the engine's ``day`` amortization: a month's share is amount x its days /
    all days, rounded half-up; the last month takes what is left.
    """
    out = []
    for item, (amount, start, end) in enumerate(
            zip(items["amount"].tolist(), items["start"].tolist(), items["end"].tolist(),
                strict=True)):
        first_day = start.date().toordinal()
        # the start day counts in full; a partial last day is cut off
        last_day = max(end.date().toordinal(), first_day + 1)
        total_days = last_day - first_day
        year, month = start.year, start.month
        month_start = first_day
        given = 0
        while True:
            next_year, next_month = (year + 1, 1) if month == 12 else (year, month + 1)
            next_start = datetime.date(next_year, next_month, 1).toordinal()
            month_end = min(last_day, next_start)
            index = (year - 1970) * 12 + month - 1
            if month_end >= last_day:
                out.append((item, index, amount - given))
                break
            share = (2 * abs(amount) * (month_end - month_start) + total_days) // (2 * total_days)
            share = share if amount >= 0 else -share
            out.append((item, index, share))
            given += share
            year, month, month_start = next_year, next_month, next_start
    return out
