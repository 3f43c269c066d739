"""Vectorized spreading of amounts over calendar-month periods.

One call spreads every obligation at once with numpy: rows are repeated once per month they touch,
each month's share is computed element-wise, and the last month of each obligation takes what is
left (``rounding: last_period_absorbs``), so every schedule sums exactly to its amount.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from q2c_pipeline.revenue.policy import AMORTIZATIONS
from q2c_pipeline.revenue.rounding import divide_truncating, mul_div_half_up

_NS_PER_MS = 1_000_000


def month_index(timestamps) -> np.ndarray:
    """Months since 1970-01 of each timestamp (2026-01-15 -> 672)."""
    values = np.asarray(timestamps, dtype="datetime64[ns]")
    return values.astype("datetime64[M]").astype(np.int64)


def period_labels(month_indexes) -> np.ndarray:
    """'YYYY-MM' for months-since-1970 indexes."""
    values = np.asarray(month_indexes, dtype=np.int64).astype("datetime64[M]")
    return values.astype(str).astype(object)


def period_end_dates(month_indexes) -> np.ndarray:
    """The last day (00:00) of each month index, as datetime64[ns]."""
    values = (np.asarray(month_indexes, dtype=np.int64) + 1).astype("datetime64[M]")
    return (values.astype("datetime64[D]") - np.timedelta64(1, "D")).astype("datetime64[ns]")


def _month_start_ns(months: np.ndarray) -> np.ndarray:
    return months.astype("datetime64[M]").astype("datetime64[ns]").astype(np.int64)


def _whole_months(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Whole calendar months in [start, end) (2026-01-15..2027-01-15 -> 12; at least 1)."""
    first = month_index(start)
    last = month_index(end)
    start_offset = start.astype(np.int64) - _month_start_ns(first)
    end_offset = end.astype(np.int64) - _month_start_ns(last)
    months = last - first - (end_offset < start_offset).astype(np.int64)
    return np.maximum(months, 1)


def spread_amounts(items: pd.DataFrame, amortization: str = "day") -> pd.DataFrame:
    """Spread each item's ``amount`` over the months of ``[start, end)``.

    ``items`` has ``amount`` (int minor units, may be negative), ``start`` and ``end`` (naive UTC
    timestamps). An item whose ``end`` is missing or not after ``start`` is point-in-time: all of
    it falls in the month of ``start``. Returns one row per item and month touched:
    ``item`` (position of the item in ``items``), ``month`` (months since 1970-01), ``amount``.

    - ``day``: whole days from the start date up to the end (a partial last day counts); a month's
      share is amount x its days / all days, rounded half-up.
    - ``millisecond``: the same by elapsed milliseconds.
    - ``month_even``: one equal (truncated) share per whole month of the term, from the start month.
    - ``month_prorated``: a partial first month by elapsed time, equal (truncated) shares for the
      full months, the last month takes the rest.
    In every case the last month takes what is left, so each item's rows sum exactly to it.
    """
    if amortization not in AMORTIZATIONS:
        raise ValueError(f"amortization {amortization!r} is not one of {', '.join(AMORTIZATIONS)}")
    n = len(items)
    amount = items["amount"].to_numpy(dtype=np.int64)
    start = items["start"].to_numpy(dtype="datetime64[ns]")
    end = items["end"].to_numpy(dtype="datetime64[ns]")
    if n == 0:
        return pd.DataFrame({"item": np.zeros(0, np.int64), "month": np.zeros(0, np.int64),
                             "amount": np.zeros(0, np.int64)})
    if np.isnat(start).any():
        raise ValueError("every item to spread needs a start (or point-in-time) date")
    point = np.isnat(end) | ~(end > start)
    safe_end = np.where(point, start + np.timedelta64(1, "ms"), end)
    first = month_index(start)
    if amortization == "month_even":
        last = first + _whole_months(start, safe_end) - 1
    else:
        last = month_index(safe_end - np.timedelta64(1, "ns"))
    last = np.where(point, first, last)
    count = last - first + 1

    item = np.repeat(np.arange(n, dtype=np.int64), count)
    row_start = np.cumsum(count) - count
    offset = np.arange(item.size, dtype=np.int64) - np.repeat(row_start, count)
    month = first[item] + offset
    is_last = offset == count[item] - 1
    row_amount = amount[item]

    if amortization in ("day", "millisecond", "month_prorated"):
        if amortization == "day":
            s = start.astype("datetime64[D]").astype(np.int64)
            e_floor = safe_end.astype("datetime64[D]")
            e = e_floor.astype(np.int64) + (safe_end > e_floor.astype("datetime64[ns]"))
            # month -> first day through a small lookup table (calendar casts are slow per row)
            low = int(month.min())
            table = np.arange(low, int(month.max()) + 2).astype("datetime64[M]").astype(
                "datetime64[D]").astype(np.int64)
            m_start = table[month - low]
            m_end = table[month - low + 1]
        else:
            s = start.astype(np.int64) // _NS_PER_MS
            e = safe_end.astype(np.int64) // _NS_PER_MS
            m_start = _month_start_ns(month) // _NS_PER_MS
            m_end = _month_start_ns(month + 1) // _NS_PER_MS
        overlap = np.minimum(e[item], m_end) - np.maximum(s[item], m_start)
        total = np.maximum(e - s, 1)[item]
        share = mul_div_half_up(row_amount, np.maximum(overlap, 0), total)
        if amortization == "month_prorated":
            partial_first = (offset == 0) & (s[item] != m_start) & ~is_last
            partial_last = is_last & (e[item] != m_end) & (count[item] > 1)
            elapsed_parts = np.where(partial_first | partial_last, share, 0)
            parts_sum = np.add.reduceat(elapsed_parts, row_start)
            full = ~(partial_first | is_last)
            n_full = np.add.reduceat(full.astype(np.int64), row_start)
            # The last month is a full month too when the term ends on a month boundary.
            last_is_full = np.add.reduceat((is_last & ~partial_last).astype(np.int64), row_start)
            divisor = np.maximum(n_full + last_is_full, 1)
            first_part = np.add.reduceat(np.where(partial_first, share, 0), row_start)
            last_part = parts_sum - first_part
            equal = divide_truncating(amount - first_part - last_part, divisor)
            share = np.where(partial_first, share, equal[item])
    else:  # month_even
        share = divide_truncating(amount, count)[item]

    share = np.where(is_last, 0, share)
    taken = np.add.reduceat(share, row_start)
    share[row_start + count - 1] = amount - taken
    return pd.DataFrame({"item": item, "month": month, "amount": share.astype(np.int64)})


