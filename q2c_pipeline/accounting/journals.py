"""Balanced, idempotent journal lines from postings.

Builders in the engine emit *postings*: one signed amount per account (``+`` debit, ``-`` credit)
with the journal it belongs to, its business date and the date whose FX rate measures it. This
module splits contract positions between deferred revenue and unbilled receivable, converts to
the functional currency, books realized FX and rounding, moves lines out of closed periods and
derives deterministic ``journal_key``/``journal_id`` values.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from q2c_pipeline.revenue.fx import RateBook
from q2c_pipeline.revenue.schedules import month_index, period_labels

RULE_VERSION = "q2c-ledger-1"

JOURNAL_COLUMNS = [
    "journal_id", "journal_key", "line_number", "legal_entity", "period", "entry_date", "account",
    "debit", "credit", "currency", "debit_functional", "credit_functional", "source_type",
    "source_id", "correlation_id", "memo", "functional_currency", "source_line_id",
    "original_date", "contract_id", "customer_id",
]

POSTING_COLUMNS = [
    "journal_group", "source_type", "source_id", "source_line_id", "legal_entity",
    "functional_currency", "currency", "date", "rate_date", "account", "amount", "is_cash",
    "contract_id", "customer_id", "correlation_id", "memo", "order",
]


def split_position(events: pd.DataFrame) -> pd.DataFrame:
    """Deferred revenue / unbilled receivable movements of each contract-position event.

    ``events``: position_key, date, rank, event_id, delta (+ billed, - recognized or reduced).
    A position's running net P = billed - recognized is deferred revenue when positive and
    unbilled receivable when negative, so an event moving P from P0 to P1 changes deferred
    revenue by max(P1,0)-max(P0,0) and unbilled by max(-P1,0)-max(-P0,0). Vectorized with a
    cumulative sum per position after a deterministic sort.
    """
    ev = events.copy()
    ev["_day"] = pd.to_datetime(ev["date"]).dt.normalize()
    ev = ev.sort_values(["position_key", "_day", "rank", "date", "event_id"], kind="mergesort")
    p1 = ev.groupby("position_key", sort=False)["delta"].cumsum().astype("int64")
    p0 = p1 - ev["delta"].astype("int64")
    ev["deferred_increase"] = np.maximum(p1, 0) - np.maximum(p0, 0)
    ev["unbilled_increase"] = np.maximum(-p1, 0) - np.maximum(-p0, 0)
    return ev.drop(columns="_day").sort_index()


def position_postings(events: pd.DataFrame) -> pd.DataFrame:
    """Two postings per event: DeferredRevenue (credit as it grows), Unbilled (debit as it grows).

    ``events`` carries the posting columns besides account/amount, plus the split.
    """
    deferred = events.assign(account="DeferredRevenue", amount=-events["deferred_increase"])
    unbilled = events.assign(account="UnbilledAccountsReceivable",
                             amount=events["unbilled_increase"])
    return pd.concat([deferred, unbilled], ignore_index=True)


def shift_closed_periods(
    legal_entity: pd.Series, dates: pd.Series, accounting_periods: pd.DataFrame
) -> pd.Series:
    """Period each line posts to: its date's month, or the first open month on or after it."""
    months = pd.Series(month_index(pd.to_datetime(dates).to_numpy()), index=dates.index)
    closed: dict[str, set[int]] = {}
    if len(accounting_periods):
        shut = accounting_periods[accounting_periods["status"] == "closed"]
        for entity, period in zip(shut["legal_entity"], shut["period"], strict=True):
            year, month = str(period).split("-")
            closed.setdefault(str(entity), set()).add((int(year) - 1970) * 12 + int(month) - 1)
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


def _rebalance_functional(lines: pd.DataFrame) -> pd.DataFrame:
    """Make every journal balance in functional currency.

    Cash journals (payments, refunds) book the difference between the cash rate and the rate the
    receivable was booked at as realized FxGain / FxLoss. Other journals are measured at one rate,
    so any difference is rounding and goes to their largest line.
    """
    residual = lines.groupby("journal_group", sort=False)["amount_functional"].transform("sum")
    journals = lines.assign(_residual=residual).drop_duplicates("journal_group")
    journals = journals[journals["_residual"] != 0]
    cash = journals[journals["is_cash"]]
    fx = cash.assign(
        account=np.where(cash["_residual"] > 0, "FxGain", "FxLoss"),
        amount=0, amount_functional=-cash["_residual"], order=99,
        source_line_id=cash["source_line_id"], memo="realized FX on settlement",
    ).drop(columns="_residual")
    rounding = journals[~journals["is_cash"]][["journal_group", "_residual"]]
    out = lines.copy()
    if len(rounding):
        ranked = out.assign(_abs=out["amount_functional"].abs()).sort_values(
            ["journal_group", "_abs", "order"], ascending=[True, False, True], kind="mergesort")
        target = ranked.drop_duplicates("journal_group")[["journal_group"]]
        target = target.merge(rounding, on="journal_group")
        idx = ranked.drop_duplicates("journal_group")
        idx = idx[idx["journal_group"].isin(target["journal_group"])]
        fix = idx["journal_group"].map(target.set_index("journal_group")["_residual"])
        out.loc[idx.index, "amount_functional"] -= fix.astype("int64")
    return pd.concat([out, fx], ignore_index=True)


def build_journal_lines(
    postings: pd.DataFrame, rates: RateBook, accounting_periods: pd.DataFrame
) -> pd.DataFrame:
    """Postings -> journal_lines (canonical columns + extras), sorted, with a fresh index."""
    if len(postings) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in JOURNAL_COLUMNS})
    lines = postings[POSTING_COLUMNS].copy()
    lines["amount"] = lines["amount"].astype("int64")
    lines["amount_functional"] = rates.convert(
        lines["amount"].to_numpy(), lines["currency"].to_numpy(),
        lines["functional_currency"].to_numpy(), lines["rate_date"].to_numpy(),
    )
    lines = _rebalance_functional(lines)
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
        ["journal_group", "order", "account", "source_line_id", "amount"], kind="mergesort"
    ).reset_index(drop=True)
    fingerprint = (
        lines["source_type"].astype(str) + "|" + lines["source_id"].astype(str) + "|"
        + lines["source_line_id"].fillna("").astype(str) + "|" + lines["account"] + "|"
        + lines["currency"] + "|" + lines["amount"].astype(str) + "|"
        + lines["amount_functional"].astype(str) + "|"
        + lines["original_date"].dt.strftime("%Y-%m-%d")
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
    lines = lines.sort_values(
        ["legal_entity", "period", "entry_date", "journal_id", "line_number"], kind="mergesort"
    )
    out = lines[JOURNAL_COLUMNS].reset_index(drop=True)
    for column in ("debit", "credit", "debit_functional", "credit_functional", "line_number"):
        out[column] = out[column].astype("int64")
    return out
