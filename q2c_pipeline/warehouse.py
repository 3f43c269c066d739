"""DuckDB table writes and reads, shared by the Dagster assets and the command line.

Plain Python: no dagster. Every write replaces a whole table (or a partition's rows) inside one
transaction with explicit column types, so re-running anything is safe and a reader never sees
half a table. Values travel as registered DataFrames, never interpolated into SQL; identifiers
are checked against a strict pattern before they are spliced in.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd
from pandas.api import types as ptypes

logger = logging.getLogger(__name__)

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


def identifier(name: str) -> str:
    """Return ``name`` if it is a safe lower-case SQL identifier, else raise."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"unsafe SQL identifier: {name!r}")
    return name


class WarehouseLocked(RuntimeError):
    """Another process holds the warehouse file (DuckDB: one writer, and no reader beside it)."""


class WarehouseDamaged(RuntimeError):
    """The warehouse file (or its write-ahead log) is not a readable DuckDB database."""


LOCK_WAIT_SECONDS = 60.0


def backup_path(database_path: str | Path) -> Path:
    """Where the last good close's copy of the warehouse is kept:
    ``backups/<name>.last-good.duckdb`` beside it."""
    path = Path(database_path)
    return path.parent / "backups" / f"{path.stem}.last-good{path.suffix or '.duckdb'}"


def restore_steps(database_path: str | Path) -> str:
    path = Path(database_path)
    return (f"restore the last good close with `q2c restore --duckdb {path}` (it keeps the "
            f"damaged file as {path.name}.damaged and copies {backup_path(path)} in), then run "
            "the close again: it lands what the sources said since and posts it once")


