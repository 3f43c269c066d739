"""Jobs and schedules: the month-end close runs every asset in order, in one process, so the
single DuckDB writer is never contended."""


import dagster as dg

from q2c_pipeline.sources.registry import SALESFORCE_SOURCES

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

# The 1st of each month, 06:00 UTC: the previous month's close run.
MONTH_END_CLOSE_CRON = "0 6 1 * *"

monthly_month_end_close_schedule = dg.ScheduleDefinition(
    name="monthly_month_end_close_schedule",
    job=month_end_close_job,
    cron_schedule=MONTH_END_CLOSE_CRON,
    execution_timezone="UTC",
    description="The 1st of each month at 06:00 UTC: the month-end close run (land, validate, "
    "recognize, post, reconcile, queue, publish) for the month just ended.",
)


# What incremental windows can miss (a change committed long after its SystemModstamp, a record
# restored from the recycle bin, a hard delete): each Sunday 03:00 UTC the raw Salesforce
# objects are landed with every Id + SystemModstamp compared against what was landed.
salesforce_id_comparison_job = dg.define_asset_job(
    name="salesforce_id_comparison_job",
    selection=dg.AssetSelection.assets(*[["raw", o.raw_table] for o in SALESFORCE_SOURCES]),
    executor_def=dg.in_process_executor,
    config={"ops": {"salesforce_raw": {"config": {"compare_ids": True}}}},
    description=("Land Salesforce and compare every Id + SystemModstamp the org holds with what "
                 "was landed; land what the incremental windows missed."),
)

weekly_salesforce_id_comparison_schedule = dg.ScheduleDefinition(
    name="salesforce_id_comparison_schedule",
    job=salesforce_id_comparison_job,
    cron_schedule="0 3 * * 0",
    execution_timezone="UTC",
    description="Sundays at 03:00 UTC: every Salesforce Id + SystemModstamp against the landed "
    "records, landing what the incremental windows missed.",
)
