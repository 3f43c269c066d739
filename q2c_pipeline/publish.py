"""What analysts read, published apart from the warehouse the close writes.

DuckDB lets one process write a file and no other process read it meanwhile, so an analyst's
open connection on ``data/warehouse.duckdb`` would stop the close. The close therefore ends by
copying the schemas analysts query (``canonical`` with the quarantine, ``finance``, ``ledger``,
``marts``) into a new file beside the warehouse and renaming it over ``data/analytics.duckdb``
in one step (``os.replace``): a reader with the old file open keeps reading the last close,
the next connection opens this one, and nobody ever sees half a publish.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pandas as pd

from q2c_pipeline.warehouse import identifier

PUBLISHED_SCHEMAS = ("canonical", "finance", "ledger", "marts")


def analytics_path(warehouse_path: str | Path) -> Path:
    """``analytics.duckdb`` beside the warehouse file."""
    return Path(warehouse_path).with_name("analytics.duckdb")


def publish_analytics(conn: duckdb.DuckDBPyConnection, target: str | Path, *,
                      run_id: str, as_of: str | None = None) -> dict[str, int]:
    """Copy every table and view of ``PUBLISHED_SCHEMAS`` (views as tables) from the warehouse
    ``conn`` into a fresh file, then swap it in as ``target``. Returns rows per table."""
    target = Path(target)
    staging = target.with_name(f".{target.name}.publishing")
    for leftover in (staging, staging.with_name(staging.name + ".wal")):
        leftover.unlink(missing_ok=True)
    objects = conn.execute(
        "select table_schema, table_name from information_schema.tables "
        f"where table_catalog = current_database() and table_schema in "
        f"({', '.join('?' for _ in PUBLISHED_SCHEMAS)}) order by 1, 2",
        list(PUBLISHED_SCHEMAS)).fetchall()
    counts: dict[str, int] = {}
    literal = str(staging).replace("'", "''")
    conn.execute(f"ATTACH '{literal}' AS q2c_publish")
    try:
        for schema in sorted({s for s, _ in objects}):
            conn.execute(f"CREATE SCHEMA q2c_publish.{identifier(schema)}")
        for schema, name in objects:
            source = f"{identifier(schema)}.{identifier(name)}"
            conn.execute(f"CREATE TABLE q2c_publish.{source} AS SELECT * FROM {source}")
            counts[f"{schema}.{name}"] = conn.execute(
                f"SELECT count(*) FROM q2c_publish.{source}").fetchone()[0]
        stamp = pd.DataFrame([{
            "published_at": datetime.now(timezone.utc).replace(tzinfo=None),
            "run_id": run_id, "as_of": as_of, "tables": len(objects)}])
        conn.execute("CREATE SCHEMA q2c_publish.publish")
        conn.register("q2c_publish_stamp", stamp)
        conn.execute("CREATE TABLE q2c_publish.publish.published AS "
                     "SELECT * FROM q2c_publish_stamp")
        conn.unregister("q2c_publish_stamp")
        conn.execute("CHECKPOINT q2c_publish")
    finally:
        conn.execute("DETACH q2c_publish")
    os.replace(staging, target)
    return counts
