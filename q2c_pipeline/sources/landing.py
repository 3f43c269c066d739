"""Append-only raw landing of source records into `raw.<table>` in DuckDB.

Layout (docs/pipeline-contract.md): record_id, payload (JSON text), content_hash (sha256 of the
canonical JSON of the payload), source_modstamp, is_deleted, extracted_at, request_id.

Rules:
- A version is appended only when it differs (content_hash or is_deleted) from the latest landed
  version of its record_id, so re-landing the same window adds nothing, and a record that changes
  back to an earlier content (A -> B -> A) is still landed as the newest version.
- The latest version per record_id is the one with the greatest (source_modstamp, extracted_at).
- Canonical JSON: keys sorted, no insignificant whitespace, numbers written in one exact form
  (floats through their shortest repr, Decimals and floats normalised: `1200.50`, `1200.5` and
  Decimal("1200.5") all become `1200.5`; integral values become integers). The same record therefore
  hashes the same whether it came from REST JSON, Bulk CSV or a snapshot file.
- Payloads are read back with `parse_float=Decimal`, so money stays exact downstream.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import duckdb
import pandas as pd

RAW_SCHEMA = "raw"

# Table names are interpolated into SQL identifiers, so they must match this pattern (lower-case
# snake case under one of the source prefixes of docs/pipeline-contract.md). Values never are.
_TABLE_NAME = re.compile(r"^(salesforce|stripe|usage|erp)_[a-z0-9_]{1,60}$|^usage_events$")

_LANDING_COLUMNS = (
    "record_id",
    "payload",
    "content_hash",
    "source_modstamp",
    "is_deleted",
    "extracted_at",
    "request_id",
)


@dataclass(frozen=True)
class LandingResult:
    """How many versions a landing call appended, and how many it found already landed."""

    inserted: int
    unchanged: int
    table: str = ""
    unlanded: int = 0  # records without an id, kept in raw._unlanded_records instead


def validate_table_name(table: str) -> str:
    """Return `table` if it is an allowed raw table name, else raise ValueError."""
    if not _TABLE_NAME.match(table):
        raise ValueError(f"not an allowed raw table name: {table!r}")
    return table


def _canonical_number(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"non-finite number in payload: {value!r}")
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def dump_canonical_json(value: Any, *, numbers_as_sent: bool = False) -> str:
    """Serialise a JSON-like value canonically (sorted keys, compact, one form per number).

    ``numbers_as_sent`` keeps each number as the source wrote it (``444.0`` stays ``444.0``,
    not ``444``): the payload kept is what the source said, while the content hash is taken
    over the one-form text, so the REST and Bulk renderings of a record are one version."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"non-finite number in payload: {value!r}")
        return repr(value) if numbers_as_sent else _canonical_number(Decimal(repr(value)))
    if isinstance(value, Decimal):
        if numbers_as_sent:
            if not value.is_finite():
                raise ValueError(f"non-finite number in payload: {value!r}")
            return format(value, "f")
        return _canonical_number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        items = sorted((str(key), item) for key, item in value.items())
        body = ",".join(f"{json.dumps(key, ensure_ascii=False)}:"
                        f"{dump_canonical_json(item, numbers_as_sent=numbers_as_sent)}"
                        for key, item in items)
        return "{" + body + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dump_canonical_json(item, numbers_as_sent=numbers_as_sent)
                              for item in value) + "]"
    raise TypeError(f"value of type {type(value).__name__} is not JSON: {value!r}")


def load_payload(text: str) -> Any:
    """Parse a landed payload, keeping non-integral numbers exact as Decimal."""
    return json.loads(text, parse_float=Decimal)


def _to_naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is not None:
        return moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def parse_modstamps(values: Sequence[Any]) -> pd.Series:
    """Source modification stamps -> naive-UTC datetime64 Series.

    Accepts ISO 8601 strings (`2024-04-01T10:15:00.000+0000`, `...Z`, dates), integer Unix
    seconds (Stripe), datetimes and None.

    A stamp that is not one (text that is no date, an instant outside 1677-2262, NaN) is null:
    the record still lands, ordered by its extraction time, and validation judges the field the
    stamp came from; a landing never fails on a record's content.
    """
    raw = pd.Series(list(values), dtype="object")
    result = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
    is_number = raw.map(lambda v: isinstance(v, (int, float, Decimal)) and not isinstance(v, bool)
                        and v == v and abs(v) < _MAX_EPOCH_SECONDS)
    if is_number.any():
        seconds = raw[is_number].map(int).astype("int64")
        result[is_number] = pd.to_datetime(seconds, unit="s")
    is_datetime = raw.map(lambda v: isinstance(v, datetime))
    if is_datetime.any():
        result[is_datetime] = pd.to_datetime(raw[is_datetime].map(_to_naive_utc), errors="coerce")
    is_text = raw.map(lambda v: isinstance(v, str))
    if is_text.any():
        parsed = pd.to_datetime(raw[is_text], utc=True, format="ISO8601", errors="coerce")
        result[is_text] = parsed.dt.tz_convert(None)
    return result