def split_months_into_days(amount, month, start, end, floor) -> pd.DataFrame:
    """Each (obligation, month) amount spread over its days (``journal_granularity: day``).

    ``amount``/``month`` are one schedule row each; ``start``/``end`` the obligation's service
    window (``end`` NaT = point in time); ``floor`` the date before which nothing is recognized
    (the booking date under ``catch_up``; NaT = none). A row covers the service days of its month,
    and, in the floor's month, every earlier service day too (recognized on the floor date). Days
    share the amount equally, by cumulative half-up rounding, so they sum exactly to it. A row
    with no service day in its month (a point-in-time item, or a share moved by a reduction) falls
    on its service start or floor date, kept inside the month.
    Returns ``row`` (position of the schedule row), ``day`` (datetime64[ns]) and ``amount``.
    """
    amount = np.asarray(amount, dtype=np.int64)
    month = np.asarray(month, dtype=np.int64)
    n_rows = amount.size
    if n_rows == 0:
        return pd.DataFrame({"row": np.zeros(0, np.int64),
                             "day": np.zeros(0, "datetime64[ns]"),
                             "amount": np.zeros(0, np.int64)})
    start = np.asarray(start, dtype="datetime64[ns]")
    end = np.asarray(end, dtype="datetime64[ns]")
    floor = np.asarray(floor, dtype="datetime64[ns]")
    s_day = start.astype("datetime64[D]").astype(np.int64)
    point = np.isnat(end) | ~(end > start)
    e_floor = np.where(point, start, end).astype("datetime64[D]")
    e_day = e_floor.astype(np.int64) + (np.where(point, start, end)
                                        > e_floor.astype("datetime64[ns]"))
    e_day = np.where(point, s_day + 1, e_day)
    no_floor = np.isnat(floor)
    f_day = np.where(no_floor, np.iinfo(np.int64).min,
                     np.where(no_floor, start, floor).astype("datetime64[D]").astype(np.int64))
    m_first = month.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    m_next = (month + 1).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    floor_here = (f_day >= m_first) & (f_day < m_next)
    lo = np.where(floor_here, s_day, np.maximum(s_day, m_first))
    hi = np.minimum(e_day, m_next)
    hi = np.where(f_day >= m_next, lo, hi)
    count = np.maximum(hi - lo, 0)
    empty = count == 0
    fallback = np.clip(np.maximum(s_day, f_day), m_first, m_next - 1)
    lo = np.where(empty, fallback, lo)
    count = np.where(empty, 1, count)

    row = np.repeat(np.arange(n_rows, dtype=np.int64), count)
    first = np.cumsum(count) - count
    k = np.arange(row.size, dtype=np.int64) - np.repeat(first, count) + 1
    total = count[row]
    share = mul_div_half_up(amount[row], k, total) - mul_div_half_up(amount[row], k - 1, total)
    day = np.maximum(lo[row] + k - 1, np.where(empty[row], lo[row], f_day[row]))
    days = pd.DataFrame({"row": row, "day": day, "amount": share})
    days = days.groupby(["row", "day"], as_index=False, sort=True)["amount"].sum()
    days["day"] = days["day"].to_numpy().astype("datetime64[D]").astype("datetime64[ns]")
    return days
