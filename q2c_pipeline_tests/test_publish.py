"""Analysts never block the close: what they read is published to analytics.duckdb, swapped in
whole; a close that finds the warehouse held waits, then says what to do."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import duckdb
import pytest

from q2c_pipeline.publish import analytics_path, publish_analytics
from q2c_pipeline.warehouse import WarehouseLocked, connect


def _reader(path, *, seconds: float) -> subprocess.Popen:
    """Another process holding a read-only connection on ``path`` (an analyst's notebook)."""
    code = textwrap.dedent(f"""
        import duckdb, sys, time
        conn = duckdb.connect({str(path)!r}, read_only=True)
        print(conn.execute("select v from marts.x").fetchone()[0], flush=True)
        sys.stdin.readline()
        print(conn.execute("select v from marts.x").fetchone()[0], flush=True)
        time.sleep({seconds})
    """)
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


def test_a_publish_swaps_in_whole_while_an_analyst_holds_the_last_one(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    target = analytics_path(warehouse)
    with connect(warehouse) as conn:
        conn.execute("create schema marts; create table marts.x as select 1 as v; "
                     "create schema canonical; create view canonical.y as select 2 as w; "
                     "create schema scratch; create table scratch.z as select 3 as u")
        first = publish_analytics(conn, target, run_id="close-1")
        analyst = _reader(target, seconds=0)
        assert analyst.stdout.readline().strip() == "1"
        conn.execute("update marts.x set v = 5")
        second = publish_analytics(conn, target, run_id="close-2")  # not blocked
    analyst.stdin.write("\n")
    analyst.stdin.flush()
    assert analyst.stdout.readline().strip() == "1"  # the open connection keeps the last close
    analyst.wait(timeout=10)
    assert first == second == {"canonical.y": 1, "marts.x": 1}  # scratch is not published
    with duckdb.connect(str(target), read_only=True) as fresh:
        assert fresh.execute("select v from marts.x").fetchone() == (5,)
        assert fresh.execute("select run_id from publish.published").fetchone() == ("close-2",)


def test_a_writer_that_finds_the_warehouse_held_waits_then_says_what_to_do(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    with connect(warehouse) as conn:
        conn.execute("create schema marts; create table marts.x as select 1 as v")
    analyst = _reader(warehouse, seconds=30)
    try:
        assert analyst.stdout.readline().strip() == "1"
        waits: list[float] = []
        with pytest.raises(WarehouseLocked) as locked:
            with connect(warehouse, lock_wait=3.0, sleep=waits.append):
                pass
        assert sum(waits) >= 3.0 and max(waits) <= 2.0  # bounded, in short steps
        message = str(locked.value)
        assert f"pid {analyst.pid}" in message and "analytics.duckdb" in message
    finally:
        analyst.kill()
        analyst.wait(timeout=10)
    with connect(warehouse, lock_wait=0) as conn:  # released: the writer gets in at once
        assert conn.execute("select v from marts.x").fetchone() == (1,)
