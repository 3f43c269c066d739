"""One source interface: a live system and a snapshot folder of it answer the same calls.

The raw assets, the invoice-day partitions, the posting-status write-back and the billing sensor
call these protocols and never ask whether a source is live. Each call returns what landed per
object (``ObjectExtraction``) in the same shape, so the run's metadata reads the same either way:

- ``SalesforceSource.land``: every object (and the org's ``UserInfo``) into ``raw.*``;
  ``write_statuses``: the posting status back to Contract (a snapshot has nowhere to write:
  ``None``).
- ``BillingSource.land``: every Stripe resource; ``invoices_created_on``: one UTC day's invoices
  as the source holds them now; ``changes_since``: the events feed after a cursor (a snapshot
  has no feed: ``None``).

A snapshot lands with the extraction time and request id its manifest states, so landing it twice
is byte-identical; a live source lands at the time of the call under the run's id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

import duckdb

from q2c_pipeline.sources.billing_client import BillingChanges, BillingExtractor
from q2c_pipeline.sources.extract import (
    INVOICES,
    ObjectExtraction,
    compare_salesforce_ids,
    extract_billing_resources,
    extract_salesforce_objects,
    extract_salesforce_org,
    fetch_invoice_day,
    invoices_created_on,
    record_snapshot_counts,
)
from q2c_pipeline.sources.landing import LandingResult, ensure_raw_table, land_records
from q2c_pipeline.sources.registry import (
    SALESFORCE_OBJECTS,
    SALESFORCE_SOURCES,
    STRIPE_RESOURCES,
    SourceObject,
)
from q2c_pipeline.sources.salesforce_client import (
    SalesforceExtractor,
    StatusWriteResult,
    write_contract_statuses,
)
from q2c_pipeline.sources.snapshot import SnapshotFileError, SnapshotSource
from q2c_pipeline.sources.usage import FILE_DAY_COLUMN


@dataclass(frozen=True)
class Landing:
    """What a ``land`` call landed, per object, and how (Id comparisons by raw table)."""

    objects: list[ObjectExtraction]
    id_comparisons: dict[str, Any]


class SalesforceSource(Protocol):
    def land(self, conn: duckdb.DuckDBPyConnection, *, request_id: str,
             full_refresh: bool = False, compare_ids: bool = False) -> Landing: ...

    def write_statuses(self, statuses: Sequence[dict[str, Any]]) -> StatusWriteResult | None: ...


class BillingSource(Protocol):
    def land(self, conn: duckdb.DuckDBPyConnection, *, request_id: str,
             full_refresh: bool = False) -> Landing: ...

    def invoices_created_on(self, day: str, request_id: str
                            ) -> tuple[list[dict[str, Any]], datetime, str]: ...

    def changes_since(self, cursor: str | int | None) -> BillingChanges | None: ...


def _now() -> datetime:
    return datetime.now(timezone.utc)


def snapshot_stamp(snapshot: SnapshotSource) -> tuple[datetime, str]:
    """The extraction time and request id a snapshot's manifest states."""
    manifest = snapshot.manifest()
    extracted_at = datetime.fromisoformat(str(manifest["extracted_at"]).replace("Z", "+00:00"))
    return extracted_at, f"snapshot:{manifest.get('seed')}:{manifest.get('scale')}"


@dataclass(frozen=True)
class LandedObject:
    source: SourceObject
    received: int
    result: LandingResult


def snapshot_records(source, obj: SourceObject) -> list[dict]:
    """Records of one source object from a snapshot folder (``SnapshotSource``), as received."""
    if obj.system == "salesforce":
        return source.salesforce_records(obj.name)
    if obj.system == "stripe":
        return source.billing_objects(obj.name)
    frame = source.erp_table(obj.name)
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


FILE_PROBLEMS_TABLE = "raw._file_problems"
_FILE_PROBLEM_COLUMNS = ("source_system", "object", "path", "rule", "location", "reason",
                         "head", "detected_at")