_MAX_EPOCH_SECONDS = 9_000_000_000  # year 2255: nanosecond datetimes end in 2262


def ensure_raw_table(conn: duckdb.DuckDBPyConnection, table: str) -> str:
    """Create `raw.<table>` if missing; return its qualified name."""
    qualified = f"{RAW_SCHEMA}.{validate_table_name(table)}"
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
    conn.execute(
        f"""
        CREATE TABLE IF NOT EXISTS {qualified} (
            record_id VARCHAR NOT NULL,
            payload JSON NOT NULL,
            content_hash VARCHAR NOT NULL,
            source_modstamp TIMESTAMP,
            is_deleted BOOLEAN NOT NULL,
            extracted_at TIMESTAMP NOT NULL,
            request_id VARCHAR
        )
        """
    )
    return qualified


def build_landing_frame(
    records: Sequence[Mapping[str, Any]],
    *,
    id_field: str,
    modstamp_field: str,
    extracted_at: datetime,
    request_id: str | None,
    deleted_ids: Iterable[str] = (),
) -> pd.DataFrame:
    """The rows a landing call would offer, one per record_id (latest modstamp wins within the
    batch), sorted by record_id. Deleted ids without a record become tombstones whose payload is
    `{id_field: id}` stamped at `extracted_at`. Every record has its id (``land_records`` keeps
    the others apart)."""
    deleted = {str(record_id) for record_id in deleted_ids}
    record_ids = [str(record[id_field]) for record in records]
    tombstones = sorted(deleted.difference(record_ids))
    extracted = _to_naive_utc(extracted_at)
    tombstone_payloads = [dump_canonical_json({id_field: r}) for r in tombstones]
    hashed = [dump_canonical_json(record) for record in records] + tombstone_payloads
    payloads = [dump_canonical_json(record, numbers_as_sent=True) for record in records]
    payloads += tombstone_payloads
    frame = pd.DataFrame(
        {
            "record_id": record_ids + tombstones,
            "payload": payloads,
            "content_hash": [hashlib.sha256(p.encode("utf-8")).hexdigest() for p in hashed],
            "source_modstamp": pd.concat(
                [
                    parse_modstamps([record.get(modstamp_field) for record in records]),
                    pd.Series([extracted] * len(tombstones), dtype="datetime64[ns]"),
                ],
                ignore_index=True,
            ),
        }
    )
    frame["is_deleted"] = frame["record_id"].isin(deleted)
    frame["extracted_at"] = pd.Series([extracted] * len(frame), dtype="datetime64[ns]")
    frame["request_id"] = pd.Series([request_id] * len(frame), dtype="object")
    frame = frame.sort_values(
        ["record_id", "source_modstamp", "content_hash"], kind="stable", na_position="first"
    )
    # The latest modstamp wins within the batch. Versions that TIE at the latest modstamp with
    # different content are all kept: the source said two things at once (a duplicated id), and
    # validation must see the conflict and quarantine it rather than landing pick one silently.
    latest = frame.groupby("record_id", sort=False)["source_modstamp"].transform("max")
    tied = (frame["source_modstamp"] == latest) | (latest.isna() & frame["source_modstamp"].isna())
    frame = frame[tied].drop_duplicates(["record_id", "content_hash"], keep="last")
    return frame.reset_index(drop=True)[list(_LANDING_COLUMNS)]


