"""Extraction orchestration: live windows landed append-only, high-water marks in DuckDB, the
invoice days a billing change touches, and the posting statuses written back to Salesforce.

Plain Python over a DuckDB connection and the clients of ``salesforce_client`` /
``billing_client``; the Dagster assets and sensors in ``q2c_pipeline/defs`` only wire these.

State lives in ``raw._extraction_state``, one row per (source_system, object_name):
``high_water_mark`` (Salesforce: the greatest SystemModstamp landed, ISO text; Stripe: the greatest
``created`` landed, Unix seconds as text; ``stripe/_events``: the newest event id read),
``source_count`` (records the source reports, for the completeness check), ``rows_received``,
``reported_total`` (what the source said the window held), ``path`` (rest/bulk/list/snapshot),
``extracted_at`` and ``request_id``.

Order of writes, so that a failure never leaves a half-written window: an object's window is
landed in one transaction (``land_records``) and only then is its mark advanced. A run that dies
between the two re-reads the same window next time, and re-landing identical versions adds
nothing. Retries, re-login and the API budget floor are the clients' (``retry.py``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import duckdb
import pandas as pd
import requests
from simple_salesforce.exceptions import SalesforceExpiredSession, SalesforceGeneralError

from q2c_pipeline.sources.billing_client import BillingExtractor
from q2c_pipeline.sources.landing import (
    LandingResult,
    dump_canonical_json,
    ensure_raw_table,
    land_records,
    latest_records,
    validate_table_name,
)
from q2c_pipeline.sources.registry import SALESFORCE_ORG, STRIPE_RESOURCES, SourceObject
from q2c_pipeline.sources.retry import call_with_backoff
from q2c_pipeline.sources.salesforce_client import (
    POSTING_MESSAGE_MAX,
    SalesforceExtractor,
    parse_salesforce_datetime,
)

logger = logging.getLogger(__name__)

STATE_TABLE = "raw._extraction_state"
EVENTS_OBJECT = "_events"  # the stripe events-feed cursor's row in the state table
INVOICES = next(o for o in STRIPE_RESOURCES if o.name == "invoices")
METER_SUMMARIES = "billing_meter_event_summaries"
HELD_BY_UPSTREAM = "held_by_upstream"
POSTED, PENDING, FAILED = "posted", "pending", "failed"
PENDING_MESSAGE = "accepted; no journal lines yet"
STATUS_COLUMNS = ["contract_id", "salesforce_id", "status", "message"]


@dataclass(frozen=True)
class ObjectExtraction:
    """One object's extraction: what arrived, what landed, and the state written after it."""

    source: SourceObject
    received: int
    deleted: int
    landing: LandingResult
    reported_total: int
    source_count: int | None
    high_water_mark: str | None
    path: str
    available: bool = True


@dataclass(frozen=True)
class ExtractionState:
    high_water_mark: str | None
    source_count: int | None
    rows_received: int
    reported_total: int | None
    path: str
    extracted_at: datetime
    request_id: str | None


# ---------------------------------------------------------------------------- state


def ensure_state_table(conn: duckdb.DuckDBPyConnection) -> None:
    """Create ``raw._extraction_state`` when missing."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS raw")
    conn.execute(
        f"""
        CREATE TABLE IF NOT EXISTS {STATE_TABLE} (
            source_system VARCHAR NOT NULL,
            object_name VARCHAR NOT NULL,
            high_water_mark VARCHAR,
            source_count BIGINT,
            rows_received BIGINT NOT NULL,
            reported_total BIGINT,
            path VARCHAR NOT NULL,
            extracted_at TIMESTAMP NOT NULL,
            request_id VARCHAR,
            PRIMARY KEY (source_system, object_name)
        )
        """
    )


def read_state(
    conn: duckdb.DuckDBPyConnection, system: str, object_name: str
) -> ExtractionState | None:
    """The stored state of one object, or None when it was never extracted."""
    ensure_state_table(conn)
    row = conn.execute(
        f"SELECT high_water_mark, source_count, rows_received, reported_total, path, "
        f"extracted_at, request_id FROM {STATE_TABLE} "
        "WHERE source_system = ? AND object_name = ?",
        [system, object_name],
    ).fetchone()
    return None if row is None else ExtractionState(*row)


def write_state(
    conn: duckdb.DuckDBPyConnection, system: str, object_name: str, state: ExtractionState
) -> None:
    """Replace one object's state row (delete + insert in one transaction)."""
    ensure_state_table(conn)
    conn.begin()
    try:
        conn.execute(
            f"DELETE FROM {STATE_TABLE} WHERE source_system = ? AND object_name = ?",
            [system, object_name],
        )
        conn.execute(
            f"INSERT INTO {STATE_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [system, object_name, state.high_water_mark, state.source_count,
             state.rows_received, state.reported_total, state.path,
             _naive_utc(state.extracted_at), state.request_id],
        )
        conn.commit()
    except BaseException:
        conn.rollback()
        raise