def back_up(conn: duckdb.DuckDBPyConnection, database_path: str | Path) -> Path:
    """Checkpoint the warehouse (its write-ahead log folded into the file) and keep a whole copy
    of it as the last good close, written beside and renamed into place in one step."""
    conn.execute("CHECKPOINT")
    target = backup_path(database_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.writing")
    for leftover in (staging, staging.with_name(staging.name + ".wal")):
        leftover.unlink(missing_ok=True)
    literal = str(staging).replace("'", "''")
    name = conn.execute("select current_database()").fetchone()[0]
    conn.execute(f"ATTACH '{literal}' AS q2c_backup")
    try:
        conn.execute(f'COPY FROM DATABASE "{name}" TO q2c_backup')
        conn.execute("CHECKPOINT q2c_backup")
    finally:
        conn.execute("DETACH q2c_backup")
    os.replace(staging, target)
    return target


def restore(database_path: str | Path) -> Path:
    """Put the last good close back: the damaged file (and its log) kept as ``*.damaged``."""
    path = Path(database_path)
    source = backup_path(path)
    if not source.is_file():
        raise FileNotFoundError(f"no backup at {source}: no close has succeeded on {path} yet")
    for damaged in (path, path.with_name(path.name + ".wal")):
        if damaged.exists():
            os.replace(damaged, damaged.with_name(damaged.name + ".damaged"))
    staging = path.with_name(f".{path.name}.restoring")
    shutil.copyfile(source, staging)
    os.replace(staging, path)
    return source


def damage_error(path: Path, error: Exception) -> WarehouseDamaged:
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return WarehouseDamaged(f"{path} is damaged and cannot be opened ({first}); "
                            + restore_steps(path))


@contextmanager
def connect(
    database_path: str | Path, read_only: bool = False, *,
    lock_wait: float = LOCK_WAIT_SECONDS, sleep=time.sleep,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse file (creating its folder), closing it afterwards.

    When another process holds the file, wait for it (up to ``lock_wait`` seconds, saying so
    once), then fail with what to do instead of DuckDB's lock error."""
    path = Path(database_path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    waited, said = 0.0, False
    while True:
        try:
            conn = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as error:
            if "lock" not in str(error).lower():
                raise damage_error(path, error) from error
            if waited >= lock_wait:
                holder = re.search(r"PID (\d+)", str(error))
                raise WarehouseLocked(
                    f"{path} is held by another process"
                    + (f" (pid {holder.group(1)})" if holder else "")
                    + f" and stayed held for {int(waited)} s. Analysts read "
                    f"{path.with_name('analytics.duckdb')} (published after each close), not "
                    "the warehouse: close the other connection and run again.") from error
            if not said:
                logger.warning("%s is held by another process; waiting up to %d s", path,
                               int(lock_wait))
                said = True
            step = min(2.0, lock_wait - waited) or 0.1
            sleep(step)
            waited += step
        except duckdb.Error as error:  # not a database, a corrupt block, a corrupt log
            raise damage_error(path, error) from error
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def frame_transaction(
    conn: duckdb.DuckDBPyConnection, view: str, frame: pd.DataFrame
) -> Iterator[str]:
    """Register ``frame`` as the view ``view`` and run the block in one transaction: committed
    when the block ends, rolled back when it raises; the view is dropped either way. The block
    moves values by selecting from the view, never by splicing them into SQL."""
    conn.register(view, frame)
    try:
        conn.execute("BEGIN TRANSACTION")
        yield view
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
    finally:
        conn.unregister(view)


def duckdb_type(series: pd.Series) -> str:
    """The DuckDB column type for a pandas column (money is int64 minor units -> BIGINT)."""
    dtype = series.dtype
    if ptypes.is_bool_dtype(dtype):
        return "BOOLEAN"
    if ptypes.is_integer_dtype(dtype):
        return "BIGINT"
    if ptypes.is_float_dtype(dtype):
        return "DOUBLE"
    if ptypes.is_datetime64_any_dtype(dtype):
        return "TIMESTAMP"
    return "VARCHAR"


def _cast(column: str, sql_type: str) -> str:
    quoted = f'"{column}"'
    if sql_type == "VARCHAR":
        return f"CAST({quoted} AS VARCHAR) AS {quoted}"
    return f"CAST({quoted} AS {sql_type}) AS {quoted}"


def replace_table(
    conn: duckdb.DuckDBPyConnection,
    schema: str,
    table: str,
    frame: pd.DataFrame,
    types: Mapping[str, str] | None = None,
) -> int:
    """Replace ``schema.table`` with ``frame`` in one transaction; returns the row count."""
    schema, table = identifier(schema), identifier(table)
    columns = list(frame.columns)
    for column in columns:
        identifier(column)
    sql_types = {c: (types or {}).get(c) or duckdb_type(frame[c]) for c in columns}
    ddl = ", ".join(f'"{c}" {sql_types[c]}' for c in columns)
    select = ", ".join(_cast(c, sql_types[c]) for c in columns)
    with frame_transaction(conn, f"_q2c_write_{schema}_{table}", frame) as view:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        conn.execute(f"CREATE OR REPLACE TABLE {schema}.{table} ({ddl})")
        if len(frame):
            conn.execute(f"INSERT INTO {schema}.{table} SELECT {select} FROM {view}")
    return len(frame)


def table_exists(conn: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    """Whether ``schema.table`` exists (read whole: DuckDB refuses a registration while a
    result is left unread)."""
    schema, table = qualified.split(".", 1)
    return bool(conn.execute(
        "select count(*) from information_schema.tables where table_schema = ? "
        "and table_name = ?", [schema, table]).fetchall()[0][0])


def read_table(
    conn: duckdb.DuckDBPyConnection, schema: str, table: str, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """Read a whole table as a DataFrame (empty frame if it does not exist)."""
    schema, table = identifier(schema), identifier(table)
    if not table_exists(conn, f"{schema}.{table}"):
        return pd.DataFrame(columns=list(columns or []))
    select = ", ".join(f'"{identifier(c)}"' for c in columns) if columns else "*"
    return conn.execute(f"select {select} from {schema}.{table}").df()
