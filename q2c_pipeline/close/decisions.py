"""Who decided what about the close, and why: the append-only decisions table and the roles.

``ledger.decisions`` holds one row per decision, never updated or deleted: period locks (with
what was open and waived at that moment), refused locks (with what blocked them), reopenings
(with the reason), and the exception workflow's waivers, resolutions and overrides. The current
state of an exception is its latest decision; the current locks are ``ledger.period_locks``,
which a reopening removes a row from (the decision stays).

Roles come from a YAML file (``roles.yaml`` beside the snapshot's ``policy.yaml``, or
``Q2C_ROLES_PATH``) mapping each person to the teams they may act for::

    people:
      dana@q2c.example: [controllership]
      bo@q2c.example: [billing_ops]

Every action is checked against it: waiving or resolving an exception, reopening or locking a
period, and any override that changes a revenue treatment (a product, and with it the SSP and
pattern; service dates; the modification treatment) need ``controllership``; any other override
needs the team that owns the exception (controllership may act for every team).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import yaml

from q2c_pipeline.warehouse import table_exists

DECISIONS_TABLE = "ledger.decisions"
CONTROLLERSHIP = "controllership"
TEAMS = ("sales_ops", "billing_ops", CONTROLLERSHIP)

# action -> (what it does, who may take it: None = the exception's owning team)
ACTIONS = {
    "lock": "lock a period after its controls pass",
    "lock_refused": "a lock attempt refused by failing controls",
    "reopen": "reopen a locked period (its controls run again at the next lock)",
    "waive": "accept an open exception for the period lock, with a reason",
    "resolve": "close an exception without posting the record (it is not to be booked)",
    "override": "correct the record at the next run (retry with edited data)",
}
# a resolution drops a record (and what it holds, cash included) from the books: controllership's
CONTROLLERSHIP_ACTIONS = {"lock", "reopen", "waive", "resolve"}
# decisions that settle an exception for the period lock, and the one that waits for a run
SETTLING = {"waive": "waived", "resolve": "resolved", "override": "override_pending"}

# ledger.close_runs, after recorded_at (defs/revenue.py close_inputs writes them, in order)
CLOSE_RUN_COLUMNS = ("run_id", "as_of", "as_of_source", "policy_path", "policy_sha256",
                     "warehouse_path", "sources", "roles_path")
COLUMNS = {
    "decision_seq": "bigint not null", "decision_id": "varchar not null",
    "decided_at": "timestamp not null", "actor": "varchar not null", "role": "varchar not null",
    "action": "varchar not null", "legal_entity": "varchar", "period": "varchar",
    "exception_id": "varchar", "source_table": "varchar", "record_id": "varchar",
    "rule": "varchar", "owner": "varchar", "reason": "varchar not null",
    "detail": "varchar not null",
}


class DecisionRefused(ValueError):
    """An action the actor may not take, or one without what it needs (a reason, a record)."""


@dataclass(frozen=True)
class Roles:
    people: dict[str, tuple[str, ...]]
    source: str

    def teams_of(self, actor: str) -> tuple[str, ...]:
        return self.people.get(actor.strip().lower(), ())

    def role_for(self, actor: str, action: str, owner: str | None,
                 *, treatment: bool = False) -> str:
        """The team the actor acts as for this action; refuses when they hold none that may."""
        teams = self.teams_of(actor)
        if not teams:
            raise DecisionRefused(
                f"{actor!r} is not in the roles file {self.source}; add them under people: "
                f"with the teams they act for ({', '.join(TEAMS)})")
        needs_controllership = action in CONTROLLERSHIP_ACTIONS or treatment
        if CONTROLLERSHIP in teams:
            return CONTROLLERSHIP
        if needs_controllership:
            what = "a revenue-treatment override" if treatment else f"{action}"
            raise DecisionRefused(
                f"{actor!r} acts for {', '.join(teams)}; {what} needs controllership")
        if owner in teams:
            return owner
        raise DecisionRefused(
            f"{actor!r} acts for {', '.join(teams)}; this exception is owned by {owner} "
            f"(or controllership)")


def roles_path(snapshot_root: str, configured: str = "") -> Path:
    """The configured roles file (``settings.roles_path``: Q2C_ROLES_PATH), else
    ``roles.yaml`` in the snapshot folder."""
    return Path(configured) if configured else Path(snapshot_root) / "roles.yaml"


def load_roles(path: Path) -> Roles:
    if not path.is_file():
        raise DecisionRefused(f"no roles file at {path}: write one (people: name: [teams]) or "
                              "point Q2C_ROLES_PATH at it")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise DecisionRefused(f"roles file {path} is not valid YAML: {error}") from None
    people = document.get("people") if isinstance(document, dict) else None
    if not isinstance(people, dict):
        raise DecisionRefused(f"roles file {path}: expected a mapping 'people: name: [teams]'")
    parsed: dict[str, tuple[str, ...]] = {}
    for name, teams in people.items():
        teams = [teams] if isinstance(teams, str) else list(teams or [])
        unknown = [t for t in teams if t not in TEAMS]
        if unknown:
            raise DecisionRefused(f"roles file {path}: {name!r} has unknown team(s) {unknown}; "
                                  f"teams are {', '.join(TEAMS)}")
        parsed[str(name).strip().lower()] = tuple(teams)
    return Roles(parsed, str(path))


def ensure_decisions(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("create schema if not exists ledger")
    ddl = ", ".join(f"{c} {t}" for c, t in COLUMNS.items())
    conn.execute(f"create table if not exists {DECISIONS_TABLE} ({ddl}, "
                 "primary key (decision_seq))")


def record_decision(conn: duckdb.DuckDBPyConnection, *, actor: str, role: str, action: str,
                    reason: str, legal_entity: str | None = None, period: str | None = None,
                    exception: dict | None = None, detail: dict | None = None,
                    decided_at: datetime | None = None) -> dict:
    """Append one decision (never edits one); returns the row written."""
    if action not in ACTIONS:
        raise DecisionRefused(f"unknown action {action!r}; actions are {', '.join(ACTIONS)}")
    if not reason or not reason.strip():
        raise DecisionRefused(f"{action} needs a reason (--reason): the audit trail says why")
    ensure_decisions(conn)
    exception = exception or {}
    moment = (decided_at or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    row = {
        "decided_at": moment, "actor": actor.strip().lower(), "role": role, "action": action,
        "legal_entity": legal_entity or exception.get("legal_entity"),
        "period": period or exception.get("period"),
        "exception_id": exception.get("exception_id"),
        "source_table": exception.get("source_table"), "record_id": exception.get("record_id"),
        "rule": exception.get("rule"), "owner": exception.get("owner"),
        "reason": reason.strip(),
        "detail": json.dumps(detail or {}, sort_keys=True, default=str),
    }
    row["decision_id"] = hashlib.sha256(
        json.dumps(row, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:16]
    conn.execute("begin transaction")
    try:
        seq = conn.execute(
            f"select coalesce(max(decision_seq), 0) + 1 from {DECISIONS_TABLE}").fetchall()[0][0]
        row["decision_seq"] = int(seq)
        names = list(COLUMNS)
        conn.execute(f"insert into {DECISIONS_TABLE} ({', '.join(names)}) values "
                     f"({', '.join('?' for _ in names)})", [row[c] for c in names])
        conn.execute("commit")
    except Exception:
        conn.execute("rollback")
        raise
    return row


def read_decisions(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every decision in order (works on a read-only connection; empty before the first)."""
    if not table_exists(conn, DECISIONS_TABLE):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    return conn.execute(
        f"select {', '.join(COLUMNS)} from {DECISIONS_TABLE} order by decision_seq").df()


def exception_states(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The latest settling decision per exception: exception_id, state, decision_seq, actor,
    reason, detail (exceptions without one are open)."""
    if not table_exists(conn, DECISIONS_TABLE):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in
                             ("exception_id", "state", "decision_seq", "actor", "reason",
                              "detail")})
    actions = ", ".join(f"'{a}'" for a in SETTLING)
    cases = " ".join(f"when '{a}' then '{s}'" for a, s in SETTLING.items())
    return conn.execute(f"""
        select exception_id, case action {cases} end as state, decision_seq, actor, reason,
               detail
        from {DECISIONS_TABLE}
        where exception_id is not null and action in ({actions})
        qualify row_number() over (partition by exception_id order by decision_seq desc) = 1
        order by exception_id""").df()


def pending_overrides(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Overrides to apply at the next canonical build: the latest override per exception whose
    latest settling decision is that override. ``detail`` holds raw_table, source_id,
    content_hash (the source version it corrects) and the fields to set."""
    states = exception_states(conn)
    return states[states["state"] == "override_pending"].reset_index(drop=True)
