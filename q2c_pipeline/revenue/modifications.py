"""Contract modifications (ASC 606-10-25-10..13, IFRS 15.18-21), applied to a revenue contract's
book at the version's accounting date (the later of its signing and effective dates).

- ``prospective`` (25-13(a)): the remaining goods and services are distinct, so the modification
  is the termination of the old contract and the creation of a new one. The consideration still
  to recognize, the unrecognized part of every fixed obligation at the effective date plus the
  consideration the modification promises, is allocated over the obligations that remain
  (existing ones with service left at their new quantity, and products the amendment adds) by
  relative SSP of their remaining service, and spread from the effective date to each one's
  (possibly new) end. A cancelled obligation recognizes nothing after the effective date. When
  nothing remains, or the consideration left is negative, it is recognized at the accounting
  date (a catch-up on the obligations the amendment revises): revenue is never spread negative.
- ``catch_up`` (25-13(b)): the change belongs to a partially satisfied obligation: it is spread
  over the obligation's whole term as if present from the start, and what falls before the
  accounting date's month is recognized in that month.
- ``separate_contract`` (25-12) lines are their own revenue contract (``allocation.py``).

Every modification keeps the months before its accounting month as they were (``apply_floor``):
an amendment never rewrites an earlier period, and a close as of an earlier day does not see it.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from q2c_pipeline.revenue.book import (
    Obligation,
    Schedule,
    add_months,
    apply_floor,
    distribute,
    keep_before,
    month_of_day,
    spread_window,
)


@dataclass
class Delta:
    """One amendment line revising an existing obligation."""

    key: tuple[str, str]
    treatment: str                # prospective | catch_up
    quantity: Fraction            # change in quantity
    stated: int                   # change in stated price (minor units)
    end_day: int | None           # its own end: a new end of the obligation (an extension)
    line_id: str


@dataclass
class ModificationResult:
    transaction_price_change: int
    catch_up: int                 # consideration recognized at once (nothing left, or negative)


def _remaining_weight(ob: Obligation, quantity: Fraction, eff_day: int, end_day: int) -> Fraction:
    """SSP of an obligation's remaining service: its SSP scaled to the new quantity and to the
    days left from the effective date (a point in time not yet delivered: all of it)."""
    if ob.quantity == 0:
        scale = Fraction(1)
    else:
        scale = quantity / ob.quantity
    if ob.pattern != "ratable":
        return Fraction(ob.ssp) * scale
    days_left = max(0, end_day - max(eff_day, ob.start_day))
    return Fraction(ob.ssp) * scale * Fraction(days_left, max(ob.ssp_days, 1))


def _is_remaining(ob: Obligation, quantity: Fraction, eff_day: int, end_day: int) -> bool:
    if quantity <= 0:
        return False
    if ob.pattern != "ratable":
        return ob.start_day >= eff_day
    return end_day > eff_day


def apply_modification(obligations: list[Obligation], added: list[Obligation],
                       deltas: list[Delta], version: int, eff_day: int, acc_day: int,
                       amortization: str) -> ModificationResult:
    """Apply one version's prospective and catch-up lines to the contract's fixed obligations
    (``obligations``, in place) and give the ``added`` obligations their allocation.

    ``added`` obligations arrive with their stated schedule set and ``ssp``; they are appended
    to ``obligations`` by the caller after this returns.
    """
    floor_month = month_of_day(acc_day)
    fixed = [ob for ob in obligations if ob.fixed]
    before = {id(ob): (ob.revenue.copy(), ob.stated.copy() if ob.stated else None)
              for ob in fixed}
    total_before = sum(ob.revenue.total() for ob in fixed)
    by_key = {ob.key: ob for ob in fixed}
    prospective = [d for d in deltas if d.treatment == "prospective" and d.key in by_key]
    catch_up = [d for d in deltas if d.treatment == "catch_up" and d.key in by_key]
    result_catch_up = 0

    if prospective or added:
        new_quantity = {ob.key: ob.quantity for ob in fixed}
        new_end = {ob.key: ob.end_day for ob in fixed}
        stated_change = {ob.key: 0 for ob in fixed}
        for d in prospective:
            new_quantity[d.key] += d.quantity
            stated_change[d.key] += d.stated
            if d.end_day is not None:
                new_end[d.key] = d.end_day
        unrecognized = sum(ob.revenue.total() - ob.service_earned_before(ob.revenue, eff_day)
                           - sum(a for _, a in ob.revenue.points) for ob in fixed)
        promised = sum(d.stated for d in prospective) + sum(
            ob.stated.total() if ob.stated else ob.revenue.total() for ob in added)
        pool = unrecognized + promised
        weights: dict[int, Fraction] = {}
        remaining: list[tuple[Obligation, int, int]] = []
        for ob in fixed:
            q, end = new_quantity[ob.key], new_end[ob.key]
            if _is_remaining(ob, q, eff_day, end):
                start = max(eff_day, ob.start_day)
                weights[len(remaining)] = _remaining_weight(ob, q, eff_day, end)
                remaining.append((ob, start, end))
        for ob in added:
            weights[len(remaining)] = Fraction(ob.ssp)
            remaining.append((ob, ob.start_day, ob.end_day))
        shares: dict[int, int] = {}
        if pool >= 0 and remaining:
            if sum(weights.values()) > 0:
                shares = distribute(pool, weights)
            else:
                shares = distribute(pool, {i: Fraction(1) for i in range(len(remaining))})
        else:
            result_catch_up = pool
        # every existing obligation keeps what it earned before the effective date
        for ob in fixed:
            ob.revenue = keep_before(ob, ob.revenue, eff_day)
            if ob.stated is not None:
                kept = keep_before(ob, ob.stated, eff_day)
                left = before[id(ob)][1].total() - kept.total() + stated_change[ob.key]
                ob.stated = kept
                end = new_end[ob.key]
                # like revenue, a right to bill is never spread negative: a remainder below
                # zero (a cut larger than what was left) falls on the accounting date
                if left > 0 and _is_remaining(ob, new_quantity[ob.key], eff_day, end):
                    add_months(ob.stated, spread_window(left, max(eff_day, ob.start_day), end,
                                                        ob.pattern, amortization))
                elif left:
                    ob.stated.points.append((acc_day, left))
            if ob.quantity > 0 and new_quantity[ob.key] != ob.quantity:
                ob.ssp = int(Fraction(ob.ssp) * max(new_quantity[ob.key], 0) / ob.quantity)
            ob.quantity = new_quantity[ob.key]
            ob.end_day = max(new_end[ob.key], ob.start_day + 1) if ob.quantity > 0 \
                else min(ob.end_day, max(eff_day, ob.start_day + 1))
        for index, (ob, start, end) in enumerate(remaining):
            share = shares.get(index, 0)
            if ob in added:
                ob.revenue = Schedule(spread_window(share, start, end, ob.pattern, amortization))
                continue
            add_months(ob.revenue, spread_window(share, start, end, ob.pattern, amortization))
        if result_catch_up:
            revised = [by_key[d.key] for d in prospective] or fixed[:1]
            weights = {i: Fraction(max(before[id(ob)][0].total(), 1)) for i, ob in
                       enumerate(revised)}
            parts = distribute(abs(result_catch_up), weights)
            sign = 1 if result_catch_up > 0 else -1
            for i, part in parts.items():
                revised[i].revenue.points.append((acc_day, sign * part))
        for ob in fixed:
            for m in ob.revenue.months:
                if m >= month_of_day(eff_day):
                    ob.attrs[m] = (version, "prospective")
        for ob in added:
            for m in ob.revenue.months:
                ob.attrs[m] = (version, "prospective")

    for d in catch_up:
        ob = by_key[d.key]
        window_end = d.end_day if d.end_day is not None else ob.end_day
        ob.end_day = max(ob.end_day, window_end)
        add_months(ob.revenue, spread_window(d.stated, ob.start_day, ob.end_day, ob.pattern,
                                             amortization))
        if ob.stated is not None:
            add_months(ob.stated, spread_window(d.stated, ob.start_day, ob.end_day, ob.pattern,
                                                amortization))
        ob.quantity += d.quantity
        for m in ob.revenue.months:
            if m >= floor_month:
                ob.attrs[m] = (version, "catch_up")

    for ob in fixed:
        old_revenue, old_stated = before[id(ob)]
        apply_floor(old_revenue, ob.revenue, floor_month, acc_day)
        if ob.stated is not None and old_stated is not None:
            apply_floor(old_stated, ob.stated, floor_month, acc_day)
        for measure in (ob.revenue, ob.stated):
            if measure is not None:
                for m in [m for m, a in measure.months.items() if a == 0]:
                    del measure.months[m]
    for ob in added:
        moved = Schedule()
        apply_floor(moved, ob.revenue, floor_month, acc_day)
        if ob.stated is not None:
            apply_floor(Schedule(), ob.stated, floor_month, acc_day)
    total_after = sum(ob.revenue.total() for ob in fixed) + sum(
        ob.revenue.total() for ob in added)
    return ModificationResult(transaction_price_change=total_after - total_before,
                              catch_up=result_catch_up)
