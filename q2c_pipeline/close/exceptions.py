"""The exception workflow: what is open, for which entity and period, and the decisions on it.

An exception is a row of ``marts.fct_exceptions`` (one quarantined record and rule, with its
legal entity, period, customer and record in words). Its state is its latest decision in
``ledger.decisions`` (``waived``, ``resolved``, ``override_pending``) or ``open``. A record held
only because another is (``held_by_upstream``, same correlation id) follows its root: it is
settled once every root it shares a correlation with is settled.

A period lock is blocked by every exception of that entity (or of no entity: ``UNASSIGNED``,
which could belong to any) dated in that period or earlier, or with no date at all, that is
neither waived nor resolved (an override waits for the run that applies it).
"""

from __future__ import annotations

import hashlib
import json

import duckdb
import pandas as pd

from q2c_pipeline.close.decisions import (
    SETTLING,
    DecisionRefused,
    Roles,
    exception_states,
    pending_overrides,
    record_decision,
)

EXCEPTION_COLUMNS = ["exception_id", "legal_entity", "period", "effective_date", "owner",
                     "source_system", "source_table", "record_id", "field", "rule",
                     "customer_id", "customer_name", "record_label", "reason", "owner_action",
                     "correlation_id",
                     "payload"]
HELD = "held_by_upstream"


def _has_marts(conn: duckdb.DuckDBPyConnection) -> bool:
    return bool(conn.execute(
        "select count(*) from information_schema.tables where table_schema = 'marts' "
        "and table_name = 'fct_exceptions'").fetchone()[0])