def _naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is not None:
        return moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def count_landed_records(conn: duckdb.DuckDBPyConnection, table: str) -> int:
    """Distinct record ids whose latest landed version is not a deletion."""
    qualified = f"raw.{validate_table_name(table)}"
    exists = conn.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_schema = 'raw' AND table_name = ?",
        [table],
    ).fetchone()[0]
    if not exists:
        return 0
    return int(conn.execute(
        f"""
        SELECT count(DISTINCT record_id) FROM (
            SELECT record_id, is_deleted FROM {qualified}
            QUALIFY rank() OVER (
                PARTITION BY record_id ORDER BY source_modstamp DESC NULLS LAST, extracted_at DESC
            ) = 1
        ) WHERE NOT is_deleted
        """
    ).fetchone()[0])


# ---------------------------------------------------------------------------- Salesforce


def _salesforce_retryable(error: BaseException) -> bool:
    if isinstance(error, SalesforceGeneralError):
        return int(error.status) >= 500
    if isinstance(error, SalesforceExpiredSession):
        return True
    return isinstance(error, (requests.ConnectionError, requests.Timeout))


def count_salesforce_records(extractor: SalesforceExtractor, object_name: str) -> int:
    """``SELECT COUNT() FROM <object>``: the live (not deleted) records Salesforce reports."""

    def on_retry(error: BaseException) -> None:
        if isinstance(error, SalesforceExpiredSession):
            extractor.relogin()

    result = call_with_backoff(
        lambda: extractor.sf.query(f"SELECT COUNT() FROM {object_name}"),
        policy=extractor.config.retry_policy,
        is_retryable=_salesforce_retryable,
        what=f"salesforce count {object_name}",
        on_retry=on_retry,
    )
    extractor.check_api_budget()
    return int(result["totalSize"])


def extract_salesforce_objects(
    conn: duckdb.DuckDBPyConnection,
    extractor: SalesforceExtractor,
    objects: Iterable[SourceObject],
    *,
    extracted_at: datetime,
    request_id: str,
    full_refresh: bool = False,
) -> list[ObjectExtraction]:
    """Extract each object's window ``SystemModstamp >= stored mark`` (everything on the first
    run or with ``full_refresh``), land it (deletions as tombstones), count what Salesforce holds,
    then advance the mark. Objects of a package the org lacks (CPQ) are skipped and recorded."""
    out = []
    for obj in objects:
        state = None if full_refresh else read_state(conn, "salesforce", obj.name)
        mark = (
            parse_salesforce_datetime(state.high_water_mark)
            if state is not None and state.high_water_mark
            else None
        )
        result = extractor.extract(obj.name, list(obj.fields) or None, mark)
        landing = land_records(
            conn, obj.raw_table, result.records, id_field="Id", modstamp_field="SystemModstamp",
            extracted_at=extracted_at, request_id=request_id, deleted_ids=result.deleted_ids,
        )
        source_count = count_salesforce_records(extractor, obj.name) if result.available else 0
        new_mark = (
            result.new_high_water_mark.strftime("%Y-%m-%dT%H:%M:%SZ")
            if result.new_high_water_mark is not None
            else None
        )
        write_state(conn, "salesforce", obj.name, ExtractionState(
            new_mark, source_count, len(result.records), result.reported_total, result.path,
            extracted_at, ",".join(result.request_ids) or request_id,
        ))
        out.append(ObjectExtraction(
            obj, len(result.records), len(result.deleted_ids), landing, result.reported_total,
            source_count, new_mark, result.path, result.available,
        ))
    return out


