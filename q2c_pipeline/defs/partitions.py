"""Every partition definition of the code location, bounded by the company's activity.

Read from a snapshot folder, the invoice and usage partitions start on the first day the
company has an invoice (Stripe ``created``) or a usage event and end on the last one
(``SnapshotSource.activity``), and the accounting months run from the first of those months
to the snapshot's as-of month: the UI offers the days that hold data, not 90 empty ones after
it. With live billing, new days keep arriving, so the partitions run from the start dates
below to today (invoices include today: one finalized now reaches the journals within a
minute); so do they for a snapshot without that kind of activity (none generated yet). The
bounds are read once, when the code location loads (``dagster dev`` reloads it from the UI).
"""

from datetime import date, timedelta

import dagster as dg

from q2c_pipeline import settings
from q2c_pipeline.defs.resources import live_systems
from q2c_pipeline.sources.snapshot import SnapshotSource

# Live billing: where the partitions start (the sample company starts trading on 2026-01-01;
# its closed period is 2025-12). A snapshot's own activity takes their place.
INVOICES_START_DATE = "2025-12-01"
USAGE_START_DATE = "2026-01-01"
ACCOUNTING_PERIODS_START_DATE = "2025-12-01"


def _next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def _month_after(day: str) -> str:
    first = date.fromisoformat(day).replace(day=1)
    return (first + timedelta(days=32)).replace(day=1).isoformat()


def partition_bounds(snapshot_root: str, live_billing: bool) -> dict[str, tuple[str, str | None]]:
    """(start, exclusive end or None for "up to today") of the invoice days, usage days and
    accounting months."""
    if live_billing:
        return {"invoices": (INVOICES_START_DATE, None), "usage": (USAGE_START_DATE, None),
                "months": (ACCOUNTING_PERIODS_START_DATE, None)}
    source = SnapshotSource(snapshot_root)
    activity = source.activity()
    bounds: dict[str, tuple[str, str | None]] = {}
    for kind, start in (("invoices", INVOICES_START_DATE), ("usage", USAGE_START_DATE)):
        first, last = activity.get(kind, (start, ""))
        bounds[kind] = (first, _next_day(last) if last else None)
    try:
        as_of = str(source.manifest().get("as_of") or "")
    except (OSError, ValueError):
        as_of = ""
    firsts = [first for first, _ in activity.values()] or [ACCOUNTING_PERIODS_START_DATE]
    last = as_of or max((last for _, last in activity.values()), default="")
    bounds["months"] = (min(firsts)[:8] + "01", _month_after(last) if last else None)
    return bounds


BOUNDS = partition_bounds(settings.sample_dir(), "billing" in live_systems())

# Invoices land in daily partitions keyed by the UTC day they were created (Stripe's `created`,
# the only date its list API filters on, and one that never changes). Live, end_offset=1 makes
# today a partition, so an invoice finalized now reaches the journals within a minute.
invoice_daily_partitions = dg.DailyPartitionsDefinition(
    start_date=BOUNDS["invoices"][0], end_date=BOUNDS["invoices"][1],
    end_offset=0 if BOUNDS["invoices"][1] else 1,
)

# Usage is summarized per UTC day once the day is over.
usage_daily_partitions = dg.DailyPartitionsDefinition(
    start_date=BOUNDS["usage"][0], end_date=BOUNDS["usage"][1]
)  # unbounded (live): up to yesterday

# Accounting periods (calendar months) for the close.
accounting_monthly_partitions = dg.MonthlyPartitionsDefinition(
    start_date=BOUNDS["months"][0], end_date=BOUNDS["months"][1]
)
