"""The posted ledger: what q2c has posted, kept append-only, and what a new run adds to it.

The engine (``q2c_pipeline.engine.run_engine``) computes the journals the books *should*
hold from scratch each run; each journal carries a content-addressed ``journal_key``. The ledger
is what has actually been posted, and it is never edited:

- a desired journal whose key has no live entry in the ledger is appended (a line whose period is
  closed moves to the first open period, keeping its ``original_date``);
- a live entry whose key the engine no longer produces (its source changed) gets a *reversal*:
  the same lines with debits and credits swapped, key ``sha256(key + "reversal" + version)``,
  posted in the reversed entry's period when that period is still open, else in the first open
  period after it (never in a closed one); the changed source's new journal posts under its new key;
- a journal that was reversed and is desired again is re-posted under a fresh key
  (``sha256(key + "repost" + n + version)``, n = how many times it was posted before), so every
  ``journal_key`` in the ledger is posted exactly once and the ERP outbox can key on it.

Every line of one reconciliation shares a deterministic ``posting_batch`` (a hash of the as-of
date and the keys it posts), the next ``posting_seq`` and the run's ``posting_as_of``: no wall
clock. A run whose as-of date is earlier than the latest posting's cannot judge journals a later
view of the world produced, so it posts nothing (``LedgerDelta.held_back``).

``ledger.journal_lines`` (append-only, PRIMARY KEY journal_key x line_number) and
``ledger.period_locks`` (q2c's own close: legal_entity, period, closed_at, closed_by_run,
lock_seq = the last posting_seq before the lock) live in DuckDB; the functions at the end of
this module read and append them. A period is closed when the ERP's ``accounting_periods`` says
so or q2c locked it. Plain Python: no dagster.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime

import duckdb
import numpy as np
import pandas as pd

from q2c_pipeline.core.calendar import period_labels
from q2c_pipeline.warehouse import frame_transaction

LEDGER_RULE_VERSION = "q2c-ledger-posting-1"
JOURNAL_TABLE = "ledger.journal_lines"
LOCKS_TABLE = "ledger.period_locks"

# The engine's journal columns (docs/pipeline-contract.md), then the ledger's own.
LINE_TYPES = {
    "journal_id": "VARCHAR", "journal_key": "VARCHAR", "line_number": "BIGINT",
    "legal_entity": "VARCHAR", "period": "VARCHAR", "entry_date": "DATE", "account": "VARCHAR",
    "debit": "BIGINT", "credit": "BIGINT", "currency": "VARCHAR", "debit_functional": "BIGINT",
    "credit_functional": "BIGINT", "source_type": "VARCHAR", "source_id": "VARCHAR",
    "correlation_id": "VARCHAR", "memo": "VARCHAR", "functional_currency": "VARCHAR",
    "source_line_id": "VARCHAR", "original_date": "DATE", "contract_id": "VARCHAR",
    "customer_id": "VARCHAR", "event_count": "BIGINT", "events_fingerprint": "VARCHAR",
}
POSTING_TYPES = {
    "engine_journal_key": "VARCHAR",  # the engine key the entry realizes (or reverses)
    "entry_type": "VARCHAR",  # 'entry' or 'reversal'
    "reverses_journal_key": "VARCHAR",  # the ledger key a reversal undoes, else null
    "posting_batch": "VARCHAR",
    "posting_seq": "BIGINT",
    "posting_as_of": "DATE",
}
ENGINE_COLUMNS = list(LINE_TYPES)
LEDGER_COLUMNS = ENGINE_COLUMNS + list(POSTING_TYPES)
LEDGER_TYPES = {**LINE_TYPES, **POSTING_TYPES}
LOCK_TYPES = {"legal_entity": "VARCHAR", "period": "VARCHAR", "closed_at": "TIMESTAMP",
              "closed_by_run": "VARCHAR", "lock_seq": "BIGINT"}
LOCK_COLUMNS = list(LOCK_TYPES)
_DATE_COLUMNS = ("entry_date", "original_date", "posting_as_of")
_MONEY_COLUMNS = ("debit", "credit", "debit_functional", "credit_functional")
_ORDER = ["legal_entity", "period", "entry_date", "journal_id", "line_number"]


@dataclass(frozen=True)
class LedgerDelta:
    """What one reconciliation appends to the ledger."""

    new_lines: pd.DataFrame
    reversal_lines: pd.DataFrame
    posting_batch: str | None
    posting_seq: int
    held_back: bool = False
    reversed_keys: tuple[str, ...] = field(default=())

    @property
    def lines(self) -> pd.DataFrame:
        """New entries and reversals together, in ledger order."""
        frames = [f for f in (self.new_lines, self.reversal_lines) if len(f)]
        if not frames:
            return empty_ledger()
        both = pd.concat(frames, ignore_index=True)
        return both.sort_values(_ORDER, kind="mergesort").reset_index(drop=True)

    @property
    def journals_posted(self) -> int:
        return int(self.new_lines["journal_key"].nunique()) if len(self.new_lines) else 0

    @property
    def journals_reversed(self) -> int:
        return len(self.reversed_keys)


def empty_ledger() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in LEDGER_COLUMNS})


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def reversal_key(journal_key: str) -> str:
    """Key of the entry reversing ``journal_key``."""
    return _sha(f"{journal_key}\nreversal\n{LEDGER_RULE_VERSION}")


def repost_key(engine_key: str, times_posted: int) -> str:
    """Key of the ``times_posted``-th re-posting of an engine journal that was reversed."""
    return _sha(f"{engine_key}\nrepost\n{times_posted}\n{LEDGER_RULE_VERSION}")


def _months_of_periods(periods: pd.Series) -> np.ndarray:
    text = periods.astype(str)
    years, months = text.str[:4].astype("int64"), text.str[5:7].astype("int64")
    return ((years - 1970) * 12 + months - 1).to_numpy()


def _months_of_dates(dates: pd.Series) -> np.ndarray:
    return pd.to_datetime(dates).to_numpy().astype("datetime64[M]").astype("int64")


def _first_days(months: np.ndarray) -> pd.Series:
    return pd.Series(np.asarray(months, dtype="int64").astype("datetime64[M]")).dt.date


def closed_periods(accounting_periods: pd.DataFrame, locks: pd.DataFrame) -> pd.DataFrame:
    """(legal_entity, period) pairs closed in the ERP or locked by q2c, sorted and unique."""
    parts = []
    if len(accounting_periods):
        shut = accounting_periods[accounting_periods["status"].astype(str) == "closed"]
        parts.append(shut[["legal_entity", "period"]])
    if len(locks):
        parts.append(locks[["legal_entity", "period"]])
    if not parts:
        return pd.DataFrame({"legal_entity": pd.Series(dtype=object),
                             "period": pd.Series(dtype=object)})
    both = pd.concat(parts, ignore_index=True).astype(str).drop_duplicates()
    return both.sort_values(["legal_entity", "period"], kind="mergesort").reset_index(drop=True)


def apply_period_locks(accounting_periods: pd.DataFrame, locks: pd.DataFrame) -> pd.DataFrame:
    """The ERP's accounting periods with q2c's locks applied as ``closed`` (rows added where
    the ERP has none), so the engine shifts late activity out of locked periods too."""
    periods = accounting_periods.copy()
    if len(locks) == 0:
        return periods
    keys = ["legal_entity", "period"]
    locked = locks[[*keys, "closed_at"]].astype({"legal_entity": str, "period": str})
    locked["closed_at"] = pd.to_datetime(locked["closed_at"])
    if len(periods):
        hit = periods[keys].astype(str).merge(
            locked[keys].assign(_locked=True), on=keys, how="left")["_locked"]
        periods.loc[hit.notna().to_numpy(), "status"] = "closed"
        seen = locked.merge(periods[keys].astype(str), on=keys, how="left", indicator=True)
        locked = locked[(seen["_merge"] == "left_only").to_numpy()]
    if len(locked):
        added = locked.assign(status="closed")[[*keys, "status", "closed_at"]]
        periods = pd.concat([periods, added], ignore_index=True)
    return periods.sort_values(keys, kind="mergesort").reset_index(drop=True)


def first_open_months(entities: pd.Series, months: np.ndarray, closed: pd.DataFrame) -> np.ndarray:
    """For each (entity, month index): that month if open, else the first open month after it.

    Loops only over the distinct (entity, month) pairs (entities x months, not lines)."""
    frame = pd.DataFrame({"legal_entity": entities.astype(str).to_numpy(),
                          "month": np.asarray(months, dtype="int64")})
    if len(frame) == 0 or len(closed) == 0:
        return frame["month"].to_numpy()
    shut = set(zip(closed["legal_entity"].astype(str), _months_of_periods(closed["period"]),
                   strict=True))
    pairs = frame.drop_duplicates()
    targets = []
    for entity, month in pairs.itertuples(index=False):
        target = int(month)
        while (entity, target) in shut:
            target += 1
        targets.append(target)
    pairs = pairs.assign(target=targets)
    return frame.merge(pairs, on=["legal_entity", "month"], how="left")["target"].to_numpy()


def _normalized(lines: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    out = lines.reindex(columns=columns).copy()
    for column in _DATE_COLUMNS:
        if column in out.columns:
            out[column] = pd.to_datetime(out[column]).dt.date
    for column in (*_MONEY_COLUMNS, "line_number"):
        out[column] = out[column].astype("int64")
    out["event_count"] = pd.to_numeric(out["event_count"]).astype("Int64")
    for column in out.columns:
        if LEDGER_TYPES[column] == "VARCHAR":
            out[column] = out[column].astype(object).where(out[column].notna(), None)
    return out


def reconcile_ledger(
    posted: pd.DataFrame, desired: pd.DataFrame, closed: pd.DataFrame, as_of: date
) -> LedgerDelta:
    """What to append to the ledger ``posted`` so that its live entries are ``desired``.

    ``posted``: the ledger's lines (``LEDGER_COLUMNS``). ``desired``: the engine's journal lines
    as of ``as_of`` (extra columns ignored). ``closed``: closed (legal_entity, period) pairs
    (``closed_periods``). Vectorized: merges and set operations on journal keys.
    """
    posted = _normalized(posted, LEDGER_COLUMNS) if len(posted) else empty_ledger()
    desired = _normalized(desired, ENGINE_COLUMNS) if len(desired) else desired.reindex(
        columns=ENGINE_COLUMNS)
    seq = int(posted["posting_seq"].max()) + 1 if len(posted) else 1
    if len(posted) and as_of < max(posted["posting_as_of"]):
        return LedgerDelta(empty_ledger(), empty_ledger(), None, seq, held_back=True)

    heads = posted.drop_duplicates("journal_key")
    undone = set(heads["reverses_journal_key"].dropna())
    entries = heads[heads["entry_type"] == "entry"]
    live = entries[~entries["journal_key"].isin(undone)]
    wanted = pd.Index(desired["journal_key"].unique())
    stale = live[~live["engine_journal_key"].isin(wanted)].sort_values("journal_key")
    missing = wanted.difference(pd.Index(live["engine_journal_key"]))

    new = desired[desired["journal_key"].isin(missing)].copy()
    new["engine_journal_key"] = new["journal_key"]
    times = entries.groupby("engine_journal_key").size()
    posted_before = new["engine_journal_key"].map(times).fillna(0).astype("int64")
    again = {(k, int(n)) for k, n in zip(new["engine_journal_key"], posted_before, strict=True)
             if n > 0}
    rekeyed = {k: repost_key(k, n) for k, n in sorted(again)}
    new["journal_key"] = new["engine_journal_key"].map(rekeyed).fillna(new["engine_journal_key"])
    new["entry_type"] = "entry"
    new["reverses_journal_key"] = None
    original = _months_of_dates(new["original_date"])
    target = first_open_months(new["legal_entity"], original, closed)
    new["period"] = period_labels(target)
    new["entry_date"] = np.where(target != original, _first_days(target).to_numpy(),
                                 new["original_date"].to_numpy())

    rev = posted[posted["journal_key"].isin(stale["journal_key"])].copy()
    rev["reverses_journal_key"] = rev["journal_key"]
    rev["journal_key"] = rev["journal_key"].map(
        {k: reversal_key(k) for k in stale["journal_key"]})
    rev["entry_type"] = "reversal"
    rev["memo"] = ("reversal of " + rev["journal_id"].astype(str) + ": "
                   + rev["memo"].fillna("").astype(str))
    rev[["debit", "credit"]] = rev[["credit", "debit"]].to_numpy()
    rev[["debit_functional", "credit_functional"]] = rev[
        ["credit_functional", "debit_functional"]].to_numpy()
    was = _months_of_periods(rev["period"]) if len(rev) else np.array([], dtype="int64")
    target = first_open_months(rev["legal_entity"], was, closed)
    rev["period"] = period_labels(target)
    rev["entry_date"] = np.where(target != was, _first_days(target).to_numpy(),
                                 rev["entry_date"].to_numpy())

    if len(new) == 0 and len(rev) == 0:
        return LedgerDelta(empty_ledger(), empty_ledger(), None, seq)
    keys = sorted(set(new["journal_key"]) | set(rev["journal_key"]))
    batch = "pb_" + _sha(as_of.isoformat() + "\n" + "\n".join(keys))[:20]
    frames = []
    for frame in (new, rev):
        if len(frame) == 0:
            frames.append(empty_ledger())
            continue
        frame["journal_id"] = "je_" + frame["journal_key"].str[:24]
        frame["posting_batch"] = batch
        frame["posting_seq"] = seq
        frame["posting_as_of"] = as_of
        frames.append(_normalized(frame, LEDGER_COLUMNS).sort_values(_ORDER, kind="mergesort")
                      .reset_index(drop=True))
    return LedgerDelta(frames[0], frames[1], batch, seq,
                       reversed_keys=tuple(stale["journal_key"].tolist()))


# --- DuckDB persistence -------------------------------------------------------------------------


def ensure_ledger(conn: duckdb.DuckDBPyConnection) -> None:
    """Create ``ledger.journal_lines`` and ``ledger.period_locks`` if they do not exist."""
    conn.execute("create schema if not exists ledger")
    ddl = ", ".join(f"{c} {t}" for c, t in LEDGER_TYPES.items())
    conn.execute(f"""create table if not exists {JOURNAL_TABLE} ({ddl},
        check (entry_type in ('entry', 'reversal')),
        primary key (journal_key, line_number))""")
    locks = ", ".join(f"{c} {t} not null" for c, t in LOCK_TYPES.items())
    conn.execute(f"""create table if not exists {LOCKS_TABLE} ({locks},
        primary key (legal_entity, period))""")


def read_ledger(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every posted line, in ledger order (entity, period, entry date, journal id, line)."""
    ensure_ledger(conn)
    frame = conn.execute(
        f"select {', '.join(LEDGER_COLUMNS)} from {JOURNAL_TABLE} order by {', '.join(_ORDER)}"
    ).df()
    return _normalized(frame, LEDGER_COLUMNS) if len(frame) else empty_ledger()


