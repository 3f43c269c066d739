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

# Money is an integer of minor units everywhere (docs/canonical-model.md): say so on the columns
MONEY_COLUMNS = {"debit", "credit", "amount", "tax_amount", "discount_amount", "amount_paid",
                 "amount_due", "amount_remaining", "amount_overpaid", "allocated_amount",
                 "ssp_amount", "transaction_price", "unit_price", "list_price", "net_amount"}
MONEY_WORDS = ("money in minor units of the row's currency (an integer: 12345 is 123.45 USD, "
               "12345 JPY is ¥12,345)")
FUNCTIONAL_WORDS = "money in minor units of the legal entity's functional currency"


def money_description(name: str) -> str | None:
    """What a money column holds, by its name; None for other columns."""
    if name.endswith("_functional") or name.endswith("_functional_minor"):
        return FUNCTIONAL_WORDS
    if name in MONEY_COLUMNS or name.endswith("_minor"):
        return MONEY_WORDS
    return None


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
            name=name, type=str(kind).lower(), description=money_description(name),
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
                       description=described.get(c.name) or c.description)
        for c in schemas[table].columns])
    return {**metadata, COLUMN_SCHEMA: schema}