def land_records(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    records: Sequence[Mapping[str, Any]],
    *,
    id_field: str,
    modstamp_field: str,
    extracted_at: datetime,
    request_id: str | None,
    deleted_ids: Iterable[str] = (),
) -> LandingResult:
    """Append the new versions of `records` to `raw.<table>` in one transaction.

    `deleted_ids` marks records as deleted (is_deleted = true); ids with no record in `records`
    land as tombstones. Returns how many versions were appended and how many were unchanged.

    A record without its id cannot be a version of anything: it is not landed but kept, as
    received, in ``raw._unlanded_records`` (which this call rewrites for `table`: it reports
    what the latest extraction of the object sent), so the canonical build quarantines it and
    the other records land.
    """
    def no_id(record: Mapping[str, Any]) -> bool:
        value = record.get(id_field)
        return value is None or (isinstance(value, str) and not value.strip())

    unlanded = [(position, record) for position, record in enumerate(records) if no_id(record)]
    if unlanded:
        records = [r for r in records if not no_id(r)]
    batch = build_landing_frame(
        records,
        id_field=id_field,
        modstamp_field=modstamp_field,
        extracted_at=extracted_at,
        request_id=request_id,
        deleted_ids=deleted_ids,
    )
    qualified = ensure_raw_table(conn, table)
    view = "q2c_landing_batch"
    conn.begin()
    try:
        conn.register(view, batch)
        new_rows = conn.execute(
            f"""
            WITH latest AS (
                SELECT record_id, content_hash, is_deleted
                FROM {qualified}
                QUALIFY rank() OVER (
                    PARTITION BY record_id
                    ORDER BY source_modstamp DESC NULLS LAST, extracted_at DESC
                ) = 1
            )
            , seen AS (
                SELECT record_id, max(extracted_at) AS last_at FROM {qualified}
                GROUP BY record_id
            )
            -- a changed record landed again under the same extraction time (a snapshot folder
            -- edited by hand and landed again) is stamped just after the version it follows, so
            -- it supersedes it as a live update would; versions of one batch stay tied
            SELECT b.record_id, b.payload, b.content_hash, b.source_modstamp, b.is_deleted,
                   CASE WHEN s.last_at IS NOT NULL AND s.last_at >= b.extracted_at
                        THEN s.last_at + INTERVAL 1 MICROSECOND
                        ELSE b.extracted_at END AS extracted_at,
                   b.request_id
            FROM {view} AS b
            LEFT JOIN seen AS s ON s.record_id = b.record_id
            WHERE NOT EXISTS (
                SELECT 1 FROM latest AS l
                WHERE l.record_id = b.record_id
                  AND l.content_hash = b.content_hash
                  AND l.is_deleted = b.is_deleted
            )
            ORDER BY b.record_id, b.content_hash
            """
        ).df()
        conn.unregister(view)
        if len(new_rows):
            conn.register(view, new_rows)
            conn.execute(
                f"INSERT INTO {qualified} ({', '.join(_LANDING_COLUMNS)}) "
                f"SELECT {', '.join(_LANDING_COLUMNS)} FROM {view} ORDER BY record_id"
            )
            conn.unregister(view)
        _keep_unlanded(conn, table, id_field, unlanded, _to_naive_utc(extracted_at))
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return LandingResult(inserted=len(new_rows), unchanged=len(batch) - len(new_rows), table=table,
                         unlanded=len(unlanded))


UNLANDED_TABLE = f"{RAW_SCHEMA}._unlanded_records"


def _keep_unlanded(conn: duckdb.DuckDBPyConnection, table: str, id_field: str,
                   unlanded: list[tuple[int, Mapping[str, Any]]], extracted_at: datetime) -> None:
    exists = conn.execute("select count(*) from information_schema.tables where table_schema = "
                          "'raw' and table_name = '_unlanded_records'").fetchall()[0][0]
    if not exists and not unlanded:
        return
    conn.execute(f"""create table if not exists {UNLANDED_TABLE} (
        raw_table VARCHAR NOT NULL, position BIGINT NOT NULL, id_field VARCHAR NOT NULL,
        payload JSON NOT NULL, extracted_at TIMESTAMP NOT NULL)""")
    conn.execute(f"delete from {UNLANDED_TABLE} where raw_table = ?", [table])
    for position, record in unlanded:
        conn.execute(f"insert into {UNLANDED_TABLE} values (?, ?, ?, ?, ?)",
                     [table, position, id_field,
                      dump_canonical_json(record, numbers_as_sent=True), extracted_at])


def unlanded_records(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, int, str, str]]:
    """(raw table, position in the extraction, id field, payload) of every record kept out of
    the raw tables for want of an id, in table and position order."""
    exists = conn.execute("select count(*) from information_schema.tables where table_schema = "
                          "'raw' and table_name = '_unlanded_records'").fetchall()[0][0]
    if not exists:
        return []
    return conn.execute(f"select raw_table, position, id_field, payload::VARCHAR "
                        f"from {UNLANDED_TABLE} order by raw_table, position").fetchall()


def latest_records(conn: duckdb.DuckDBPyConnection, table: str) -> list[dict[str, Any]]:
    """The latest landed payload per record_id (by source_modstamp, then extracted_at), without
    records whose latest version is deleted, ordered by record_id. Versions tied at the latest
    instant with different content are all returned, so validation sees the conflict."""
    qualified = f"{RAW_SCHEMA}.{validate_table_name(table)}"
    rows = conn.execute(
        f"""
        SELECT payload::VARCHAR, is_deleted
        FROM {qualified}
        QUALIFY rank() OVER (
            PARTITION BY record_id
            ORDER BY source_modstamp DESC NULLS LAST, extracted_at DESC
        ) = 1
        ORDER BY record_id, content_hash
        """
    ).fetchall()
    return [load_payload(payload) for payload, is_deleted in rows if not is_deleted]