def record_file_problem(conn: duckdb.DuckDBPyConnection, system: str, name: str,
                        error: SnapshotFileError, detected_at: datetime) -> None:
    """Keep (replacing the object's earlier one) why a source file could not be read: the
    canonical build quarantines it as a file, and the rest of the close goes on."""
    conn.execute("create schema if not exists raw").fetchall()
    conn.execute(f"create table if not exists {FILE_PROBLEMS_TABLE} ("
                 + ", ".join(f"{c} {'TIMESTAMP' if c == 'detected_at' else 'VARCHAR'}"
                             for c in _FILE_PROBLEM_COLUMNS) + ")").fetchall()
    conn.execute(f"delete from {FILE_PROBLEMS_TABLE} where source_system = ? and object = ?",
                 [system, name]).fetchall()
    try:
        head = error.path.read_bytes()[:2048].decode("utf-8", errors="replace")
    except OSError:
        head = ""
    when = detected_at.astimezone(timezone.utc).replace(tzinfo=None) \
        if detected_at.tzinfo else detected_at
    conn.execute(f"insert into {FILE_PROBLEMS_TABLE} values (?, ?, ?, ?, ?, ?, ?, ?)",
                 [system, name, str(error.path), error.rule, error.where, error.why, head,
                  when]).fetchall()


def clear_file_problem(conn: duckdb.DuckDBPyConnection, system: str, name: str) -> None:
    """The object's file read cleanly this time: its earlier problem is resolved."""
    exists = conn.execute("select count(*) from information_schema.tables where "
                          "table_schema = 'raw' and table_name = '_file_problems'").fetchall()[0][0]
    if exists:
        conn.execute(f"delete from {FILE_PROBLEMS_TABLE} where source_system = ? and "
                     "object = ?", [system, name]).fetchall()


def land_source_objects(
    conn: duckdb.DuckDBPyConnection,
    objects: Iterable[SourceObject],
    fetch: Callable[[SourceObject], list[dict]],
    *,
    request_id: str,
    extracted_at: datetime,
) -> list[LandedObject]:
    """Append every object's new record versions to its ``raw`` table. A file that cannot be
    read lands nothing for its object (what was landed before stays), is kept in
    ``raw._file_problems`` and the other objects land as usual."""
    landed = []
    for obj in objects:
        try:
            records = fetch(obj)
        except SnapshotFileError as error:
            record_file_problem(conn, obj.system, obj.name, error, extracted_at)
            ensure_raw_table(conn, obj.raw_table)  # empty on a first run, else as last landed
            landed.append(LandedObject(obj, 0, LandingResult(0, 0, obj.raw_table)))
            continue
        clear_file_problem(conn, obj.system, obj.name)
        if len(obj.id_fields) > 1:
            records = [{**r, "_key": "|".join(str(r[f]) for f in obj.id_fields)} for r in records]
            id_field = "_key"
        else:
            id_field = obj.id_fields[0]
        result = land_records(
            conn,
            obj.raw_table,
            records,
            id_field=id_field,
            modstamp_field=obj.modstamp_field,
            extracted_at=extracted_at,
            request_id=request_id,
        )
        landed.append(LandedObject(obj, len(records), result))
    return landed


def snapshot_usage_frames(conn: duckdb.DuckDBPyConnection, snapshot: SnapshotSource,
                          detected_at: datetime) -> list:
    """Every readable usage day of a snapshot; an unreadable day file is kept as a file problem
    (object ``usage/<day>``) and the other days are read."""
    frames = []
    for day in snapshot.usage_days():
        try:
            frames.append(snapshot.usage_events(day).assign(**{FILE_DAY_COLUMN: day}))
        except SnapshotFileError as error:
            record_file_problem(conn, "usage", f"usage_events_{day}", error, detected_at)
            continue
        clear_file_problem(conn, "usage", f"usage_events_{day}")
    return frames


def land_snapshot_objects(conn: duckdb.DuckDBPyConnection, snapshot: SnapshotSource,
                          objects: Sequence[SourceObject]) -> list[ObjectExtraction]:
    """Every object's records of a snapshot folder, landed as a live extraction would land
    them (one ``ObjectExtraction`` each, path ``snapshot``)."""
    extracted_at, request_id = snapshot_stamp(snapshot)
    landed = land_source_objects(conn, objects, lambda o: snapshot_records(snapshot, o),
                                 request_id=request_id, extracted_at=extracted_at)
    return [ObjectExtraction(item.source, item.received, 0, item.result, item.received, None,
                             None, "snapshot") for item in landed]


