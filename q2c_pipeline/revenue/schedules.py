"""Vectorized spreading of amounts over calendar-month periods.

One call spreads every obligation at once with numpy, and the last month of each obligation takes
what is left (``rounding: last_period_absorbs``), so every schedule sums exactly to its amount.
The output's ``item`` and ``month`` columns are built in place by cumulative sums; shares are
computed per obligation wherever they repeat (every month wholly inside a term has one of four
lengths) and looked up per row, so a schedule row costs a few array passes, not a division.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from q2c_pipeline.core.calendar import month_index
from q2c_pipeline.core.policy import AMORTIZATIONS
from q2c_pipeline.core.rounding import divide_truncating, mul_div_half_up

_NS_PER_MS = 1_000_000
_BLOCK_ROWS = 1 << 17  # rows per block of per-row work: temporaries stay cache-sized


def spread_amounts(items: pd.DataFrame, amortization: str = "day") -> pd.DataFrame:
    """Spread each item's ``amount`` over the months of ``[start, end)``.

    ``items`` has ``amount`` (int minor units, may be negative), ``start`` and ``end`` (naive UTC
    timestamps). An item whose ``end`` is missing or not after ``start`` is point-in-time: all of
    it falls in the month of ``start``. Returns one row per item and month touched:
    ``item`` (position of the item in ``items``), ``month`` (months since 1970-01), ``amount``.

    Stripe's amortization conventions (docs.stripe.com/revenue-recognition/revenue-settings):

    - ``day`` ("by day"): whole days; the start day counts in full and a partial last day is cut
      off (15 June 12:00 .. 13 October 12:00 is 16 + 31 + 31 + 30 + 12 days); a month's share is
      amount x its days / all days, rounded half-up; the last month takes what is left.
    - ``millisecond``: the same by elapsed milliseconds.
    - ``month_even`` ("by month evenly"): one equal (truncated) share per calendar month from the
      start month; the partial month holding the end is cut off; the last month takes the rest.
    - ``month_prorated`` ("first and last month prorated"): partial first and last months by
      elapsed milliseconds, equal (truncated) shares for the full months, and the last full month
      takes the rounding residue.
    Each item's rows sum exactly to its amount.

    The three output columns are written in place into one preallocated int64 block that becomes
    the frame as is; per-row temporaries are bounded by ``_BLOCK_ROWS`` rows.
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
    s_day = start.astype("datetime64[D]").astype(np.int64)
    # ``day``: the start day counts in full, a partial last day is cut off (Stripe's "by day");
    # a term shorter than its first day still counts that day.
    e_day = np.maximum(safe_end.astype("datetime64[D]").astype(np.int64), s_day + 1)
    if amortization == "month_even":
        # one equal share per calendar month from the start month; the month holding the end
        # (a partial last month) is cut off, unless the term ends within its first month
        last = first + np.maximum(month_index(safe_end) - first, 1) - 1
    elif amortization == "day":
        last = month_index((e_day - 1).astype("datetime64[D]"))
    else:
        last = month_index(safe_end - np.timedelta64(1, "ns"))
    last = np.where(point, first, last)
    count = last - first + 1
    ends = np.cumsum(count)
    row_start = ends - count
    last_row = ends - 1

    out = np.empty((3, int(ends[-1])), dtype=np.int64)
    item_column, month_column, share_column = out
    # item: 0 then +1 at each item's first row; month: +1 per row, reset at each first row.
    item_column.fill(0)
    item_column[row_start[1:]] = 1
    np.cumsum(item_column, out=item_column)
    month_column.fill(1)
    month_column[0] = first[0]
    month_column[row_start[1:]] = first[1:] - last[:-1]
    np.cumsum(month_column, out=month_column)

    if amortization == "month_even":
        equal = divide_truncating(amount, count)
        np.take(equal, item_column, out=share_column)
        share_column[last_row] = amount - equal * (count - 1)
    else:
        if amortization == "day":
            s, e = s_day, e_day
            unit = "datetime64[D]"
        else:
            s = start.astype(np.int64) // _NS_PER_MS
            e = safe_end.astype(np.int64) // _NS_PER_MS
            unit = "datetime64[ms]"
        # First day (or millisecond) of every month from the lowest first to past the highest
        # last month: one small table instead of calendar casts per row.
        low = int(first.min())
        month_starts = np.arange(low, int(last.max()) + 2).astype("datetime64[M]").astype(
            unit).astype(np.int64)
        total = np.maximum(e - s, 1)
        if amortization == "month_prorated":
            for lo, hi in _item_blocks(ends):
                r0, r1 = int(row_start[lo]), int(ends[hi - 1])
                share_column[r0:r1] = _spread_prorated(
                    amount[lo:hi], first[lo:hi] - low, count[lo:hi], s[lo:hi], e[lo:hi],
                    total[lo:hi], month_starts)
        else:
            _spread_elapsed(out, amount, first - low, last - low, row_start, last_row, s, e,
                            total, low, month_starts)
    # The 2-D block becomes the frame's single int64 block without a consolidating copy.
    return pd.DataFrame(out.T, columns=["item", "month", "amount"], copy=False)


