"""Column schemas of the warehouse tables, for the UI (``dagster/column_schema``).

Every table asset's materialization carries the columns its table has in DuckDB at that moment
(name, type, nullable), read from ``information_schema``: what a reader querying it will find,
never a list kept by hand beside the SQL. The dbt models get the same after ``dbt build``.
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg
import duckdb

COLUMN_SCHEMA = "dagster/column_schema"


def column_schemas(conn: duckdb.DuckDBPyConnection,
                   tables: Iterable[str]) -> dict[str, dg.TableSchema]:
    """``{"schema.table": TableSchema}`` for each of ``tables`` that exists (bound names)."""
    wanted = sorted(set(tables))
    if not wanted:
        return {}
    rows = conn.execute(
        "select table_schema || '.' || table_name, column_name, data_type, is_nullable "
        "from information_schema.columns where table_schema || '.' || table_name in "
        f"({', '.join('?' for _ in wanted)}) order by 1, ordinal_position", wanted).fetchall()
    columns: dict[str, list[dg.TableColumn]] = {}
    for table, name, kind, nullable in rows:
        columns.setdefault(table, []).append(dg.TableColumn(
            name=name, type=str(kind).lower(),
            constraints=dg.TableColumnConstraints(nullable=nullable == "YES")))
    return {table: dg.TableSchema(columns=found) for table, found in columns.items()}


def with_column_schema(metadata: dict, schemas: dict[str, dg.TableSchema], table: str) -> dict:
    """``metadata`` plus the table's column schema (unchanged when the table is not there);
    descriptions already in ``metadata``'s schema (dbt's documented columns) are kept."""
    if table not in schemas:
        return metadata
    stated = metadata.get(COLUMN_SCHEMA)
    stated = getattr(stated, "schema", stated)
    described = {c.name: c.description.strip() for c in getattr(stated, "columns", []) or []
                 if c.description}
    schema = dg.TableSchema(columns=[
        dg.TableColumn(name=c.name, type=c.type, constraints=c.constraints,
                       description=described.get(c.name))
        for c in schemas[table].columns])
    return {**metadata, COLUMN_SCHEMA: schema}
