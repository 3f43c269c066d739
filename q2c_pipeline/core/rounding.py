"""Exact vectorized integer arithmetic for money in minor units.

int64 is used when the products provably fit; otherwise the same formulas run on Python integers
(object arrays), which are exact at any size. Nothing here ever touches a float.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_SAFE = 2**61
_EXACT_IN_DOUBLE = 2**52


def _fits(*bounds: int) -> bool:
    product = 1
    for bound in bounds:
        product *= max(int(bound), 1)
    return product < _SAFE


def mul_div_half_up(amount, numerator, denominator) -> np.ndarray:
    """amount * numerator / denominator, rounded half away from zero, as int64.

    ``numerator`` must be >= 0 and ``denominator`` > 0 (element-wise arrays or scalars).
    """
    a = np.asarray(amount, dtype=np.int64)
    x = np.broadcast_to(np.asarray(numerator, dtype=np.int64), a.shape)
    t = np.broadcast_to(np.asarray(denominator, dtype=np.int64), a.shape)
    if a.size == 0:
        return np.zeros(0, dtype=np.int64)
    if int(t.min()) <= 0 or int(x.min()) < 0:
        raise ValueError("mul_div_half_up needs numerator >= 0 and denominator > 0")
    if a.ndim == 0:
        return mul_div_half_up(a.reshape(1), x.reshape(1), t.reshape(1)).reshape(())
    magnitude = np.abs(a)
    top_a, top_x, top_t = int(magnitude.max()), int(x.max()), int(t.max())
    if _fits(2 * top_a + 1, top_x + 1) and _fits(2 * top_t):
        # 2|a|x + t and 2t, in place: these arrays are as long as a schedule.
        numerator = np.multiply(magnitude, x, out=magnitude)
        numerator *= 2
        numerator += t
        denominator = t * 2
        bounded = 2 * top_a * top_x + top_t < _EXACT_IN_DOUBLE and 2 * top_t < _EXACT_IN_DOUBLE
        if bounded or (int(numerator.max()) < _EXACT_IN_DOUBLE
                       and int(denominator.max()) < _EXACT_IN_DOUBLE):
            q = _floor_divide_exact(numerator, denominator)
        else:
            q = numerator // denominator
        np.negative(q, out=q, where=a < 0)
        return q
    mo = magnitude.astype(object)
    q = (2 * mo * x.astype(object) + t.astype(object)) // (2 * t.astype(object))
    return np.where(a < 0, -q, q).astype(np.int64)


def _floor_divide_exact(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator // denominator for non-negative int64 below 2**53, exactly.

    64-bit integer division is the slowest step of a schedule; a double-precision quotient is a
    fast estimate that is off by at most one here (both operands are exact in a double), and the
    integer remainder check corrects it, so the result is the exact integer quotient. No money
    value ever is, or is returned as, a float. The estimate is not negative, so the cast's
    truncation is its floor.
    """
    q = np.divide(numerator, denominator).astype(np.int64)
    remainder = np.multiply(q, denominator)
    np.subtract(numerator, remainder, out=remainder)
    q -= remainder < 0
    q += remainder >= denominator
    return q


def divide_truncating(amount, divisor) -> np.ndarray:
    """amount / divisor truncated toward zero (equal shares are truncated to the minor unit)."""
    a = np.asarray(amount, dtype=np.int64)
    d = np.asarray(divisor, dtype=np.int64)
    q = np.abs(a) // d
    return np.where(a < 0, -q, q).astype(np.int64)


def distribute_by_weight(
    group: pd.Series, pool: pd.Series, weight: pd.Series, unit: pd.Series, tiebreak: pd.Series
) -> pd.Series:
    """Split each group's ``pool`` over its rows by ``weight`` so the parts sum exactly to the pool.

    Largest-remainder method: each row gets floor(pool * weight / total / unit) units; the units
    still missing go one each to the rows with the largest remainders (ties by ``tiebreak``); a
    residue smaller than one unit goes to the first row in that order. A group whose weights sum to
    zero is split equally. All arguments share one index; ``pool`` and ``unit`` are per-row copies
    of the group's values.
    """
    if len(group) == 0:
        return pd.Series([], index=group.index, dtype="int64")
    frame = pd.DataFrame(
        {"group": group, "pool": pool.astype("int64"), "weight": weight.astype("int64"),
         "unit": unit.astype("int64"), "tiebreak": tiebreak.astype(str)}
    )
    total = frame.groupby("group", sort=False)["weight"].transform("sum")
    zero = total == 0
    frame.loc[zero, "weight"] = 1
    total = frame.groupby("group", sort=False)["weight"].transform("sum")
    numerator = frame["pool"].astype(object) * frame["weight"].astype(object)
    denominator = total.astype(object) * frame["unit"].astype(object)
    units = numerator // denominator
    frame["remainder"] = numerator - units * denominator
    frame["base"] = (units * frame["unit"].astype(object)).astype("int64")
    residual = frame["pool"] - frame.groupby("group", sort=False)["base"].transform("sum")
    frame["extra_units"] = residual // frame["unit"]
    frame["residue"] = residual - frame["extra_units"] * frame["unit"]
    frame["_order"] = np.arange(len(frame))
    ranked = frame.sort_values(
        ["group", "remainder", "tiebreak"], ascending=[True, False, True], kind="mergesort"
    )
    rank = ranked.groupby("group", sort=False).cumcount()
    ranked = ranked.assign(
        share=ranked["base"]
        + np.where(rank < ranked["extra_units"], ranked["unit"], 0)
        + np.where(rank == 0, ranked["residue"], 0)
    )
    return ranked["share"].reindex(frame.index).astype("int64")
