"""The pipeline's stages as plain functions over a DuckDB connection.

The Dagster assets in ``q2c_pipeline/defs`` and the benchmarks in ``benchmarks/`` call these same
functions, so what is measured is what runs. No dagster import here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

import duckdb
import pandas as pd

from q2c_pipeline.accounting.balances import build_account_balances
from q2c_pipeline.accounting.ledger import (
    LEDGER_TYPES,
    LedgerDelta,
    append_ledger,
    apply_period_locks,
    closed_periods,
    read_ledger,
    read_period_locks,
    reconcile_ledger,
)
from q2c_pipeline.accounting.usage_summary import summarize_usage, write_usage_summary
from q2c_pipeline.close.exceptions import (
    apply_canonical_overrides,
    apply_overrides,
    still_held,
)
from q2c_pipeline.core.policy import Policy
from q2c_pipeline.engine import EngineResult, run_engine
from q2c_pipeline.schemas.quarantine import exception_ids
from q2c_pipeline.schemas.validation import (
    QUARANTINE_COLUMNS,
    VALIDATION_ORDER,
    ValidationResult,
    validate_canonical,
)
from q2c_pipeline.sources.assemble import PENDING_INVOICES, SET_ASIDE, build_candidates
from q2c_pipeline.sources.landing import latest_records, unlanded_records
from q2c_pipeline.sources.protocol import (  # noqa: F401 - the landing stage, re-exported
    LandedObject,
    land_source_objects,
    snapshot_records,
    snapshot_usage_frames,
)
from q2c_pipeline.sources.registry import (
    ERP_TABLES,
    SALESFORCE_SOURCES,
    STRIPE_RESOURCES,
)
from q2c_pipeline.sources.wire import normalize_salesforce_id
from q2c_pipeline.warehouse import read_table, replace_table, table_exists

FINANCE_OUTPUTS = ("allocation", "revenue_schedule", "journal_lines", "account_balances",
                   "contract_positions")


def land_usage_events(conn: duckdb.DuckDBPyConnection, frames: Iterable[pd.DataFrame]) -> int:
    """Replace ``raw.usage_events`` with the given daily frames (events as they are)."""
    parts = [f for f in frames if len(f)]
    events = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return replace_table(conn, "raw", "usage_events", events)


def land_snapshot(conn: duckdb.DuckDBPyConnection, source, extracted_at: datetime, *,
                  request_id: str = "snapshot") -> list[LandedObject]:
    """Land a whole snapshot folder (``SnapshotSource``): every source object and every
    readable usage day, unreadable files kept as file problems (``raw._file_problems``)."""
    landed = land_source_objects(
        conn, (*SALESFORCE_SOURCES, *STRIPE_RESOURCES, *ERP_TABLES),
        lambda obj: snapshot_records(source, obj), request_id=request_id,
        extracted_at=extracted_at)
    land_usage_events(conn, snapshot_usage_frames(conn, source, extracted_at))
    return landed


def load_raw(conn: duckdb.DuckDBPyConnection) -> tuple[dict[str, list[dict]], pd.DataFrame]:
    """Latest non-deleted version of every landed record, keyed by raw table, plus usage events."""
    raw = {
        o.raw_table: latest_records(conn, o.raw_table)
        for o in (*SALESFORCE_SOURCES, *STRIPE_RESOURCES, *ERP_TABLES)
    }
    return raw, read_table(conn, "raw", "usage_events")


def build_canonical(conn: duckdb.DuckDBPyConnection) -> ValidationResult:
    """Map the latest raw records, validate them, write ``canonical.*`` and the quarantine."""
    raw, usage_events = load_raw(conn)
    # corrections recorded with `q2c exceptions override`, applied to the record versions they
    # were decided on (raw keeps what the source said)
    applied = apply_overrides(conn, raw)
    candidates = build_candidates(raw, usage_events)
    applied = pd.concat([applied, apply_canonical_overrides(conn, candidates)],
                        ignore_index=True).sort_values("decision_seq", kind="mergesort")
    pending = candidates.pop(PENDING_INVOICES)
    not_cash = candidates.pop(SET_ASIDE)
    result = validate_canonical(candidates, held_parents=_parents_of_unlanded(conn))
    replace_table(conn, "canonical", "overrides_applied",
                  still_held(applied, result.quarantine))
    counts = result.counts()
    kept = keep_last_accepted(conn, result)  # before canonical.* is replaced: the last run's
    replace_table(conn, "canonical", "kept_last_accepted", kept)
    for table in VALIDATION_ORDER:
        replace_table(conn, "canonical", table, result.accepted[table])
    landing = [q for q in (file_quarantine(conn) if _has_file_problems(conn) else None,
                           unlanded_quarantine(conn)) if q is not None and len(q)]
    quarantine = (pd.concat([result.quarantine, *landing], ignore_index=True)
                  if landing else result.quarantine)
    replace_table(conn, "canonical", "quarantine",
                  quarantine.assign(exception_id=exception_ids(quarantine)))
    replace_table(conn, "canonical", PENDING_INVOICES, pending)
    # pending: source records set aside before mapping by design (drafts and their lines,
    # payment attempts and refunds that moved no cash), so that what landed = rows_in +
    # pending, and rows_in = accepted + quarantined
    set_aside = {"invoices": len(pending),
                 "invoice_lines": int(pending["line_count"].fillna(0).sum()), **not_cash}
    # received: the latest landed records of the one source object a table maps one-to-one
    # from (null where a record gives several rows or several objects feed the table), so a
    # mapper can never drop a record unseen: received = rows_in + pending
    received = {table: len(raw.get(f"{system}_{name}", [])) if system != "usage"
                else len(usage_events) for table, (system, name) in ONE_TO_ONE.items()}
    if not raw.get("salesforce_subscriptions"):
        received.pop("contract_lines")  # without CPQ, opportunity lines are the lines
    kept_counts = kept.groupby("source_table").size().to_dict()
    audit = pd.DataFrame(
        [{"source_table": t, **counts[t], "pending": set_aside.get(t, 0),
          "received": received.get(t), "kept_last_accepted": int(kept_counts.get(t, 0))}
         for t in VALIDATION_ORDER],
        columns=["source_table", "rows_in", "accepted", "quarantined", "pending", "received",
                 "kept_last_accepted"],
    )
    audit["received"] = audit["received"].astype("Int64")
    replace_table(conn, "canonical", "load_audit", audit)
    return result


KEPT_COLUMNS = ["source_table", "record_id", "rule", "exception_id"]


def keep_last_accepted(conn: duckdb.DuckDBPyConnection, result: ValidationResult
                       ) -> pd.DataFrame:
    """Hold the change, not the record: a record held now whose earlier version the previous
    run accepted (so the books hold it: ``canonical.*`` as the last run wrote it) keeps that
    version in ``result.accepted`` until a new version passes. A malformed update of a posted
    invoice (Stripe re-sends an invoice whenever it is paid or retried) is quarantined with its
    payload and never reverses what was posted; resolving that exception rejects the change
    (the booked version stands), it never un-books a paid invoice. Reads only the held ids'
    rows. One row per record kept: source_table, record_id, rule, exception_id (DECISIONLOG
    "Hold the change, not the record")."""
    from q2c_pipeline.schemas import CANONICAL_TABLES

    quarantine = result.quarantine
    kept = []
    for table in VALIDATION_ORDER:
        mine = quarantine[quarantine["source_table"] == table]
        if not len(mine) or not table_exists(conn, f"canonical.{table}"):
            continue
        keys = CANONICAL_TABLES[table][1]
        accepted = result.accepted[table]
        now = _key_text(accepted, keys) if len(accepted) else pd.Series(dtype=object)
        wanted = sorted(set(mine["record_id"].astype(str)) - set(now))
        if not wanted:
            continue
        key_sql = " || '|' || ".join(f"cast({k} as varchar)" for k in keys)
        before = conn.execute(
            f"select * from canonical.{table} where {key_sql} in "
            f"(select unnest(?::varchar[]))", [wanted]).df()
        if not len(before):
            continue
        rows = before.reindex(columns=accepted.columns)
        result.accepted[table] = pd.concat([accepted, rows], ignore_index=True) if len(
            accepted) else rows.reset_index(drop=True)
        first = mine.assign(exception_id=exception_ids(mine)).drop_duplicates(
            "record_id").set_index("record_id")
        for record_id in _key_text(before, keys):
            kept.append({"source_table": table, "record_id": record_id,
                         "rule": first.loc[record_id, "rule"],
                         "exception_id": first.loc[record_id, "exception_id"]})
    return pd.DataFrame(kept, columns=KEPT_COLUMNS)


def _key_text(frame: pd.DataFrame, keys: list[str]) -> pd.Series:
    """The quarantine's record id of each row: its key columns as text joined by '|'."""
    text = frame[keys[0]].astype(str)
    for key in keys[1:]:
        text = text + "|" + frame[key].astype(str)
    return text