@dataclass(frozen=True)
class IdComparison:
    """One object's Id + SystemModstamp comparison between Salesforce and what was landed."""

    source: SourceObject
    checked: int  # records Salesforce holds
    missing: int  # in Salesforce, never landed
    stale: int  # landed, but Salesforce holds a later SystemModstamp
    vanished: int  # landed as live, gone from Salesforce (hard-deleted, recycle bin emptied)
    landing: LandingResult


def compare_salesforce_ids(
    conn: duckdb.DuckDBPyConnection,
    extractor: SalesforceExtractor,
    obj: SourceObject,
    *,
    extracted_at: datetime,
    request_id: str,
) -> IdComparison:
    """What the incremental windows (and their overlap) can still miss, found and repaired:
    every Id and SystemModstamp Salesforce holds compared with the latest landed version of
    each record. Missing and stale records are extracted by Id and landed; records Salesforce no
    longer has at all land as tombstones. Run periodically (salesforce_id_comparison_schedule);
    the marks are left as they are."""
    source = extractor.id_stamps(obj.name)
    table = ensure_raw_table(conn, obj.raw_table)
    landed = {
        record_id: (stamp, bool(deleted))
        for record_id, stamp, deleted in conn.execute(f"""
            select record_id, source_modstamp, is_deleted from {table}
            qualify rank() over (partition by record_id
                                 order by source_modstamp desc nulls last, extracted_at desc) = 1
        """).fetchall()
    }
    missing = sorted(set(source) - set(landed))
    stale = sorted(
        record_id for record_id, (stamp, _) in source.items()
        if record_id in landed and stamp is not None and (
            landed[record_id][0] is None
            or parse_salesforce_datetime(stamp) > landed[record_id][0]))
    vanished = sorted(record_id for record_id, (_, deleted) in landed.items()
                      if record_id not in source and not deleted)
    records = extractor.extract_ids(obj.name, list(obj.fields) or None, [*missing, *stale]) \
        if missing or stale else []
    # queryAll returns the recycle bin too: a record deleted there lands as deleted, as the
    # windows land it
    in_bin = [str(r["Id"]) for r in records if r.get("IsDeleted") is True]
    landing = land_records(
        conn, obj.raw_table, records, id_field="Id", modstamp_field="SystemModstamp",
        extracted_at=extracted_at, request_id=request_id, deleted_ids=[*in_bin, *vanished],
    )
    if missing or stale or vanished:
        logger.warning("salesforce %s: the Id comparison found %d missing, %d stale and %d "
                       "vanished records; landed", obj.name, len(missing), len(stale),
                       len(vanished))
    return IdComparison(obj, len(source), len(missing), len(stale), len(vanished), landing)


def extract_salesforce_org(
    conn: duckdb.DuckDBPyConnection,
    extractor: SalesforceExtractor,
    *,
    extracted_at: datetime,
    request_id: str,
) -> ObjectExtraction:
    """Land the org as getUserInfo states it (one record; a changed org lands a new version)."""
    record = extractor.user_info()
    landing = land_records(
        conn, SALESFORCE_ORG.raw_table, [record], id_field="organizationId", modstamp_field=None,
        extracted_at=extracted_at, request_id=request_id,
    )
    return ObjectExtraction(SALESFORCE_ORG, 1, 0, landing, 1, 1, None, "soap")


def record_snapshot_counts(
    conn: duckdb.DuckDBPyConnection,
    objects: Iterable[SourceObject],
    fetch: Callable[[SourceObject], list[dict]],
    *,
    extracted_at: datetime,
    request_id: str,
) -> None:
    """Snapshot path: store each Salesforce object's record count (distinct ids not flagged
    ``IsDeleted``) as its source count, so the completeness check reads the same state whichever
    path landed the rows."""
    for obj in objects:
        records = fetch(obj)
        live = {str(r["Id"]) for r in records if r.get("IsDeleted") is not True}
        write_state(conn, obj.system, obj.name, ExtractionState(
            None, len(live), len(records), len(records), "snapshot", extracted_at, request_id,
        ))


# ---------------------------------------------------------------------------- billing


