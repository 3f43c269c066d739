"""`q2c run` checks its arguments before any work starts, and says what is wrong in one line
each (exit 2, nothing run)."""

from __future__ import annotations

import duckdb

from q2c_pipeline.cli import main


def _refused(capsys, argv) -> list[str]:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    lines = captured.err.strip().splitlines()
    assert lines[-1] == "q2c run: nothing run"
    return lines[:-1]


def test_a_missing_snapshot_and_a_bad_date_are_refused_before_any_work(tmp_path, capsys):
    lines = _refused(capsys, ["run", "--sample", str(tmp_path / "nowhere"),
                              "--duckdb", str(tmp_path / "w.duckdb"), "--as-of", "31/03/2026"])
    assert lines == [
        "q2c run: --as-of '31/03/2026' is not a date YYYY-MM-DD",
        f"q2c run: --sample {tmp_path / 'nowhere'}: no snapshot there (no manifest.json); write "
        "one with `q2c generate --out <folder>`",
    ]
    assert not (tmp_path / "w.duckdb").exists()


def test_a_warehouse_under_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "sample").mkdir()
    (tmp_path / "sample" / "manifest.json").write_text("{}")
    (tmp_path / "a-file").write_text("")
    lines = _refused(capsys, ["run", "--sample", str(tmp_path / "sample"),
                              "--duckdb", str(tmp_path / "a-file" / "w.duckdb")])
    assert lines == [f"q2c run: --duckdb {tmp_path / 'a-file' / 'w.duckdb'}: "
                     f"{tmp_path / 'a-file'} is a file, not a folder"]


def test_a_close_behind_the_ledger_is_refused_saying_why(tmp_path, capsys):
    (tmp_path / "sample").mkdir()
    (tmp_path / "sample" / "manifest.json").write_text("{}")
    warehouse = tmp_path / "w.duckdb"
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("create schema ledger; create table ledger.journal_lines as "
                     "select date '2026-06-30' as posting_as_of")
    lines = _refused(capsys, ["run", "--sample", str(tmp_path / "sample"),
                              "--duckdb", str(warehouse), "--as-of", "2026-05-31"])
    assert lines == ["q2c run: --as-of 2026-05-31 is before the ledger's latest posting as of "
                     "2026-06-30: a close behind the ledger posts nothing (it cannot see what "
                     "the later close posted); run as of 2026-06-30 or later"]
