"""The revenue policy: how amounts are spread, rounded, reduced and journalized (policy.yaml)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

AMORTIZATIONS = ("day", "millisecond", "month_even", "month_prorated")
ROUNDINGS = ("last_period_absorbs",)
CREDIT_NOTE_TREATMENTS = ("proportional", "contra_in_full")
ALLOCATION_ROUNDINGS = ("minor_unit", "whole_unit")
# "period": one recognition entry per obligation and month; "day": one per obligation and day.
JOURNAL_GRANULARITIES = ("period", "day")
# How a write-off's recognized share is presented: contra revenue (Stripe's BadDebt) or a credit
# loss expense (ASC 326-20).
BAD_DEBT_PRESENTATIONS = ("contra_revenue", "credit_loss_expense")
# Cash after a write-off, beyond the credit loss it reverses: back to the schedule and recognized
# as revenue (ASC 606-10-25-6 / 25-7), or to Recoverables (Stripe's methodology).
RECOVERIES_AFTER_WRITE_OFF = ("revenue", "recoverables")
# journal_granularity: day shares a month's amount over its days by cumulative half-up rounding,
# or (Lago's daily release) in equal half-up shares with the last day taking the rest.
DAILY_ROUNDINGS = ("cumulative", "equal_days")


@dataclass(frozen=True)
class Policy:
    """Revenue policy; defaults are the canonical model's (docs/canonical-model.md)."""

    amortization: str = "day"
    rounding: str = "last_period_absorbs"
    catch_up: bool = True
    credit_note_treatment: str = "proportional"
    allocation_rounding: str = "minor_unit"
    journal_granularity: str = "period"
    functional_currency: str | None = None
    bad_debt_presentation: str = "credit_loss_expense"
    recovery_after_write_off: str = "revenue"
    daily_rounding: str = "cumulative"

    def __post_init__(self) -> None:
        choices = {
            "amortization": AMORTIZATIONS,
            "rounding": ROUNDINGS,
            "credit_note_treatment": CREDIT_NOTE_TREATMENTS,
            "allocation_rounding": ALLOCATION_ROUNDINGS,
            "journal_granularity": JOURNAL_GRANULARITIES,
            "bad_debt_presentation": BAD_DEBT_PRESENTATIONS,
            "recovery_after_write_off": RECOVERIES_AFTER_WRITE_OFF,
            "daily_rounding": DAILY_ROUNDINGS,
        }
        for name, allowed in choices.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"policy {name}={value!r} is not one of {', '.join(allowed)}")
        if not isinstance(self.catch_up, bool):
            raise ValueError(f"policy catch_up={self.catch_up!r} must be true or false")
        fc = self.functional_currency
        if fc is not None and (not isinstance(fc, str) or len(fc) != 3 or not fc.isupper()):
            raise ValueError(f"policy functional_currency={fc!r} must be an ISO 4217 code")


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    raise ValueError(f"policy {name}={value!r} must be true or false")


def load_policy_text(text: str, name: str) -> Policy:
    """Policy from the text of a policy.yaml (``name`` says which file, in errors)."""
    loaded = yaml.safe_load(text)
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, Mapping):
        raise ValueError(f"{name}: policy must be a mapping of settings")
    return load_policy(loaded)


def load_policy(source: str | Path | Mapping[str, Any] | None = None) -> Policy:
    """Policy from a mapping, a policy.yaml path, or None (all defaults).

    Unknown keys are refused so a typo cannot silently fall back to a default.
    """
    if source is None:
        raw: Mapping[str, Any] = {}
    elif isinstance(source, Mapping):
        raw = source
    else:
        return load_policy_text(Path(source).read_text(encoding="utf-8"), str(source))
    known = {f.name for f in fields(Policy)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"unknown policy settings: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if value is None or (isinstance(value, str) and value.strip() == ""):
            continue
        if key == "catch_up":
            values[key] = _as_bool(key, value)
        elif key == "functional_currency":
            values[key] = str(value).strip().upper()
        else:
            values[key] = str(value).strip()
    return Policy(**values)