def exceptions_with_state(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every exception of the last close with its state and the decision that set it."""
    if not _has_marts(conn):
        return pd.DataFrame(columns=[*EXCEPTION_COLUMNS, "state", "decided_by", "decision"])
    frame = conn.execute(f"select {', '.join(EXCEPTION_COLUMNS)} from marts.fct_exceptions "
                         "order by legal_entity, period nulls first, owner, record_id, rule"
                         ).df()
    states = exception_states(conn).rename(columns={"actor": "decided_by",
                                                    "reason": "decision"})
    frame = frame.merge(states[["exception_id", "state", "decided_by", "decision"]],
                        on="exception_id", how="left")
    frame["state"] = frame["state"].fillna("open")
    # a held record follows its roots: the other exceptions of its correlation, and the
    # customer record holding every record of that customer
    roots = _roots_of(frame)
    for position in frame.index[(frame["rule"] == HELD) & (frame["state"] == "open")]:
        states = [frame.at[p, "state"] for p in roots.get(position, [])]
        if states and not {"open", "override_pending"} & set(states):
            frame.at[position, "state"] = sorted(states)[0]
            frame.at[position, "decision"] = "follows the record holding it"
    return frame.reset_index(drop=True)


def _roots_of(frame: pd.DataFrame) -> dict[int, list[int]]:
    """For each held row (by position), the positions of the root exceptions holding it."""
    is_root = frame["rule"] != HELD
    by_correlation: dict[str, list[int]] = {}
    by_customer: dict[str, list[int]] = {}
    for position in frame.index[is_root]:
        by_correlation.setdefault(frame.at[position, "correlation_id"], []).append(position)
        if frame.at[position, "source_table"] == "customers":
            by_customer.setdefault(frame.at[position, "record_id"], []).append(position)
    return {position: by_correlation.get(frame.at[position, "correlation_id"], [])
            + by_customer.get(frame.at[position, "customer_id"], [])
            for position in frame.index[~is_root]}


def blocking_exceptions(conn: duckdb.DuckDBPyConnection, legal_entity: str,
                        period: str) -> pd.DataFrame:
    """The exceptions that block locking (legal_entity, period)."""
    frame = exceptions_with_state(conn)
    scope = frame["legal_entity"].isin([legal_entity, "UNASSIGNED"]) & (
        frame["period"].isna() | (frame["period"].astype(str) <= period))
    blocking = frame[scope & frame["state"].isin(["open", "override_pending"])]
    return blocking.reset_index(drop=True)


def find_open_exceptions(conn: duckdb.DuckDBPyConnection, legal_entity: str,
                         period: str) -> tuple[list[tuple], list[str]]:
    """The close control: the root exceptions blocking the lock, each with how many records it
    holds (a held record blocks through its root; one without a root blocks on its own)."""
    blocking = blocking_exceptions(conn, legal_entity, period)
    columns = ["exception_id", "record", "rule", "owner", "period", "state", "records_held"]
    if blocking.empty:
        return [], columns
    roots = _roots_of(blocking)
    held_by: dict[int, int] = {}
    for position, holders in roots.items():
        for holder in holders:
            held_by[holder] = held_by.get(holder, 0) + 1
    shown = [p for p in blocking.index if blocking.at[p, "rule"] != HELD or not roots.get(p)]
    rows = []
    for position in shown:
        r = blocking.loc[position]
        rows.append((r["exception_id"][:12], r["record_label"], r["rule"], r["owner"],
                     r["period"] if isinstance(r["period"], str) else "undated", r["state"],
                     held_by.get(position, 0)))
    return rows, columns


def find_exception(conn: duckdb.DuckDBPyConnection, prefix: str) -> dict:
    """The exception whose id starts with ``prefix`` (at least 6 characters, unique)."""
    prefix = prefix.strip().lower()
    if len(prefix) < 6:
        raise DecisionRefused(f"exception id {prefix!r}: give at least 6 characters of it "
                              "(q2c exceptions list shows them)")
    frame = exceptions_with_state(conn)
    hits = frame[frame["exception_id"].str.startswith(prefix)]
    if hits.empty:
        raise DecisionRefused(f"no open or decided exception {prefix!r} in the last close "
                              "(fixed at the source and released? q2c exceptions list)")
    if len(hits) > 1:
        raise DecisionRefused(f"exception id {prefix!r} is ambiguous ({len(hits)} match); "
                              "give more characters")
    return {k: (None if isinstance(v, float) and pd.isna(v) else v)
            for k, v in hits.iloc[0].to_dict().items()}


def _source_version(conn: duckdb.DuckDBPyConnection, exception: dict) -> dict:
    """The landed raw record version the exception's payload is (raw table, id, hash)."""
    from q2c_pipeline.sources.landing import dump_canonical_json, load_payload
    from q2c_pipeline.sources.registry import SALESFORCE_SOURCES, STRIPE_RESOURCES

    payload = exception.get("payload") or ""
    try:
        content_hash = hashlib.sha256(
            dump_canonical_json(load_payload(payload)).encode("utf-8")).hexdigest()
    except ValueError:
        content_hash = ""
    for source in (*SALESFORCE_SOURCES, *STRIPE_RESOURCES):
        if source.system != exception.get("source_system"):
            continue
        row = conn.execute(
            f"select record_id from raw.{source.raw_table} where content_hash = ? limit 1",
            [content_hash]).fetchone() if _raw_exists(conn, source.raw_table) else None
        if row is not None:
            return {"raw_table": source.raw_table, "source_id": row[0],
                    "content_hash": content_hash}
    raise DecisionRefused(
        f"exception {exception['exception_id'][:12]}: its payload is not a landed source "
        "record q2c can correct (a file, or a record held by another); fix it at the source")


def _raw_exists(conn: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(conn.execute(
        "select count(*) from information_schema.tables where table_schema = 'raw' "
        "and table_name = ?", [table]).fetchone()[0])


def decide(conn: duckdb.DuckDBPyConnection, roles: Roles, *, action: str, prefix: str,
           actor: str, reason: str, fields: dict[str, str] | None = None) -> dict:
    """Record a waive, resolve or override of one exception, after the role check."""
    if action not in SETTLING:
        raise DecisionRefused(f"{action!r} is not an exception action ({', '.join(SETTLING)})")
    exception = find_exception(conn, prefix)
    if exception["rule"] == HELD and action != "waive":
        raise DecisionRefused(
            f"{exception['record_label']} is only held by another record "
            f"(correlation {exception['correlation_id']}); act on that one: q2c exceptions "
            f"list --correlation {exception['correlation_id']}")
    role = roles.role_for(actor, action, exception["owner"])
    detail: dict = {"state_before": exception["state"], "record": exception["record_label"]}
    if action == "override":
        if not fields:
            raise DecisionRefused("an override needs the corrected fields: --set FIELD=VALUE")
        version = _source_version(conn, exception)
        original = json.loads(exception["payload"])
        detail.update(version, set=dict(sorted(fields.items())),
                      was={k: original.get(k) for k in sorted(fields)})
    return record_decision(conn, actor=actor, role=role, action=action, reason=reason,
                           exception=exception, detail=detail)


def apply_overrides(conn: duckdb.DuckDBPyConnection,
                    raw: dict[str, list[dict]]) -> pd.DataFrame:
    """Apply every pending override to the latest landed records in ``raw`` (in place): the
    record version the override was decided on gets the corrected fields; the raw table keeps
    what the source said. An override whose record has since changed at the source has lapsed
    (the new version is validated as sent). One row per override: decision_seq, raw_table,
    source_id, fields, applied."""
    from q2c_pipeline.sources.landing import dump_canonical_json
    from q2c_pipeline.sources.registry import SALESFORCE_SOURCES, STRIPE_RESOURCES

    id_field = {s.raw_table: s.id_fields[0] for s in (*SALESFORCE_SOURCES, *STRIPE_RESOURCES)}
    rows = []
    for o in pending_overrides(conn).itertuples(index=False):
        detail = json.loads(o.detail)
        table, source_id = detail.get("raw_table"), detail.get("source_id")
        applied = False
        for record in raw.get(table, []):
            if str(record.get(id_field.get(table, "Id"))) != str(source_id):
                continue
            digest = hashlib.sha256(dump_canonical_json(record).encode("utf-8")).hexdigest()
            if digest == detail.get("content_hash"):
                record.update(detail.get("set", {}))
                applied = True
        rows.append({"decision_seq": int(o.decision_seq), "exception_id": o.exception_id,
                     "raw_table": table, "source_id": source_id,
                     "fields": json.dumps(detail.get("set", {}), sort_keys=True),
                     "status": "applied" if applied else "lapsed: the source sent another "
                     "version of the record since; it is validated as sent"})
    return pd.DataFrame(rows, columns=["decision_seq", "exception_id", "raw_table",
                                       "source_id", "fields", "status"])