def _merge_by_id(*batches: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One object per id; a later batch replaces an earlier one (lists are read after events, so
    a listed object is the newer state)."""
    merged: dict[str, dict[str, Any]] = {}
    for batch in batches:
        for obj in batch:
            merged[str(obj["id"])] = dict(obj)
    return [merged[key] for key in sorted(merged)]


def extract_billing_resources(
    conn: duckdb.DuckDBPyConnection,
    extractor: BillingExtractor,
    objects: Iterable[SourceObject],
    *,
    extracted_at: datetime,
    request_id: str,
    full_refresh: bool = False,
) -> list[ObjectExtraction]:
    """Land every billing resource: the events feed after the stored event cursor (objects that
    changed: voids, payments, updates), then each resource's objects created at or after its
    stored ``created`` mark (all of them on the first run). Per resource the listed state wins
    over an event's copy of the same object. Marks advance after each resource lands; the event
    cursor advances last."""
    objects = tuple(objects)
    events_state = None if full_refresh else read_state(conn, "stripe", EVENTS_OBJECT)
    cursor = events_state.high_water_mark if events_state is not None else None
    changes = extractor.changes_since(cursor)
    out = []
    for obj in objects:
        state = None if full_refresh else read_state(conn, "stripe", obj.name)
        mark = int(state.high_water_mark) if state is not None and state.high_water_mark else None
        if obj.name == METER_SUMMARIES:
            # whole days re-read each run (late events change a day's value); no mark
            for table in ("stripe_billing_meters", "stripe_subscriptions"):
                ensure_raw_table(conn, table)
            listed = extractor.meter_event_summaries(
                latest_records(conn, "stripe_billing_meters"),
                latest_records(conn, "stripe_subscriptions"), extracted_at)
            mark = None
        elif obj.name == "billing_meters":
            listed = extractor.extract(obj.name)  # few, and Stripe filters them by nothing
            mark = None
        else:
            listed = extractor.extract(obj.name, created_gte=mark)
        changed = changes.objects.get(obj.name, [])
        deleted = changes.deleted_ids.get(obj.name, [])
        records = _merge_by_id(changed, listed.records)
        landing = land_records(
            conn, obj.raw_table, records, id_field="id", modstamp_field=obj.modstamp_field,
            extracted_at=extracted_at, request_id=request_id, deleted_ids=deleted,
        )
        created = [int(r["created"]) for r in listed.records
                   if r.get("created") is not None and obj.name != METER_SUMMARIES
                   and obj.name != "billing_meters"]
        new_mark = str(max(created)) if created else (str(mark) if mark is not None else None)
        write_state(conn, "stripe", obj.name, ExtractionState(
            new_mark, None, len(records), len(listed.records), "list", extracted_at,
            listed.request_ids[-1] if listed.request_ids else request_id,
        ))
        out.append(ObjectExtraction(
            obj, len(records), len(deleted), landing, len(listed.records), None, new_mark, "list",
        ))
    write_state(conn, "stripe", EVENTS_OBJECT, ExtractionState(
        None if changes.cursor is None else str(changes.cursor), None, len(changes.event_ids),
        len(changes.event_ids), "events", extracted_at, request_id,
    ))
    return out


# ---------------------------------------------------------------------------- invoice days


def invoice_day(invoice: Mapping[str, Any]) -> str:
    """The daily partition of an invoice: the UTC day it was created (``YYYY-MM-DD``)."""
    return datetime.fromtimestamp(int(invoice["created"]), tz=timezone.utc).date().isoformat()


def day_window(day: str) -> tuple[int, int]:
    """[start, end) of a UTC day in Unix seconds."""
    start = datetime.combine(date.fromisoformat(day), time(0), tzinfo=timezone.utc)
    return int(start.timestamp()), int((start + timedelta(days=1)).timestamp())


def invoices_created_on(invoices: Iterable[Mapping[str, Any]], day: str) -> list[dict[str, Any]]:
    """The invoices of one daily partition, in the given order."""
    return [dict(i) for i in invoices if i.get("created") is not None and invoice_day(i) == day]


def fetch_invoice_day(extractor: BillingExtractor, day: str) -> list[dict[str, Any]]:
    """Every invoice created on ``day`` as Stripe holds it now (current status, all lines)."""
    start, end = day_window(day)
    return extractor.extract(INVOICES.name, created_gte=start, created_lt=end).records


def land_invoice_day(
    conn: duckdb.DuckDBPyConnection,
    invoices: Sequence[Mapping[str, Any]],
    *,
    extracted_at: datetime,
    request_id: str,
) -> LandingResult:
    """Append the day's new invoice versions to ``raw.stripe_invoices`` (the table the close and
    the canonical layer read); re-landing an unchanged day adds nothing."""
    return land_records(
        conn, INVOICES.raw_table, invoices, id_field="id", modstamp_field="created",
        extracted_at=extracted_at, request_id=request_id,
    )


def affected_invoice_days(invoices: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """{day: fingerprint} for changed invoices: the fingerprint hashes the sorted (id, content)
    of the day's changes, so the same invoice state seen again gives the same fingerprint."""
    contents: dict[str, list[str]] = {}
    for invoice in invoices:
        digest = hashlib.sha256(dump_canonical_json(invoice).encode("utf-8")).hexdigest()
        contents.setdefault(invoice_day(invoice), []).append(f"{invoice['id']}:{digest}")
    return {
        day: hashlib.sha256("\n".join(sorted(items)).encode("utf-8")).hexdigest()[:16]
        for day, items in sorted(contents.items())
    }


