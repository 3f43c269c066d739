"""Reductions of billed amounts (credit notes, refunds, voids, write-offs) against obligations.

A reduction of ``pre_tax`` on an obligation splits, under the proportional treatment, into the
share already recognized (to a contra-revenue account) and the deferred share, which comes off the
obligation's remaining schedule. Each reduction depends on the schedule left by the previous ones,
so they are applied in date order; the loop runs over reductions, never over schedule rows.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import numpy as np
import pandas as pd

from q2c_pipeline.core.calendar import month_index
from q2c_pipeline.core.money import round_half_up

_KIND_ORDER = {"credit_note": 0, "refund": 1, "invoice_void": 2, "uncollectible": 3,
               "credit_note_void": 4}


def _spread_change(months: dict[int, int], start: int, change: int) -> None:
    """Add ``change`` to months >= start in proportion to their amounts; last month absorbs."""
    if change == 0:
        return
    later = sorted(m for m in months if m >= start and months[m] != 0)
    base = sum(months[m] for m in later)
    if not later or base == 0:
        months[start] = months.get(start, 0) + change
        return
    given = 0
    for m in later[:-1]:
        part = int(Decimal(change) * months[m] / base) if base else 0
        months[m] += part
        given += part
    months[later[-1]] += change - given


def apply_reductions(
    schedule: pd.DataFrame, reductions: pd.DataFrame, treatment: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split each reduction into recognized/deferred shares and take the deferred share off.

    ``schedule``: source_type, source_id, month, amount (one row per obligation and month).
    ``reductions``: reduction_id, kind, date, obligation_type, obligation_id (empty = nothing left
    to defer, e.g. billed usage), pre_tax, reverses (the reduction a credit-note void undoes).
    Returns the adjusted schedule and the reductions with ``recognized_share`` and
    ``deferred_share`` (they sum to ``pre_tax``).
    """
    red = reductions.copy()
    red["recognized_share"] = red["pre_tax"].astype("int64")
    red["deferred_share"] = 0
    if len(red) == 0:
        return schedule, red
    red["_rank"] = red["kind"].map(_KIND_ORDER).fillna(9)
    red = red.sort_values(["date", "_rank", "reduction_id"], kind="mergesort")
    touched = red.loc[red["obligation_id"].notna(), ["obligation_type", "obligation_id"]]
    keys = set(map(tuple, touched.drop_duplicates().to_numpy()))
    mask = pd.Series(
        [k in keys for k in zip(schedule["source_type"], schedule["source_id"], strict=True)],
        index=schedule.index, dtype=bool,
    )
    months: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
    for st, sid, m, amt in schedule.loc[mask, ["source_type", "source_id", "month", "amount"]] \
            .itertuples(index=False):
        months[(st, sid)][int(m)] = months[(st, sid)].get(int(m), 0) + int(amt)

    red_months = month_index(pd.to_datetime(red["date"]).to_numpy())
    split: dict[str, tuple[int, int]] = {}
    rec_out, def_out = [], []
    for (rid, kind, otype, oid, pre_tax, reverses), month in zip(
        red[["reduction_id", "kind", "obligation_type", "obligation_id", "pre_tax", "reverses"]]
        .itertuples(index=False), red_months, strict=True,
    ):
        c = int(pre_tax)
        if kind == "credit_note_void":
            rec_o, def_o = split.get(str(reverses), (c, 0))
            rec, dfr = -rec_o, -def_o
        elif pd.isna(oid) or (kind == "credit_note" and treatment == "contra_in_full"):
            rec, dfr = c, 0
        else:
            sched = months[(otype, oid)]
            total = sum(sched.values())
            recognized = sum(v for m, v in sched.items() if m < month)
            remaining = total - recognized
            rec = round_half_up(Decimal(c) * recognized / total) if total else c
            dfr = c - rec
            if c >= 0:
                dfr = max(0, min(dfr, remaining))
            else:
                dfr = min(0, max(dfr, remaining - total))
            rec = c - dfr
        if pd.notna(oid) and dfr:
            _spread_change(months[(otype, oid)], int(month), -dfr)
        split[str(rid)] = (rec, dfr)
        rec_out.append(rec)
        def_out.append(dfr)
    red["recognized_share"] = np.asarray(rec_out, dtype=np.int64)
    red["deferred_share"] = np.asarray(def_out, dtype=np.int64)
    red = red.drop(columns="_rank")

    rebuilt = [
        {"source_type": st, "source_id": sid, "month": m, "amount": amt}
        for (st, sid), by_month in months.items() for m, amt in by_month.items()
    ]
    untouched = schedule.loc[~mask]
    if rebuilt:
        changed = pd.DataFrame(rebuilt)
        row_level = [c for c in ("schedule_version", "treatment") if c in schedule.columns]
        attrs = schedule.loc[mask].drop(columns=["month", "amount", *row_level]).drop_duplicates(
            ["source_type", "source_id"])
        changed = changed.merge(attrs, on=["source_type", "source_id"], how="left")
        if row_level:
            keys = ["source_type", "source_id"]
            per_month = schedule.loc[mask, [*keys, "month", *row_level]]
            first = schedule.loc[mask].sort_values("month", kind="mergesort").drop_duplicates(
                keys)[[*keys, *row_level]]
            changed = changed.merge(per_month, on=[*keys, "month"], how="left")
            fallback = changed[keys].merge(first, on=keys, how="left")
            for column in row_level:
                changed[column] = changed[column].where(changed[column].notna(),
                                                        fallback[column].to_numpy())
        schedule = pd.concat([untouched, changed[schedule.columns]], ignore_index=True)
    return schedule, red