def _spread_elapsed(out, amount, first, last, row_start, last_row, s, e, total, low,
                    month_starts) -> None:
    """Fill ``out[2]`` for ``day``/``millisecond``: each month's share of elapsed time.

    A month strictly between an item's first and last month lies wholly inside its term, so its
    share is amount x the month's length / total: an item has one such share per distinct month
    length (28..31 days), computed once per item and looked up per row. The first month's share
    is computed per item from its overlap; the last month takes the amount less the first share
    and the middle shares (counted per month length from a cumulative table of months).
    """
    item_column, month_column, share_column = out
    n = amount.size
    count = last - first + 1
    span = np.diff(month_starts)
    lengths, length_code = np.unique(span, return_inverse=True)
    k = lengths.size
    # A month longer than an item's whole term is never one of its middle months: share 0
    # (that entry is only ever looked up for a first or last row, which is overwritten below).
    middle_share = np.empty((n, k), dtype=np.int64)
    for j, length in enumerate(lengths.tolist()):  # at most 4 month lengths
        middle_share[:, j] = mul_div_half_up(amount, np.where(length <= total, length, 0), total)
    flat_share = middle_share.ravel()
    code = length_code.astype(np.int64)
    for r0 in range(0, share_column.size, _BLOCK_ROWS):
        r1 = min(r0 + _BLOCK_ROWS, share_column.size)
        index = item_column[r0:r1] * k
        index += code[month_column[r0:r1] - low]
        np.take(flat_share, index, out=share_column[r0:r1])

    several = count > 1
    first_overlap = (np.minimum(e, month_starts[first + 1])
                     - np.maximum(s, month_starts[first]))
    first_share = mul_div_half_up(amount[several], np.maximum(first_overlap[several], 0),
                                  total[several])
    share_column[row_start[several]] = first_share
    # Middle months of item i are first+1 .. last-1; months_before[m, j] counts months < m of
    # length lengths[j].
    months_before = np.zeros((span.size + 1, k), dtype=np.int64)
    months_before[np.arange(1, span.size + 1), code] = 1
    np.cumsum(months_before, axis=0, out=months_before)
    middle_months = np.where(several[:, None],
                             months_before[last] - months_before[np.minimum(first + 1, last)], 0)
    taken = (middle_share * middle_months).sum(axis=1)
    taken[several] += first_share
    share_column[last_row] = amount - taken


def _item_blocks(ends: np.ndarray):
    """(first item, end item) of consecutive blocks of whole items of about ``_BLOCK_ROWS`` rows."""
    cuts = np.searchsorted(ends, np.arange(_BLOCK_ROWS, int(ends[-1]), _BLOCK_ROWS), "right")
    edges = np.unique(np.concatenate(([0], cuts, [ends.size]))).tolist()
    return zip(edges[:-1], edges[1:], strict=True)


def _spread_prorated(amount, first, count, s, e, total, month_starts) -> np.ndarray:
    """``month_prorated`` shares of a block of whole items, row by row in item order.

    ``first`` is each item's first month as an offset into ``month_starts`` (the first millisecond
    of each month); ``s``/``e``/``total`` are in milliseconds.
    """
    item = np.repeat(np.arange(amount.size, dtype=np.int64), count)
    row_start = np.cumsum(count) - count
    offset = np.arange(item.size, dtype=np.int64) - row_start[item]
    month = first[item] + offset
    is_last = offset == count[item] - 1
    m_start = month_starts[month]
    m_end = month_starts[month + 1]
    s_row = s[item]
    overlap = np.minimum(e[item], m_end) - np.maximum(s_row, m_start)
    share = mul_div_half_up(amount[item], np.maximum(overlap, 0), total[item])
    partial_first = (offset == 0) & (s_row != m_start) & ~is_last
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
    share = np.where(partial_first | partial_last, share, equal[item])
    # The rounding residue goes to the last full month (Stripe's "first and last month
    # prorated": 15.50 / 30.66 / 30.66 / 30.68 / 12.50); with no full month, to the last month.
    last_row = row_start + count - 1
    ends_partially = np.add.reduceat(partial_last.astype(np.int64), row_start) > 0
    has_full = (n_full + last_is_full) > 0
    absorb = np.where(ends_partially & has_full, last_row - 1, last_row)
    share[absorb] = 0
    share[absorb] = amount - np.add.reduceat(share, row_start)
    return share


def split_months_into_days(amount, month, start, end, floor,
                           daily_rounding: str = "cumulative") -> pd.DataFrame:
    """Each (obligation, month) amount spread over its days (``journal_granularity: day``).

    ``amount``/``month`` are one schedule row each; ``start``/``end`` the obligation's service
    window (``end`` NaT = point in time); ``floor`` the date before which nothing is recognized
    (the booking date under ``catch_up``; NaT = none). A row covers the service days of its month,
    and, in the floor's month, every earlier service day too (recognized on the floor date). Days
    share the amount equally, by cumulative half-up rounding, so they sum exactly to it. A row
    with no service day in its month (a point-in-time item, or a share moved by a reduction) falls
    on its service start or floor date, kept inside the month. ``daily_rounding``
    ``equal_days`` gives every day the same half-up share and the last day the rest (Lago's
    daily release) instead of cumulative rounding.
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
    # the start day counts in full, a partial last day is cut off (``day`` amortization)
    e_day = np.maximum(np.where(point, start, end).astype("datetime64[D]").astype(np.int64),
                       s_day + 1)
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
    if daily_rounding == "equal_days":
        # Lago's daily release: each day the amount / days, half-up; the last day absorbs
        equal = mul_div_half_up(amount, np.ones_like(count), np.maximum(count, 1))
        share = np.where(k == total, amount[row] - equal[row] * (total - 1), equal[row])
    else:
        share = mul_div_half_up(amount[row], k, total) - mul_div_half_up(amount[row], k - 1,
                                                                         total)
    day = np.maximum(lo[row] + k - 1, np.where(empty[row], lo[row], f_day[row]))
    days = pd.DataFrame({"row": row, "day": day, "amount": share})
    days = days.groupby(["row", "day"], as_index=False, sort=True)["amount"].sum()
    days["day"] = days["day"].to_numpy().astype("datetime64[D]").astype("datetime64[ns]")
    return days