# ---------------------------------------------------------------------------- posting status


def build_contract_posting_statuses(
    contracts: pd.DataFrame, journal_lines: pd.DataFrame, quarantine: pd.DataFrame,
    pending_invoices: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per Salesforce contract (``sf:`` ids, accepted or quarantined) with its posting
    status, sorted by contract_id:

    - ``failed`` when any record correlated to the contract sits in the quarantine; the message
      is ``failed: quarantined <rules>; <first reason>``, naming the root rules (rules other than
      held_by_upstream when there are any) and the first such row's reason;
    - ``posted`` when it has journal lines and nothing of it is quarantined;
    - ``pending`` otherwise (accepted, nothing journaled yet, e.g. it starts after as_of).

    A contract with a Stripe invoice in draft (``pending_invoices``) is never failed for it: its
    message says which invoice awaits finalization, after the status it has otherwise.
    """
    accepted = set(contracts["contract_id"].dropna()) if len(contracts) else set()
    held = quarantine[quarantine["correlation_id"].notna()] if len(quarantine) else quarantine
    quarantined_contracts = (
        set(held.loc[held["source_table"] == "contracts", "correlation_id"]) if len(held) else set()
    )
    universe = sorted(c for c in accepted | quarantined_contracts if str(c).startswith("sf:"))
    journaled = set(journal_lines["contract_id"].dropna()) if len(journal_lines) else set()
    by_contract: dict[str, pd.DataFrame] = (
        {key: rows for key, rows in held.groupby("correlation_id", sort=True)} if len(held) else {}
    )
    drafts: dict[str, list[str]] = {}
    if pending_invoices is not None and len(pending_invoices):
        for contract, source_id in pending_invoices[["contract_id", "source_id"]].dropna(
                subset=["contract_id"]).itertuples(index=False):
            drafts.setdefault(str(contract), []).append(str(source_id))
    rows = []

    def awaiting(contract_id: str, message: str | None) -> str | None:
        if contract_id not in drafts:
            return message
        note = f"Stripe invoice {', '.join(sorted(drafts[contract_id]))} awaiting finalization"
        return note if message is None else f"{message}; {note}"

    for contract_id in universe:
        stuck = by_contract.get(contract_id)
        if stuck is not None and len(stuck):
            roots = stuck[stuck["rule"] != HELD_BY_UPSTREAM]
            roots = (roots if len(roots) else stuck).sort_values(
                ["source_table", "record_id", "rule"], kind="stable"
            )
            rules = ", ".join(sorted(set(roots["rule"])))
            message = f"failed: quarantined {rules}; {roots['reason'].iloc[0]}"
            rows.append((contract_id, FAILED, message[:POSTING_MESSAGE_MAX]))
        elif contract_id in journaled:
            rows.append((contract_id, POSTED, awaiting(contract_id, None)))
        else:
            rows.append((contract_id, PENDING,
                         awaiting(contract_id, PENDING_MESSAGE)[:POSTING_MESSAGE_MAX]))
    frame = pd.DataFrame(rows, columns=["contract_id", "status", "message"], dtype=object)
    frame.insert(1, "salesforce_id", frame["contract_id"].str.removeprefix("sf:"))
    return frame[STATUS_COLUMNS].reset_index(drop=True)
