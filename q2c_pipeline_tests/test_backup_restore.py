"""The last good close is kept, a damaged warehouse is named with the way back, and
``q2c restore`` puts the last good close back: what the README's backup section promises."""

from __future__ import annotations

import duckdb
import pytest

from q2c_pipeline import cli
from q2c_pipeline.warehouse import (
    WarehouseDamaged,
    back_up,
    backup_path,
    connect,
)


def _warehouse(path, lines: int) -> None:
    with connect(path) as conn:
        conn.execute("create schema if not exists ledger")
        conn.execute("create or replace table ledger.journal_lines as select "
                     "date '2026-06-30' as posting_as_of, 100 * i as debit, 100 * i as credit "
                     f"from range({lines}) t(i)")


def _damage_header(path) -> None:
    data = bytearray(path.read_bytes())
    data[:8192] = b"\0" * 8192
    path.write_bytes(bytes(data))


def test_a_close_keeps_a_checkpointed_copy_of_the_warehouse_as_the_last_good_one(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    _warehouse(path, 50_000)
    with connect(path) as conn:
        conn.execute("insert into ledger.journal_lines values (date '2026-07-31', 7, 7)")
        kept = back_up(conn, path)
        assert not path.with_name(path.name + ".wal").exists()  # checkpointed first
    assert kept == backup_path(path) == tmp_path / "backups" / "warehouse.last-good.duckdb"
    with duckdb.connect(str(kept), read_only=True) as copy:
        assert copy.execute("select count(*), sum(debit) from ledger.journal_lines"
                            ).fetchone() == (50_001, 100 * (50_000 * 49_999 // 2) + 7)
    assert not list(kept.parent.glob(".*"))  # no staging file left


def test_a_damaged_warehouse_is_named_with_the_restore_step_and_restore_puts_it_back(
    tmp_path, capsys
):
    path, sample = tmp_path / "warehouse.duckdb", tmp_path / "sample"
    sample.mkdir()
    (sample / "manifest.json").write_text("{}")
    _warehouse(path, 1000)
    with connect(path) as conn:
        back_up(conn, path)
    _warehouse(path, 1200)  # a later close ...
    _damage_header(path)  # ... then the disk damages the file

    with pytest.raises(WarehouseDamaged, match="q2c restore --duckdb"):
        with connect(path):
            pass
    # q2c run names the file and the way back before doing any work, not a DuckDB error
    assert cli.main(["run", "--duckdb", str(path), "--sample", str(sample)]) == 2
    err = capsys.readouterr().err
    assert "is damaged and cannot be opened (IO Error" in err
    assert f"q2c restore --duckdb {path}" in err and "nothing run" in err

    assert cli.main(["restore", "--duckdb", str(path)]) == 0
    out = capsys.readouterr().out
    assert "ledger: 1000 lines posted as of 2026-06-30" in out
    with connect(path, read_only=True) as conn:
        assert conn.execute("select count(*) from ledger.journal_lines").fetchone() == (1000,)
    assert (tmp_path / "warehouse.duckdb.damaged").is_file()


def test_restore_without_a_backup_says_so(tmp_path, capsys):
    assert cli.main(["restore", "--duckdb", str(tmp_path / "w.duckdb")]) == 2
    assert "no backup at" in capsys.readouterr().err


def test_a_corrupt_write_ahead_log_is_named_as_damage_not_a_duckdb_error(tmp_path):
    path = tmp_path / "w.duckdb"
    conn = duckdb.connect(str(path))
    conn.execute("create table t as select 1 as i")
    conn.execute("checkpoint")
    conn.execute("pragma disable_checkpoint_on_shutdown")
    conn.execute("insert into t select range from range(1000)")
    conn.close()
    wal = path.with_name(path.name + ".wal")
    data = wal.read_bytes()
    wal.write_bytes(data[:100] + bytes(b ^ 0xFF for b in data[100:200]) + data[200:])
    with pytest.raises(WarehouseDamaged, match="Corrupt WAL file"):
        with connect(path):
            pass
