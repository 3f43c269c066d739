"""One obligation's schedule as it changes, event by event: the revenue contract's book.

An ``Obligation`` holds its schedule twice: at allocated amounts (revenue) and, for contract
lines, at stated prices (the right to bill, which splits the contract position into unbilled
receivable and contract asset). Each holds *service* amounts per month, spread over the
obligation's service days in that month, and *point* amounts (a catch-up recognized on a given
day). The functions here are the operations events apply to it, in plain integer arithmetic:

- ``earned_before(day)``: what was recognized before a day, at day precision (a month's service
  amount is recognized evenly over its service days, by cumulative half-up rounding; days before
  the booking floor are recognized on the floor day), which is how reductions split into a
  recognized and a deferred share and how a modification finds the unrecognized consideration;
- ``reduce``: take an amount off what remains of a service window from a day on, in proportion;
- ``respread``: keep what was earned before a day and spread a new amount over a new window;
- ``apply_floor``: no event rewrites a month before its own accounting month: a change that lands
  earlier is recognized in that month instead (a cumulative catch-up).

Month numbers are months since 1970-01; days are days since 1970-01-01.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import pandas as pd

from q2c_pipeline.revenue.schedules import spread_amounts

_EPOCH = np.datetime64("1970-01-01", "D")


def day_of(ts) -> int:
    """Days since 1970-01-01 of a timestamp (its UTC date)."""
    return int((np.datetime64(pd.Timestamp(ts), "D") - _EPOCH).astype(np.int64))


def month_of_day(day: int) -> int:
    value = (_EPOCH + np.timedelta64(int(day), "D")).astype("datetime64[M]")
    return int(value.astype(np.int64))


def first_day_of_month(month: int) -> int:
    return int((np.datetime64(int(month), "M").astype("datetime64[D]") - _EPOCH).astype(
        np.int64))


def timestamp_of_day(day: int) -> pd.Timestamp:
    return pd.Timestamp(_EPOCH + np.timedelta64(int(day), "D"))


def round_half_up(value: Fraction) -> int:
    magnitude = abs(value)
    rounded = int((magnitude * 2 + 1) // 2)
    return -rounded if value < 0 else rounded


def distribute(total: int, weights: dict[int, Fraction], caps: dict[int, int] | None = None
               ) -> dict[int, int]:
    """Split ``total`` (>= 0) over keys in proportion to ``weights`` (largest remainder, ties to
    the later key), never giving a key more than its cap."""
    keys = sorted(k for k, w in weights.items() if w > 0)
    if total == 0 or not keys:
        return {}
    base = sum(weights[k] for k in keys)
    parts, remainders = {}, []
    for k in keys:
        exact = Fraction(total) * weights[k] / base
        part = int(exact)
        parts[k] = part
        remainders.append((exact - part, k))
    missing = total - sum(parts.values())
    for _, k in sorted(remainders, key=lambda x: (x[0], x[1]), reverse=True)[:missing]:
        parts[k] += 1
    if caps is not None:
        over = 0
        for k in keys:
            cap = max(caps.get(k, 0), 0)
            if parts[k] > cap:
                over += parts[k] - cap
                parts[k] = cap
        for k in sorted(keys, key=lambda k: caps.get(k, 0) - parts[k], reverse=True):
            if over == 0:
                break
            room = max(caps.get(k, 0), 0) - parts[k]
            take = min(room, over)
            parts[k] += take
            over -= take
    return {k: v for k, v in parts.items() if v}


@dataclass
class Schedule:
    """Service amounts by month and point amounts [(day, amount)] of one measure."""

    months: dict[int, int] = field(default_factory=dict)
    points: list[tuple[int, int]] = field(default_factory=list)

    def total(self) -> int:
        return sum(self.months.values()) + sum(a for _, a in self.points)

    def copy(self) -> Schedule:
        return Schedule(dict(self.months), list(self.points))


@dataclass
class Obligation:
    """One performance obligation of a revenue contract, in the book."""

    key: tuple[str, str]               # (source_type, source_id) of its schedule rows
    revenue_contract_id: str
    pattern: str                       # "ratable" or "point_in_time"
    start_day: int
    end_day: int                       # exclusive; start_day + 1 for a point in time
    floor_day: int | None              # booking floor: earlier service is recognized on it
    revenue: Schedule
    stated: Schedule | None            # None: the right to bill follows revenue
    version: int = 1
    quantity: Fraction = Fraction(1)
    ssp: int = 0                       # SSP for ``quantity`` over [start, original end)
    ssp_days: int = 1                  # the days ``ssp`` covers
    fixed: bool = True                 # part of the fixed transaction price
    attrs: dict[int, tuple[int, str]] = field(default_factory=dict)

    # -- days of a month ---------------------------------------------------------------------
    def counted_days(self, month: int) -> tuple[int, int, bool]:
        """(lo, hi, is_empty): the service days a month's service amount covers. In the floor's
        month the days before the floor count too (they are recognized on the floor day)."""
        m_first, m_next = first_day_of_month(month), first_day_of_month(month + 1)
        floor_here = self.floor_day is not None and m_first <= self.floor_day < m_next
        lo = self.start_day if floor_here else max(self.start_day, m_first)
        hi = min(self.end_day, m_next)
        if self.floor_day is not None and self.floor_day >= m_next:
            hi = lo
        if hi <= lo:
            fallback = max(self.start_day, self.floor_day if self.floor_day is not None
                           else self.start_day)
            fallback = min(max(fallback, m_first), m_next - 1)
            return fallback, fallback + 1, True
        return lo, hi, False

    def _recognized_on(self, day: int) -> int:
        return day if self.floor_day is None else max(day, self.floor_day)

    def _days_before(self, lo: int, hi: int, day: int, window: tuple[int, int] | None = None,
                     before: bool = True) -> int:
        """Counted days in [lo, hi) (within ``window``) recognized before (or from) ``day``."""
        if window is not None:
            lo, hi = max(lo, window[0]), min(hi, window[1])
        if hi <= lo:
            return 0
        # recognition day of x is max(x, floor): every x < floor is recognized on the floor
        floor = self.floor_day
        if floor is None or floor < day:
            count = max(0, min(hi, day) - lo)
        else:
            count = 0
        return count if before else (hi - lo) - count

    # -- measures ------------------------------------------------------------------------------
    def earned_before(self, measure: Schedule, day: int) -> int:
        """What ``measure`` recognized before ``day`` (day precision)."""
        month = month_of_day(day)
        total = sum(a for m, a in measure.months.items() if m < month)
        amount = measure.months.get(month, 0)
        if amount:
            lo, hi, _ = self.counted_days(month)
            total += round_half_up(Fraction(amount * self._days_before(lo, hi, day), hi - lo))
        return total + sum(a for d, a in measure.points if d < day)

    def service_earned_before(self, measure: Schedule, day: int) -> int:
        """``earned_before`` of the service amounts only (points are fixed adjustments)."""
        return self.earned_before(Schedule(measure.months, []), day)

    def window_parts(self, measure: Schedule, day: int, window: tuple[int, int]
                     ) -> tuple[Fraction, Fraction, dict[int, Fraction]]:
        """(earned, remaining, remaining by month) of a service window at ``day``."""
        earned, remaining, by_month = Fraction(0), Fraction(0), {}
        for month, amount in measure.months.items():
            if amount == 0:
                continue
            lo, hi, _ = self.counted_days(month)
            n = hi - lo
            before = self._days_before(lo, hi, day, window, True)
            after = self._days_before(lo, hi, day, window, False)
            if before:
                earned += Fraction(amount * before, n)
            if after:
                part = Fraction(amount * after, n)
                remaining += part
                by_month[month] = part
        return earned, remaining, by_month

    def remaining_by_month(self, measure: Schedule, day: int) -> dict[int, Fraction]:
        """The service amount of each month still to be recognized from ``day`` on."""
        return self.window_parts(measure, day, (self.start_day, max(self.end_day,
                                                                    self.start_day + 1)))[2]


def reduce(ob: Obligation, measure: Schedule, amount: int, day: int,
           window: tuple[int, int] | None, spill: bool = True, billed: int | None = None
           ) -> tuple[int, int, dict[int, int]]:
    """Split ``amount`` into (recognized share, deferred share, cuts by month) and take the
    deferred share off ``measure``.

    The recognized share is ``amount`` x what the window had earned before ``day`` / the
    window's whole amount (half-up); the deferred share comes off the window's remaining months
    in proportion, then, if the window holds too little, off the obligation's later remaining
    months (not with ``spill=False``: a write-off never touches service outside the invoice's
    own period); what still cannot be taken off is recognized too (nothing left to defer). A window
    holding nothing of the obligation (or no window) means the obligation's whole schedule.
    With ``billed`` (a write-off: what the line still bills after earlier credits), the deferred
    share is the window's remaining schedule x ``amount`` / ``billed``: writing off the whole
    open balance clears the whole remaining schedule, whatever earlier credits did to it.
    """
    whole = (ob.start_day, max(ob.end_day, ob.start_day + 1))
    earned, remaining, by_month = ob.window_parts(measure, day, window or whole)
    if earned + remaining == 0 and window is not None:
        earned, remaining, by_month = ob.window_parts(measure, day, whole)
    base = earned + remaining
    if billed is not None and billed > 0 and amount >= 0:
        recognized = amount - min(round_half_up(remaining * amount / billed), amount)
    else:
        recognized = round_half_up(Fraction(amount) * earned / base) if base > 0 else amount
    recognized = min(max(recognized, 0), amount) if amount >= 0 else recognized
    deferred = amount - recognized
    caps = {m: int(part) for m, part in by_month.items()}
    cuts = distribute(min(deferred, sum(caps.values())), by_month, caps)
    taken = sum(cuts.values())
    if taken < deferred and spill:
        outside = {m: part - cuts.get(m, 0) for m, part in
                   ob.remaining_by_month(measure, day).items()}
        outside_caps = {m: int(part) for m, part in outside.items()}
        more = distribute(min(deferred - taken, sum(max(c, 0) for c in outside_caps.values())),
                          {m: w for m, w in outside.items() if w > 0}, outside_caps)
        for m, part in more.items():
            cuts[m] = cuts.get(m, 0) + part
        taken += sum(more.values())
    recognized += deferred - taken
    for m, cut in cuts.items():
        measure.months[m] = measure.months.get(m, 0) - cut
    return recognized, taken, cuts


def restore(measure: Schedule, cuts: dict[int, int], day: int) -> int:
    """Give back what a reduction took off: months from ``day``'s month on get their own cut
    back; cuts of earlier months are recognized on ``day`` (a catch-up). Returns the catch-up."""
    month = month_of_day(day)
    caught = 0
    for m, cut in cuts.items():
        if m >= month:
            measure.months[m] = measure.months.get(m, 0) + cut
        else:
            caught += cut
    if caught:
        measure.points.append((day, caught))
    return caught


def spread_window(amount: int, start_day: int, end_day: int, pattern: str,
                  amortization: str) -> dict[int, int]:
    """``amount`` spread over [start_day, end_day) by the policy's amortization (one month for a
    point in time)."""
    if amount == 0:
        return {}
    start = timestamp_of_day(start_day)
    point = pattern != "ratable" or end_day <= start_day + 0
    end = pd.NaT if point else timestamp_of_day(end_day)
    items = pd.DataFrame({"amount": [int(amount)], "start": [start], "end": [end]})
    out = spread_amounts(items, amortization)
    return {int(m): int(a) for m, a in zip(out["month"], out["amount"], strict=True) if a}


def add_months(measure: Schedule, months: dict[int, int]) -> None:
    for m, a in months.items():
        measure.months[m] = measure.months.get(m, 0) + a


def keep_before(ob: Obligation, measure: Schedule, day: int) -> Schedule:
    """The service amounts ``measure`` recognized before ``day`` (the month of ``day`` keeps its
    share of the days before it); points are kept whole."""
    month = month_of_day(day)
    kept = Schedule({m: a for m, a in measure.months.items() if m < month}, list(measure.points))
    share = ob.service_earned_before(measure, day) - sum(kept.months.values())
    if share:
        kept.months[month] = share
    return kept


def apply_floor(before: Schedule, after: Schedule, floor_month: int, floor_day: int) -> None:
    """Months before ``floor_month`` keep their amounts in ``before``; what the change moved in
    them is recognized on ``floor_day`` instead (in ``after``, in place)."""
    moved = 0
    for m in sorted(set(before.months) | set(after.months)):
        if m >= floor_month:
            continue
        old, new = before.months.get(m, 0), after.months.get(m, 0)
        if new != old:
            moved += new - old
            if old:
                after.months[m] = old
            else:
                after.months.pop(m, None)
    if moved:
        after.points.append((floor_day, moved))