def append_ledger(conn: duckdb.DuckDBPyConnection, delta: LedgerDelta) -> int:
    """Insert the delta's lines in one transaction (the primary key refuses a key posted
    twice); returns the number of lines appended."""
    ensure_ledger(conn)
    lines = delta.lines
    if len(lines) == 0:
        return 0
    select = ", ".join(f"cast({c} as {t})" for c, t in LEDGER_TYPES.items())
    with frame_transaction(conn, "_q2c_ledger_delta", lines) as view:
        conn.execute(f"insert into {JOURNAL_TABLE} select {select} from {view}")
    return len(lines)


def read_period_locks(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    ensure_ledger(conn)
    return conn.execute(
        f"select {', '.join(LOCK_COLUMNS)} from {LOCKS_TABLE} order by legal_entity, period"
    ).df()


def lock_period(conn: duckdb.DuckDBPyConnection, legal_entity: str, period: str, *,
                closed_at: datetime, closed_by_run: str) -> bool:
    """Lock (entity, period) after the latest posting; False when it was already locked."""
    ensure_ledger(conn)
    if len(period) != 7 or period[4] != "-" or not (period[:4] + period[5:]).isdigit():
        raise ValueError(f"period must be YYYY-MM, got {period!r}")
    conn.execute("begin transaction")
    try:
        exists = conn.execute(
            f"select count(*) from {LOCKS_TABLE} where legal_entity = ? and period = ?",
            [legal_entity, period]).fetchone()[0]
        if not exists:
            conn.execute(
                f"""insert into {LOCKS_TABLE}
                    select ?, ?, ?, ?, coalesce(max(posting_seq), 0) from {JOURNAL_TABLE}""",
                [legal_entity, period, closed_at, closed_by_run])
        conn.execute("commit")
    except Exception:
        conn.execute("rollback")
        raise
    return not exists
