"""ledger/usage_summary: one daily partition at a time on a tmp DuckDB, its check and schedule."""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg
import duckdb
import pandas as pd

from q2c_pipeline.accounting.usage_summary import verify_usage_summary
from q2c_pipeline.defs.resources import WarehouseResource
from q2c_pipeline.defs.usage import (
    USAGE_SUMMARY_CHECK,
    daily_usage_summary_schedule,
    usage_summary,
    usage_summary_job,
)

# usage_id, customer_id, product_code, occurred_at, amount (minor), currency
USAGE = [
    ("u1", "K1", "API", "2026-03-05 00:00:00", 100, "USD"),
    ("u2", "K1", "API", "2026-03-05 23:59:59", 250, "USD"),
    ("u3", "K2", "API", "2026-03-05 12:00:00", 70, "EUR"),
    ("u4", "K1", "API", "2026-03-06 00:00:00", 9, "USD"),
]


def _warehouse(tmp_path, rows=USAGE) -> str:
    path = str(tmp_path / "warehouse.duckdb")
    usage = pd.DataFrame(rows, columns=["usage_id", "customer_id", "product_code", "occurred_at",
                                        "amount", "currency"])
    usage["occurred_at"] = pd.to_datetime(usage["occurred_at"])
    usage["quantity"] = 1.0
    customers = pd.DataFrame({"customer_id": ["K1", "K2"], "legal_entity": ["US01", "DE01"]})
    with duckdb.connect(path) as conn:
        conn.execute("create schema canonical")
        conn.register("usage_frame", usage)
        conn.register("customers_frame", customers)
        conn.execute("create table canonical.usage as select * from usage_frame")
        conn.execute("create table canonical.customers as select * from customers_frame")
    return path


def _materialize(path: str, day: str) -> dg.ExecuteInProcessResult:
    return dg.materialize([usage_summary], partition_key=day,
                          resources={"warehouse": WarehouseResource(database_path=path)})


def _rows(path: str) -> list[tuple]:
    with duckdb.connect(path) as conn:
        return conn.execute(
            "select cast(day as varchar), legal_entity, account, currency, debit, credit, "
            "event_count from ledger.usage_summary order by day, legal_entity, currency, account"
        ).fetchall()


def test_a_partition_writes_that_day_summary_lines_and_its_check_passes(tmp_path):
    path = _warehouse(tmp_path)
    result = _materialize(path, "2026-03-05")
    assert result.success
    assert _rows(path) == [
        ("2026-03-05", "DE01", "Revenue", "EUR", 0, 70, 1),
        ("2026-03-05", "DE01", "UnbilledAccountsReceivable", "EUR", 70, 0, 1),
        ("2026-03-05", "US01", "Revenue", "USD", 0, 350, 2),
        ("2026-03-05", "US01", "UnbilledAccountsReceivable", "USD", 350, 0, 2),
    ]
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == USAGE_SUMMARY_CHECK and check.passed
    assert check.metadata["canonical_events"].value == 3
    materialization = result.asset_materializations_for_node("ledger__usage_summary")[0]
    assert materialization.metadata["events"].value == 3
    assert materialization.metadata["amount EUR"].value == "0.70"
    assert materialization.metadata["amount USD"].value == "3.50"


def test_rerunning_a_day_replaces_its_rows_and_leaves_other_days_alone(tmp_path):
    path = _warehouse(tmp_path)
    assert _materialize(path, "2026-03-05").success
    assert _materialize(path, "2026-03-06").success
    with duckdb.connect(path) as conn:  # a 2026-03-05 event is corrected at the source
        conn.execute("update canonical.usage set amount = 300 where usage_id = 'u2'")
    assert _materialize(path, "2026-03-05").success
    rows = _rows(path)
    assert ("2026-03-05", "US01", "Revenue", "USD", 0, 400, 2) in rows
    assert ("2026-03-06", "US01", "Revenue", "USD", 0, 9, 1) in rows
    assert len(rows) == 6


def test_check_fails_when_events_change_after_the_day_was_summarized(tmp_path):
    path = _warehouse(tmp_path)
    assert _materialize(path, "2026-03-05").success
    with duckdb.connect(path) as conn:
        # tamper with the stored line instead of the events: the fingerprints no longer verify
        conn.execute("update ledger.usage_summary set event_count = 5 "
                     "where legal_entity = 'US01' and account = 'Revenue'")
    with duckdb.connect(path) as conn:
        verified = verify_usage_summary(conn, "2026-03-05")
    assert not verified["passed"]
    assert len(verified["mismatched_lines"]) == 1
    assert verified["totals"]["matches"].all()  # totals read the debit side, still right


def test_a_day_without_usage_empties_its_partition(tmp_path):
    path = _warehouse(tmp_path)
    assert _materialize(path, "2026-03-06").success
    with duckdb.connect(path) as conn:
        conn.execute("delete from canonical.usage where usage_id = 'u4'")
    result = _materialize(path, "2026-03-06")
    assert result.success
    assert [row for row in _rows(path) if row[0] == "2026-03-06"] == []
    (check,) = result.get_asset_check_evaluations()
    assert check.passed


def test_schedule_requests_the_day_that_just_ended():
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 3, 6, 1, 0, tzinfo=timezone.utc))
    requests = list(daily_usage_summary_schedule.evaluate_tick(context).run_requests or [])
    assert [r.partition_key for r in requests] == ["2026-03-05"]
    assert daily_usage_summary_schedule.job_name == usage_summary_job.name
    assert daily_usage_summary_schedule.cron_schedule == "0 1 * * *"
