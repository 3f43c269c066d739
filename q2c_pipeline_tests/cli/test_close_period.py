"""`q2c close-period`: books close in order, and a refused close says which control failed."""

from __future__ import annotations

import shutil

import duckdb

from q2c_pipeline.cli import main

CONTROLLER = "dana.controller@q2c.example"  # controllership in the sample's roles.yaml


def test_periods_close_in_order_and_an_out_of_order_close_is_refused(
    closed_warehouse, sample_company, tmp_path, capsys, monkeypatch
):
    source, _, _ = closed_warehouse
    warehouse = tmp_path / "books.duckdb"
    shutil.copy(source, warehouse)
    # the command points Q2C_DUCKDB_PATH at its file; give the variable back afterwards
    monkeypatch.setenv("Q2C_DUCKDB_PATH", str(warehouse))
    monkeypatch.setenv("Q2C_SAMPLE_DIR", str(sample_company))

    def close(period: str) -> int:
        return main(["close-period", "--entity", "US01", "--period", period,
                     "--duckdb", str(warehouse), "--as", CONTROLLER])

    assert close("2026-03") == 1
    assert "earlier_periods_closed" in capsys.readouterr().out
    # the open exceptions are another control (q2c_pipeline_tests/close/test_governance.py):
    # controllership accepts every one of them here
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        roots = [r[0][:12] for r in conn.execute(
            "select exception_id from marts.fct_exceptions where rule <> 'held_by_upstream'"
        ).fetchall()]
    assert main(["exceptions", "waive", *roots, "--as", CONTROLLER, "--reason",
                 "accepted for the test of the close order", "--duckdb", str(warehouse)]) == 0
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        reviews = [r[0][:12] for r in conn.execute(
            "select item_id from marts.fct_work_queue where queue = 'amendments_awaiting_review'"
        ).fetchall()]
    assert main(["exceptions", "resolve", *reviews, "--as", CONTROLLER, "--reason",
                 "treatments reviewed", "--duckdb", str(warehouse)]) == 0
    assert [close(p) for p in ("2026-01", "2026-02", "2026-03")] == [0, 0, 0]
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        locked = conn.execute(
            "select period from ledger.period_locks where legal_entity = 'US01' order by period"
        ).fetchall()
    finally:
        conn.close()
    assert [p for (p,) in locked] == ["2026-01", "2026-02", "2026-03"]