@dataclass
class LiveSalesforce:
    extractor: SalesforceExtractor
    clock: Callable[[], datetime] = _now

    def land(self, conn: duckdb.DuckDBPyConnection, *, request_id: str,
             full_refresh: bool = False, compare_ids: bool = False) -> Landing:
        extracted_at = self.clock()
        objects = extract_salesforce_objects(
            conn, self.extractor, SALESFORCE_OBJECTS, extracted_at=extracted_at,
            request_id=request_id, full_refresh=full_refresh)
        objects.append(extract_salesforce_org(conn, self.extractor, extracted_at=extracted_at,
                                              request_id=request_id))
        compared = {}
        if compare_ids:
            for obj in SALESFORCE_OBJECTS:
                if obj.name in self.extractor.object_names():  # not a package the org lacks
                    compared[obj.raw_table] = compare_salesforce_ids(
                        conn, self.extractor, obj, extracted_at=extracted_at,
                        request_id=request_id)
        return Landing(objects, compared)

    def write_statuses(self, statuses: Sequence[dict[str, Any]]) -> StatusWriteResult | None:
        return write_contract_statuses(self.extractor.sf, list(statuses),
                                       retry_policy=self.extractor.config.retry_policy)


@dataclass
class SnapshotSalesforce:
    snapshot: SnapshotSource

    def land(self, conn: duckdb.DuckDBPyConnection, *, request_id: str,
             full_refresh: bool = False, compare_ids: bool = False) -> Landing:
        # a snapshot is complete by construction: its own record count is the source count,
        # and there is nothing a window could have missed to compare
        extracted_at, snapshot_request = snapshot_stamp(self.snapshot)
        record_snapshot_counts(conn, SALESFORCE_OBJECTS,
                               lambda o: snapshot_records(self.snapshot, o),
                               extracted_at=extracted_at, request_id=snapshot_request)
        return Landing(land_snapshot_objects(conn, self.snapshot, SALESFORCE_SOURCES), {})

    def write_statuses(self, statuses: Sequence[dict[str, Any]]) -> StatusWriteResult | None:
        return None  # a snapshot folder is read-only: the statuses stay in the warehouse


@dataclass
class LiveBilling:
    extractor: BillingExtractor
    clock: Callable[[], datetime] = _now

    def land(self, conn: duckdb.DuckDBPyConnection, *, request_id: str,
             full_refresh: bool = False) -> Landing:
        return Landing(extract_billing_resources(
            conn, self.extractor, STRIPE_RESOURCES, extracted_at=self.clock(),
            request_id=request_id, full_refresh=full_refresh), {})

    def invoices_created_on(self, day: str, request_id: str
                            ) -> tuple[list[dict[str, Any]], datetime, str]:
        return fetch_invoice_day(self.extractor, day), self.clock(), request_id

    def changes_since(self, cursor: str | int | None) -> BillingChanges | None:
        return self.extractor.changes_since(cursor)


@dataclass
class SnapshotBilling:
    snapshot: SnapshotSource

    def land(self, conn: duckdb.DuckDBPyConnection, *, request_id: str,
             full_refresh: bool = False) -> Landing:
        return Landing(land_snapshot_objects(conn, self.snapshot, STRIPE_RESOURCES), {})

    def invoices_created_on(self, day: str, request_id: str
                            ) -> tuple[list[dict[str, Any]], datetime, str]:
        extracted_at, snapshot_request = snapshot_stamp(self.snapshot)
        invoices = invoices_created_on(self.snapshot.billing_objects(INVOICES.name), day)
        return invoices, extracted_at, snapshot_request

    def changes_since(self, cursor: str | int | None) -> BillingChanges | None:
        return None  # a folder has no events feed: nothing changes between landings


__all__ = [
    "BillingSource", "LandedObject", "Landing", "LandingResult", "LiveBilling", "LiveSalesforce",
    "SalesforceSource", "SnapshotBilling", "SnapshotSalesforce", "land_snapshot_objects",
    "land_source_objects", "snapshot_records", "snapshot_stamp",
]
