"""Usage summarized per UTC day: ``ledger/usage_summary`` in daily partitions, on a schedule.

Rated usage grows by millions of events a day, so it is summarized in DuckDB SQL
(``q2c_pipeline.accounting.usage_summary``) one day at a time, once the day is over, into lines per
legal entity, day, product, logical account and currency, each with its event count and a
fingerprint of the events behind it (``drill_down`` goes back from a line to its events). The
group ``usage_daily`` runs in its own partitioned job; the month-end close leaves it out.
"""

import dagster as dg

from q2c_pipeline.accounting.usage_summary import (
    FINGERPRINT_SCHEME,
    summarize_usage,
    verify_usage_summary,
    write_usage_summary,
)
from q2c_pipeline.core.money import major_units
from q2c_pipeline.defs.columns import column_schemas, with_column_schema
from q2c_pipeline.defs.owners import owner_of
from q2c_pipeline.defs.partitions import usage_daily_partitions
from q2c_pipeline.defs.resources import WarehouseResource

USAGE_SUMMARY_TABLE = "ledger.usage_summary"
USAGE_SUMMARY_KEY = dg.AssetKey(["ledger", "usage_summary"])
USAGE_SUMMARY_CHECK = "usage_summary_matches_canonical_usage"
# The day's run starts at 01:00 UTC the next day: an hour for late-arriving events of the day.
USAGE_SUMMARY_HOUR_UTC = 1


@dg.asset(
    key=USAGE_SUMMARY_KEY,
    group_name="usage_daily",
    owners=owner_of(USAGE_SUMMARY_KEY),
    partitions_def=usage_daily_partitions,
    deps=[dg.AssetKey(["canonical", "usage"]), dg.AssetKey(["canonical", "customers"])],
    kinds={"python", "duckdb"},
    pool="warehouse",
    check_specs=[dg.AssetCheckSpec(USAGE_SUMMARY_CHECK, asset=USAGE_SUMMARY_KEY, blocking=True,
                                   description="The day's summary lines carry every canonical "
                                               "usage event of the day (count and amount per "
                                               "currency) and their fingerprints re-verify.")],
)
def usage_summary(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """One row per legal entity, UTC day, product, logical account and currency of rated usage
    (canonical.usage): UnbilledAccountsReceivable debit and Revenue credit, with event count,
    quantity, amount and events fingerprint. Replaces the partition's day in one transaction."""
    day = context.partition_key
    with warehouse.get_connection() as conn:
        summary = summarize_usage(conn, day=day)
        rows = write_usage_summary(conn, summary, table=USAGE_SUMMARY_TABLE, day=day)
        verified = verify_usage_summary(conn, day, summary_table=USAGE_SUMMARY_TABLE)
        schemas = column_schemas(conn, [USAGE_SUMMARY_TABLE])
    debit_side = summary[summary["debit"] > 0]
    amounts = debit_side.groupby("currency")["amount"].sum()
    yield dg.MaterializeResult(
        asset_key=USAGE_SUMMARY_KEY,
        metadata={
            "day": day,
            "rows": rows,
            "events": int(debit_side["event_count"].sum()),
            **major_units("amount", amounts),
            "fingerprint_scheme": FINGERPRINT_SCHEME,
            **with_column_schema({}, schemas, USAGE_SUMMARY_TABLE),
        },
    )
    totals, mismatched = verified["totals"], verified["mismatched_lines"]
    yield dg.AssetCheckResult(
        asset_key=USAGE_SUMMARY_KEY,
        check_name=USAGE_SUMMARY_CHECK,
        passed=bool(verified["passed"]),
        metadata={
            "day": day,
            "currencies_failing": totals.loc[~totals["matches"], "currency"].tolist(),
            "canonical_events": int(totals["events"].sum()),
            "summarized_events": int(totals["summarized_events"].sum()),
            "mismatched_lines": len(mismatched),
            "mismatched_sample": dg.MetadataValue.text(
                mismatched.head(10).to_string(index=False) if len(mismatched) else "none"),
        },
    )


usage_summary_job = dg.define_asset_job(
    name="usage_summary_job",
    selection=dg.AssetSelection.assets(USAGE_SUMMARY_KEY),
    partitions_def=usage_daily_partitions,
    description="Summarize one UTC day of rated usage into ledger.usage_summary.",
)

# Each day once it is over: the run for day D starts on D+1 at USAGE_SUMMARY_HOUR_UTC.
daily_usage_summary_schedule = dg.build_schedule_from_partitioned_job(
    usage_summary_job,
    name="daily_usage_summary_schedule",
    hour_of_day=USAGE_SUMMARY_HOUR_UTC,
    description="Daily at 01:00 UTC: summarizes the day just ended into ledger.usage_summary "
    "(one partition per UTC day).",
)
