"""The pipeline's stages as plain functions over a DuckDB connection.

The Dagster assets in ``q2c_pipeline/defs`` and the benchmarks in ``benchmarks/`` call these same
functions, so what is measured is what runs. No dagster import here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime

import duckdb
import pandas as pd

from q2c_pipeline.revenue.engine import EngineResult, run_engine
from q2c_pipeline.revenue.policy import Policy
from q2c_pipeline.schemas.validation import VALIDATION_ORDER, ValidationResult, validate_canonical
from q2c_pipeline.sources.assemble import build_candidates
from q2c_pipeline.sources.landing import LandingResult, land_records, latest_records
from q2c_pipeline.sources.registry import (
    ERP_TABLES,
    SALESFORCE_OBJECTS,
    STRIPE_RESOURCES,
    SourceObject,
)
from q2c_pipeline.warehouse import read_table, replace_table

FINANCE_OUTPUTS = ("allocation", "revenue_schedule", "journal_lines", "account_balances")


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


def land_source_objects(
    conn: duckdb.DuckDBPyConnection,
    objects: Iterable[SourceObject],
    fetch: Callable[[SourceObject], list[dict]],
    *,
    request_id: str,
    extracted_at: datetime,
) -> list[LandedObject]:
    """Append every object's new record versions to its ``raw`` table."""
    landed = []
    for obj in objects:
        records = fetch(obj)
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


def land_usage_events(conn: duckdb.DuckDBPyConnection, frames: Iterable[pd.DataFrame]) -> int:
    """Replace ``raw.usage_events`` with the given daily frames (events as they are)."""
    parts = [f for f in frames if len(f)]
    events = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return replace_table(conn, "raw", "usage_events", events)


def load_raw(conn: duckdb.DuckDBPyConnection) -> tuple[dict[str, list[dict]], pd.DataFrame]:
    """Latest non-deleted version of every landed record, keyed by raw table, plus usage events."""
    raw = {
        o.raw_table: latest_records(conn, o.raw_table)
        for o in (*SALESFORCE_OBJECTS, *STRIPE_RESOURCES, *ERP_TABLES)
    }
    return raw, read_table(conn, "raw", "usage_events")


def build_canonical(conn: duckdb.DuckDBPyConnection) -> ValidationResult:
    """Map the latest raw records, validate them, write ``canonical.*`` and the quarantine."""
    raw, usage_events = load_raw(conn)
    result = validate_canonical(build_candidates(raw, usage_events))
    for table in VALIDATION_ORDER:
        replace_table(conn, "canonical", table, result.accepted[table])
    replace_table(conn, "canonical", "quarantine", result.quarantine)
    counts = result.counts()
    audit = pd.DataFrame(
        [{"source_table": t, **counts[t]} for t in VALIDATION_ORDER],
        columns=["source_table", "rows_in", "accepted", "quarantined"],
    )
    replace_table(conn, "canonical", "load_audit", audit)
    return result


def build_finance(conn: duckdb.DuckDBPyConnection, policy: Policy, as_of: date) -> EngineResult:
    """Run the revenue and ledger engine over ``canonical.*`` and write ``finance.*``."""
    tables = {t: read_table(conn, "canonical", t) for t in VALIDATION_ORDER}
    result = run_engine(tables, policy, as_of)
    for name in FINANCE_OUTPUTS:
        replace_table(conn, "finance", name, getattr(result, name))
    return result
