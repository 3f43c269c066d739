"""Calendar months as integers: the shared period arithmetic of revenue and accounting.

A month is an int64 count of months since 1970-01 (``2026-01`` -> 672); periods are ``YYYY-MM``
labels. Vectorized with numpy; a table of journal lines or schedule rows holds few distinct
months, so labels and month ends are computed once per month and spread back.
"""

from __future__ import annotations

import numpy as np


def month_index(timestamps) -> np.ndarray:
    """Months since 1970-01 of each timestamp (2026-01-15 -> 672)."""
    values = np.asarray(timestamps, dtype="datetime64[ns]")
    return values.astype("datetime64[M]").astype(np.int64)


def period_labels(month_indexes) -> np.ndarray:
    """'YYYY-MM' for months-since-1970 indexes (an object array of str)."""
    return _map_months(month_indexes, lambda months: months.astype("datetime64[M]")
                       .astype(str).astype(object))


def period_end_dates(month_indexes) -> np.ndarray:
    """The last day (00:00) of each month index, as datetime64[ns]."""
    return _map_months(month_indexes, lambda months: (
        (months + 1).astype("datetime64[M]").astype("datetime64[D]")
        - np.timedelta64(1, "D")).astype("datetime64[ns]"))


def _map_months(month_indexes, convert) -> np.ndarray:
    """``convert`` applied once per distinct month and spread back over every row.

    Calendar casts and string formatting are slow per element, and a table of journal lines or
    schedule rows holds few distinct months: a contiguous range is looked up by offset, anything
    sparser goes through ``np.unique``.
    """
    values = np.asarray(month_indexes, dtype=np.int64)
    if values.size == 0 or values.ndim == 0:
        return convert(values)
    low, high = int(values.min()), int(values.max())
    if high - low < max(values.size, 1024):
        return convert(np.arange(low, high + 1, dtype=np.int64))[values - low]
    distinct, position = np.unique(values, return_inverse=True)
    return convert(distinct)[position.reshape(values.shape)]


def month_start_ns(months: np.ndarray) -> np.ndarray:
    return months.astype("datetime64[M]").astype("datetime64[ns]").astype(np.int64)
