"""The contract position (ASC 606-10-45-1..4, IFRS 15.105-108), event by event.

Per revenue contract, running totals after each event: B billed (pre-tax, net of credits, billing
corrections and settled refund liabilities), R revenue (net of contra revenue), S the right to
bill (the stated price of what was delivered; = R where stated prices do not define it) and T the
transaction price (the consideration the contract is entitled to). Then, for a contract:

- refund liability RL = max(0, B - T): billed beyond what the contract is now worth (after a
  cancellation or a scope reduction), owed back or to be credited;
- with E = B - RL the consideration billed that the contract keeps, revenue ahead of billing
  A = R - E. When A < 0 the contract is a liability: deferred revenue -A (45-1). When A > 0 it
  is an asset: as much of A as the right to bill covers, min(A, S - E), is an unbilled
  receivable (45-4: an unconditional right, only an invoice is missing); the rest is a contract
  asset (45-3: revenue recognized ahead of a right that still depends on further performance,
  e.g. a discount allocated away from a delivered item).

For an invoice, usage or one-time payment position (no allocation: S = R, no RL) the position is
deferred revenue when billed ahead and unbilled receivable when behind; before its first billing
what is recognized is unbilled receivable whatever its sign (Stripe's pending proration items,
which can be negative). In every case deferred - contract asset - unbilled + refund liability =
B - R, so each event's movements balance the billing, revenue or reduction that caused it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

POSITION_EVENT_COLUMNS = [
    "event_id", "position_key", "position_kind", "date", "rank", "order", "is_billing", "billed",
    "revenue", "stated", "price", "pending",
]
MOVEMENT_COLUMNS = ["deferred", "contract_asset", "unbilled", "refund_liability"]


def position_movements(events: pd.DataFrame) -> pd.DataFrame:
    """``events`` with the movement of each balance it causes (``MOVEMENT_COLUMNS``, signed
    increases in the position's currency) and the balances after it (``*_balance``).

    ``billed``, ``revenue``, ``stated`` and ``price`` are each event's changes of B, R, S and T.
    ``pending``: credits that settle a contract change (an ``order_change`` credit note, a
    settled refund liability) add to it, a modification's price decrease takes off it; while
    its running sum P is positive a credit was given for a change no amendment has explained
    yet, and the right to bill shrinks by P: what revenue runs ahead of billing because of it is
    a contract asset, not an unbilled receivable (nothing will be invoiced for it, 45-3/45-4).
    Vectorized: cumulative sums per position after a deterministic sort.
    """
    if len(events) == 0:
        return events.assign(**{c: pd.Series(dtype="int64") for c in MOVEMENT_COLUMNS})
    ev = events.copy()
    ev["_day"] = pd.to_datetime(ev["date"]).dt.normalize()
    ev = ev.sort_values(["position_key", "_day", "rank", "order", "date", "event_id"],
                        kind="mergesort")
    group = ev.groupby("position_key", sort=False)
    b = group["billed"].cumsum().astype("int64").to_numpy()
    r = group["revenue"].cumsum().astype("int64").to_numpy()
    s = group["stated"].cumsum().astype("int64").to_numpy()
    t = group["price"].cumsum().astype("int64").to_numpy()
    pending = np.maximum(group["pending"].cumsum().astype("int64").to_numpy(), 0) \
        if "pending" in ev.columns else 0
    billings = group["is_billing"].cumsum().to_numpy()
    contract = (ev["position_kind"] == "contract").to_numpy()

    rl = np.where(contract, np.maximum(0, b - t), 0)
    effective = b - rl
    ahead = r - effective
    ur_contract = np.clip(np.minimum(s - effective - pending, ahead), 0, None)
    asset = np.where(contract, np.maximum(ahead - ur_contract, 0), 0)
    ur_other = np.where(billings == 0, r - b, np.maximum(0, r - b))
    unbilled = np.where(contract, ur_contract, ur_other)
    deferred = np.where(contract, np.maximum(-ahead, 0),
                        np.where(billings == 0, 0, np.maximum(b - r, 0)))
    balances = {"deferred": deferred, "contract_asset": asset, "unbilled": unbilled,
                "refund_liability": rl}
    first = (ev["position_key"] != ev["position_key"].shift()).to_numpy()
    for name, values in balances.items():
        values = np.asarray(values, dtype=np.int64)
        previous = np.concatenate(([0], values[:-1]))
        previous[first] = 0
        ev[name] = values - previous
        ev[f"{name}_balance"] = values
    return ev.drop(columns="_day").sort_index()
