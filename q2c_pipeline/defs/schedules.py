"""Jobs and schedules: the month-end close runs every asset in order, in one process, so the
single DuckDB writer is never contended."""


import dagster as dg

# Daily-partitioned assets live in these groups and run in their own partitioned jobs (a Dagster
# job cannot mix partitioned and unpartitioned assets).
PARTITIONED_GROUPS = ("invoices_daily", "usage_daily")

month_end_close_job = dg.define_asset_job(
    name="month_end_close_job",
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups(*PARTITIONED_GROUPS),
    executor_def=dg.in_process_executor,
    description=(
        "Land every source, validate into the canonical model, allocate and recognize revenue, "
        "build journals and balances, then build and test the reconciliation marts."
    ),
)

# Business day 1 of each month, 06:00 UTC: the previous month's close run.
MONTH_END_CLOSE_CRON = "0 6 1 * *"

monthly_month_end_close_schedule = dg.ScheduleDefinition(
    name="monthly_month_end_close_schedule",
    job=month_end_close_job,
    cron_schedule=MONTH_END_CLOSE_CRON,
    execution_timezone="UTC",
)
