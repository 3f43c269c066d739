"""Balanced, idempotent journal lines from measured postings.

Postings (``q2c_pipeline.accounting.postings``, measured by ``measurement``) carry one signed
amount per account in the transaction currency and in the functional currency. This module moves
lines out of closed periods (late activity posts to the first open period, keeping its business
date in ``original_date``) and derives deterministic ``journal_key``/``journal_id`` values from
each journal's content, so the same input always gives the same keys.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from q2c_pipeline.core.calendar import month_index, period_labels

RULE_VERSION = "q2c-ledger-2"

JOURNAL_COLUMNS = [
    "journal_id", "journal_key", "line_number", "legal_entity", "period", "entry_date", "account",
    "debit", "credit", "currency", "debit_functional", "credit_functional", "source_type",
    "source_id", "correlation_id", "memo", "functional_currency", "source_line_id",
    "original_date", "contract_id", "customer_id", "event_count", "events_fingerprint",
]


def shift_closed_periods(
    legal_entity: pd.Series, dates: pd.Series, accounting_periods: pd.DataFrame
) -> pd.Series:
    """Period each line posts to: its date's month, or the first open month on or after it."""
    months = pd.Series(month_index(pd.to_datetime(dates).to_numpy()), index=dates.index)
    closed = closed_months(accounting_periods)
    pairs = pd.DataFrame({"entity": legal_entity.astype(str), "month": months}).drop_duplicates()
    target = {}
    for entity, month in pairs.itertuples(index=False):
        shut = closed.get(entity, set())
        m = int(month)
        while m in shut:
            m += 1
        target[(entity, int(month))] = m
    posted = [target[(e, int(m))] for e, m in zip(legal_entity.astype(str), months, strict=True)]
    return pd.Series(posted, index=dates.index, dtype="int64")


def build_journal_lines(postings: pd.DataFrame, accounting_periods: pd.DataFrame) -> pd.DataFrame:
    """Measured postings (``amount``, ``amount_functional``) -> journal_lines, sorted."""
    if len(postings) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in JOURNAL_COLUMNS})
    lines = postings.copy()
    for column in ("event_count", "events_fingerprint"):
        if column not in lines.columns:
            lines[column] = pd.NA
    lines["amount"] = lines["amount"].astype("int64")
    lines["amount_functional"] = lines["amount_functional"].astype("int64")
    lines = lines[(lines["amount"] != 0) | (lines["amount_functional"] != 0)].copy()

    lines["original_date"] = pd.to_datetime(lines["date"]).dt.normalize()
    posted = shift_closed_periods(lines["legal_entity"], lines["original_date"], accounting_periods)
    lines["period"] = period_labels(posted.to_numpy())
    shifted = posted.to_numpy() != month_index(lines["original_date"].to_numpy())
    first_day = posted.to_numpy().astype("datetime64[M]").astype("datetime64[ns]")
    lines["entry_date"] = np.where(shifted, first_day, lines["original_date"].to_numpy())
    lines["entry_date"] = pd.to_datetime(lines["entry_date"])

    lines["debit"] = np.maximum(lines["amount"], 0)
    lines["credit"] = np.maximum(-lines["amount"], 0)
    lines["debit_functional"] = np.maximum(lines["amount_functional"], 0)
    lines["credit_functional"] = np.maximum(-lines["amount_functional"], 0)

    lines = lines.sort_values(
        ["journal_group", "order", "account", "source_line_id", "amount", "amount_functional"],
        kind="mergesort").reset_index(drop=True)
    fingerprint = (
        lines["source_type"].astype(str) + "|" + lines["source_id"].astype(str) + "|"
        + lines["source_line_id"].fillna("").astype(str) + "|" + lines["account"] + "|"
        + lines["currency"] + "|" + lines["amount"].astype(str) + "|"
        + lines["amount_functional"].astype(str) + "|"
        + lines["original_date"].dt.strftime("%Y-%m-%d")
        # a usage summary line also commits to the events behind it
        + np.where(lines["events_fingerprint"].notna(),
                   "|" + lines["events_fingerprint"].fillna("").astype(str), "")
    )
    keys = {}
    for group, parts in fingerprint.groupby(lines["journal_group"], sort=False):
        ids = sorted({p.split("|", 3)[1] for p in parts} | {p.split("|", 3)[2] for p in parts})
        payload = RULE_VERSION + "\n" + "\n".join(i for i in ids if i) + "\n" + "\n".join(parts)
        keys[group] = hashlib.sha256(payload.encode("utf-8")).hexdigest()
    lines["journal_key"] = lines["journal_group"].map(keys)
    lines["journal_id"] = "je_" + lines["journal_key"].str[:24]
    lines["line_number"] = lines.groupby("journal_group", sort=False).cumcount() + 1
    lines["original_date"] = lines["original_date"].dt.date
    lines["entry_date"] = lines["entry_date"].dt.date
    lines["event_count"] = pd.to_numeric(lines["event_count"]).astype("Int64")
    lines["events_fingerprint"] = lines["events_fingerprint"].astype(object).where(
        lines["events_fingerprint"].notna(), None)
    # the unrounded functional amount rides along for month-end remeasurement (the engine
    # drops it before it returns)
    extra = ["functional_exact"] if "functional_exact" in lines.columns else []
    out = lines[JOURNAL_COLUMNS + extra].copy()
    for column in ("debit", "credit", "debit_functional", "credit_functional", "line_number"):
        out[column] = out[column].astype("int64")
    return sort_journal_lines(out)


def sort_journal_lines(journal_lines: pd.DataFrame) -> pd.DataFrame:
    """The canonical row order of journal_lines, with a fresh index."""
    return journal_lines.sort_values(
        ["legal_entity", "period", "entry_date", "journal_id", "line_number"], kind="mergesort"
    ).reset_index(drop=True)


def closed_months(accounting_periods: pd.DataFrame) -> dict[str, set[int]]:
    """Per entity, the month indexes whose period is closed."""
    closed: dict[str, set[int]] = {}
    if len(accounting_periods):
        shut = accounting_periods[accounting_periods["status"] == "closed"]
        for entity, period in zip(shut["legal_entity"], shut["period"], strict=True):
            year, month = str(period).split("-")
            closed.setdefault(str(entity), set()).add((int(year) - 1970) * 12 + int(month) - 1)
    return closed
