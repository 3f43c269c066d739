"""The treatment table: how each kind of billing activity meets a revenue contract.

One row per event kind, reason and kind of revenue contract (``treatments.csv`` beside this
module; an interchange folder or ``Q2C_TREATMENTS_PATH`` may bring its own table, which replaces
the rows it names). The most specific row wins: an exact reason first (with the exact contract
kind, then ``*``), then ``*`` reasons (exact kind, then ``*``). Every row is pinned by a test
(``q2c_pipeline_tests/revenue/test_treatments.py``) and explained in DECISIONLOG.md.

Effects:

- ``billing``: Dr receivable, Cr tax and the contract position (no revenue);
- ``billing_correction``: the reverse of a billing (a duplicate or erroneous invoice): no revenue;
- ``contract_settlement``: what is billed changes, the price does not: the contract (its
  amendment, ASC 606-10-25-13) states the price, so the credit settles the refund liability the
  amendment left, or is a contract asset until the amendment arrives; never a second reduction;
- ``price_change``: a change of the transaction price (ASC 606-10-32-42..45): the share for
  performance already transferred is contra revenue now, the rest comes off the remaining
  schedule of the obligation and period it is allocated to (``allocation``);
- ``settle_then_price_change``: first settles an open refund liability (no revenue), then any rest
  is a ``price_change``;
- ``settlement``: cash and receivable only (a payment; a refund that settles a credit note);
- ``collectibility``: a write-off (BadDebt or, by policy, CreditLossExpense): the recognized share
  of that invoice, the rest against deferred revenue; ``collectibility_reversal``: cash after it;
- ``written_off_credit``: a credit note on an invoice already written off: no receivable, no
  schedule; its share of the credit loss becomes contra revenue and what later cash can
  recover shrinks;
- ``reverse_credit_note``: a voided credit note undoes its credit note.

Allocations of a price change: ``billed_period`` (the obligation the credited line bills, and its
service period, ASC 606-10-32-44 / 32-40), ``contract`` (every fixed obligation of the contract by
its allocated amount, 32-43) and ``recognized`` (contra in full: nothing left to defer).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

TREATMENTS_FILE = Path(__file__).with_name("treatments.csv")
TREATMENT_COLUMNS = ["event", "reason", "contract_kind", "effect", "allocation", "account",
                     "standard", "rule"]
EVENTS = ("invoice_line", "credit_note", "credit_note_void", "refund", "invoice_void",
          "uncollectible", "payment")
CONTRACT_KINDS = ("contract", "invoice", "usage", "customer", "payment", "*")
EFFECTS = ("billing", "billing_correction", "contract_settlement", "price_change",
           "settle_then_price_change", "settlement", "collectibility", "collectibility_reversal",
           "written_off_credit", "reverse_credit_note")
ALLOCATIONS = ("billed_period", "contract", "recognized")
# Effects that book a contra (or bad-debt) account and so need one named.
_NEEDS_ACCOUNT = ("price_change", "settle_then_price_change", "collectibility",
                  "collectibility_reversal", "written_off_credit")


@dataclass(frozen=True)
class Treatment:
    event: str
    reason: str
    contract_kind: str
    effect: str
    allocation: str
    account: str
    standard: str
    rule: str


class TreatmentTable:
    """The validated table and its lookup (most specific row first)."""

    def __init__(self, frame: pd.DataFrame, source: str = "treatments.csv") -> None:
        missing = [c for c in TREATMENT_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"{source}: missing columns {', '.join(missing)}")
        rows = frame[TREATMENT_COLUMNS].fillna("").astype(str)
        self.rows: dict[tuple[str, str, str], Treatment] = {}
        for number, row in enumerate(rows.itertuples(index=False), start=2):
            values = {c: getattr(row, c).strip() for c in TREATMENT_COLUMNS}
            where = f"{source}: line {number}"
            if values["event"] not in EVENTS:
                raise ValueError(f"{where}: event {values['event']!r} is not one of "
                                 f"{', '.join(EVENTS)}")
            if values["contract_kind"] not in CONTRACT_KINDS:
                raise ValueError(f"{where}: contract_kind {values['contract_kind']!r} is not one "
                                 f"of {', '.join(CONTRACT_KINDS)}")
            if values["effect"] not in EFFECTS:
                raise ValueError(f"{where}: effect {values['effect']!r} is not one of "
                                 f"{', '.join(EFFECTS)}")
            if values["effect"] in ("price_change", "settle_then_price_change") \
                    and values["allocation"] not in ALLOCATIONS:
                raise ValueError(f"{where}: allocation {values['allocation']!r} is not one of "
                                 f"{', '.join(ALLOCATIONS)}")
            if values["effect"] in _NEEDS_ACCOUNT and not values["account"]:
                raise ValueError(f"{where}: effect {values['effect']} needs an account")
            key = (values["event"], values["reason"] or "*", values["contract_kind"])
            self.rows[key] = Treatment(**{**values, "reason": values["reason"] or "*"})

    def lookup(self, event: str, reason: str | None, contract_kind: str) -> Treatment:
        """The row for an event: the exact reason before ``*``, then the exact kind before
        ``*``."""
        reason = reason or "*"
        for key in ((event, reason, contract_kind), (event, reason, "*"),
                    (event, "*", contract_kind), (event, "*", "*")):
            if key in self.rows:
                return self.rows[key]
        raise ValueError(f"treatments: no row for event {event!r}, reason {reason!r}, "
                         f"contract kind {contract_kind!r}")

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([t.__dict__ for t in self.rows.values()], columns=TREATMENT_COLUMNS)


def load_treatments(override: str | Path | pd.DataFrame | Mapping | None = None) -> TreatmentTable:
    """The packaged table, with the rows of ``override`` (a CSV path or frame) replacing the
    rows they name."""
    base = pd.read_csv(TREATMENTS_FILE, dtype=str, keep_default_na=False)
    if override is None:
        return TreatmentTable(base, "treatments.csv")
    if isinstance(override, (str, Path)):
        source = str(override)
        extra = pd.read_csv(override, dtype=str, keep_default_na=False)
    else:
        source = "treatments override"
        extra = pd.DataFrame(override)
    TreatmentTable(extra, source)  # validates the override on its own
    merged = pd.concat([base, extra], ignore_index=True).drop_duplicates(
        ["event", "reason", "contract_kind"], keep="last")
    return TreatmentTable(merged, source)