# canonical table -> the source object whose every record is one row of it
ONE_TO_ONE = {
    "legal_entities": ("erp", "legal_entities"), "chart_of_accounts": ("erp", "chart_of_accounts"),
    "accounting_periods": ("erp", "accounting_periods"), "tax_codes": ("erp", "tax_codes"),
    "fx_rates": ("erp", "fx_rates"), "products": ("erp", "products"),
    "customers": ("salesforce", "accounts"), "contract_lines": ("salesforce", "subscriptions"),
    "invoices": ("stripe", "invoices"), "payments": ("stripe", "invoice_payments"),
    "refunds": ("stripe", "refunds"), "usage": ("usage", "events"),
}

FILE_OWNER = {"salesforce": "sales_ops", "stripe": "billing_ops", "usage": "billing_ops",
              "erp": "controllership"}


def _has_file_problems(conn: duckdb.DuckDBPyConnection) -> bool:
    return bool(conn.execute(
        "select count(*) from information_schema.tables where table_schema = 'raw' "
        "and table_name = '_file_problems'").fetchall()[0][0]) and bool(conn.execute(
            "select count(*) from raw._file_problems").fetchall()[0][0])


def file_quarantine(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Source files that could not be read, as quarantine rows (``source_table`` ``files``,
    ``record_id`` the path, ``field`` where in the file, the first 2 KB as the payload), owned
    by the team that owns the source system."""
    rows = conn.execute("select source_system, object, path, rule, location, reason, head "
                        "from raw._file_problems order by source_system, object").fetchall()
    return pd.DataFrame([{
        "source_system": system, "source_table": "files", "record_id": path,
        "field": location, "rule": rule,
        "reason": (f"{rule}: {path} {reason} ({location}); none of its records was landed this "
                   f"run: re-export the {system} {name} file and run again"),
        "owner": FILE_OWNER.get(system, "controllership"), "correlation_id": None,
        "legal_entity": None, "customer_id": None, "payload": head,
    } for system, name, path, rule, location, reason, head in rows])


def _parents_of_unlanded(conn: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """The contracts whose CPQ subscription came without its Id: held whole, so a contract
    never posts with a line missing."""
    parents: dict[str, dict[str, str]] = {}
    for table, position, _field, payload in unlanded_records(conn):
        if table != "salesforce_subscriptions":
            continue
        contract = normalize_salesforce_id(json.loads(payload).get("SBQQ__Contract__c"))
        if contract:
            parents.setdefault("contracts", {}).setdefault(f"sf:{contract}", f"{table}#{position}")
    return parents


def unlanded_quarantine(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Records a source sent without their id (``raw._unlanded_records``), as quarantine rows
    (``source_table`` ``landing``, ``record_id`` ``<raw table>#<position in the extraction>``),
    owned by the team that owns the source system: nothing can refer to them (a contract whose
    CPQ line is one of them is held whole, ``_parents_of_unlanded``), and they leave the queue
    when the next extraction no longer sends them."""
    rows = unlanded_records(conn)
    return pd.DataFrame([{
        "source_system": table.split("_", 1)[0], "source_table": "landing",
        "record_id": f"{table}#{position}", "field": id_field, "rule": "missing_value",
        "reason": (f"missing_value: {table.split('_', 1)[0]} {table.split('_', 1)[1]} record "
                   f"number {position + 1} of the extraction has no {id_field!r}, so it cannot "
                   f"be landed or referred to; fix the export and run again"),
        "owner": FILE_OWNER.get(table.split("_", 1)[0], "controllership"),
        "correlation_id": None, "legal_entity": None, "customer_id": None, "payload": payload,
    } for table, position, id_field, payload in rows], columns=QUARANTINE_COLUMNS)


@dataclass(frozen=True)
class FinanceBuild:
    """One finance run: the engine's view, what it posted, and the posted ledger it left.

    ``journal_lines`` is the whole posted ledger (``ledger.journal_lines``) and
    ``account_balances`` are computed from it: ``finance.*`` shows posted reality, while
    ``engine.journal_lines`` is what the books should hold as of the run."""

    allocation: pd.DataFrame
    revenue_schedule: pd.DataFrame
    journal_lines: pd.DataFrame
    account_balances: pd.DataFrame
    contract_positions: pd.DataFrame
    engine: EngineResult
    delta: LedgerDelta


def build_finance(conn: duckdb.DuckDBPyConnection, policy: Policy, as_of: date) -> FinanceBuild:
    """Run the engine over ``canonical.*``, post its delta to the ledger, write ``finance.*``.

    Periods q2c locked count as closed for the engine as they do for the ledger. New journals
    and reversals are appended to ``ledger.journal_lines`` (never edited); ``finance.journal_lines``
    is the whole posted ledger and ``finance.account_balances`` its balances through ``as_of``.
    """
    tables = {t: read_table(conn, "canonical", t) for t in VALIDATION_ORDER}
    locks = read_period_locks(conn)
    tables["accounting_periods"] = apply_period_locks(tables["accounting_periods"], locks)
    engine = run_engine(tables, policy, as_of)
    closed = closed_periods(tables["accounting_periods"], locks)
    delta = reconcile_ledger(read_ledger(conn), engine.journal_lines, closed, as_of)
    append_ledger(conn, delta)
    ledger = read_ledger(conn)
    through = pd.Timestamp(as_of).strftime("%Y-%m")
    balances = build_account_balances(ledger, through)
    replace_table(conn, "finance", "allocation", engine.allocation)
    replace_table(conn, "finance", "revenue_schedule", engine.revenue_schedule)
    replace_table(conn, "finance", "journal_lines", ledger, types=LEDGER_TYPES)
    replace_table(conn, "finance", "account_balances", balances)
    replace_table(conn, "finance", "contract_positions", engine.contract_positions)
    # Usage journals carry the ids of their summary lines; keep every day's lines in
    # ledger.usage_summary (one SQL pass, the same lines the daily partitions write) so a close
    # run alone lets a user drill from a journal line to its events.
    write_usage_summary(conn, summarize_usage(conn))
    return FinanceBuild(
        allocation=engine.allocation, revenue_schedule=engine.revenue_schedule,
        journal_lines=ledger, account_balances=balances,
        contract_positions=engine.contract_positions, engine=engine, delta=delta,
    )
