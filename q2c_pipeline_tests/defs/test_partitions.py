"""The partitions the UI offers span the company's activity, and a close marks the days it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import dagster as dg

SHOW_PARTITIONS = """
import json
from q2c_pipeline.defs import partitions as p
out = {}
for name in ("invoice_daily_partitions", "usage_daily_partitions",
             "accounting_monthly_partitions"):
    keys = getattr(p, name).get_partition_keys()
    out[name] = [keys[0], keys[-1], len(keys)]
print(json.dumps(out))
"""


def _load_partitions(sample_dir, **env) -> dict:
    """The partition definitions as a fresh code location load sees them."""
    environment = {k: v for k, v in os.environ.items() if k != "BILLING_API_TOKEN"}
    environment.update(Q2C_SAMPLE_DIR=str(sample_dir), **env)
    done = subprocess.run([sys.executable, "-c", SHOW_PARTITIONS], env=environment,
                          capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _days(first: str, last: str) -> int:
    return (date.fromisoformat(last) - date.fromisoformat(first)).days + 1


def test_a_snapshot_bounds_the_partitions_by_its_first_and_last_activity(sample_company):
    # from the source files themselves: Stripe's invoice `created`, the usage files' days
    invoices = json.loads((sample_company / "stripe" / "invoices.json").read_text())
    created = sorted(datetime.fromtimestamp(i["created"], UTC).date().isoformat()
                     for i in invoices)
    usage = sorted(p.name[len("usage_events_"):-len(".parquet")]
                   for p in (sample_company / "usage").glob("usage_events_*.parquet"))
    assert (created[0], created[-1]) == ("2025-12-30", "2026-07-01")  # July's draft renewal
    assert (usage[0], usage[-1]) == ("2026-04-01", "2026-06-30")

    shown = _load_partitions(sample_company)
    assert shown["invoice_daily_partitions"] == ["2025-12-30", "2026-07-01", 184]
    assert _days("2025-12-30", "2026-07-01") == 184
    assert shown["usage_daily_partitions"] == ["2026-04-01", "2026-06-30", 91]
    # accounting months: the first activity's month to the snapshot's as-of month (2026-06-30)
    assert shown["accounting_monthly_partitions"] == ["2025-12-01", "2026-06-01", 7]


def test_with_live_billing_the_invoice_days_run_to_today(sample_company):
    shown = _load_partitions(sample_company, BILLING_API_TOKEN="sk_test_partitions")
    today = datetime.now(UTC).date()
    first, last, _ = shown["invoice_daily_partitions"]
    assert first == "2025-12-01" and last in {today.isoformat(),
                                              (today + timedelta(days=1)).isoformat()}
    assert shown["usage_daily_partitions"][0] == "2026-01-01"


def test_the_close_marks_the_invoice_and_usage_days_it_wrote(closed_warehouse, sample_company):
    _, result, instance = closed_warehouse
    assert result.success
    invoices = json.loads((sample_company / "stripe" / "invoices.json").read_text())
    created = {datetime.fromtimestamp(i["created"], UTC).date().isoformat() for i in invoices}
    usage = {p.name[len("usage_events_"):-len(".parquet")]
             for p in (sample_company / "usage").glob("usage_events_*.parquet")}
    marked: dict[str, set[str]] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.partition:
            marked.setdefault(materialization.asset_key.to_user_string(), set()).add(
                materialization.partition)
    # the tests' partitions run to today: every day from the first partition (2025-12-01) to
    # the last invoice's day (2026-07-01) is landed, 8 of them with invoices (90 in all)
    # (a day without invoices already marked by an earlier run on this instance is not marked
    # again; the days with invoices always are)
    assert len(created) == 8 and max(created) == "2026-07-01"
    every_day = {(date(2025, 12, 1) + timedelta(days=n)).isoformat() for n in range(213)}
    assert _days("2025-12-01", "2026-07-01") == 213
    assert created <= marked["raw/stripe_invoices_daily"] <= every_day
    assert every_day <= instance.get_materialized_partitions(
        dg.AssetKey(["raw", "stripe_invoices_daily"]))
    assert marked["ledger/usage_summary"] == usage and len(usage) == 91
