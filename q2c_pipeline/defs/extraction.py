"""Source-system assets: raw landing (every record as received, append-only, in ``raw.*``),
the invoice day partitions, and the posting status written back to Salesforce.

``salesforce`` and ``billing`` are live or snapshot resources (``defs/resources.py``). Live runs
extract incrementally from the high-water marks in ``raw._extraction_state``
(``q2c_pipeline.sources.extract``); snapshot runs land the folder. Landing is idempotent: a record
version is appended only when its content hash is new, so re-materializing adds nothing.

Invoice partitions: ``raw/stripe_invoices_daily`` (group ``invoices_daily``, daily partitions keyed
by the UTC day the invoice was *created*) lands one day's invoices, as billing holds them now,
into the same append-only ``raw.stripe_invoices`` the close reads; the unpartitioned
``raw/stripe_invoices`` landing stays for the close job. Canonical and finance are refreshed after
a day lands by ``invoices_landed_sensor`` (``defs/sensors.py``), which requests
``invoice_journals_job``: a job cannot mix the daily partitions with the unpartitioned graph, and
the canonical assets do not list the daily asset as a dependency, so declarative automation
would not see it. Created day rather than finalized day: ``created`` is immutable and the only
date the billing list API filters on, so re-running a day re-reads exactly its invoices.
"""

from datetime import datetime, timezone

import dagster as dg

from q2c_pipeline.defs.columns import column_schemas, with_column_schema
from q2c_pipeline.defs.owners import owner_of
from q2c_pipeline.defs.partitions import invoice_daily_partitions
from q2c_pipeline.defs.resources import (
    BillingResource,
    SalesforceResource,
    SourceSnapshotResource,
    WarehouseResource,
)
from q2c_pipeline.sources.extract import (
    INVOICES,
    build_contract_posting_statuses,
    land_invoice_day,
)
from q2c_pipeline.sources.protocol import land_snapshot_objects, snapshot_usage_frames
from q2c_pipeline.sources.registry import (
    ERP_TABLES,
    SALESFORCE_OBJECTS,
    SALESFORCE_ORG,
    STRIPE_RESOURCES,
    SourceObject,
)
from q2c_pipeline.stages import land_usage_events
from q2c_pipeline.warehouse import read_table, replace_table, table_exists

INVOICES_DAILY_KEY = dg.AssetKey(["raw", "stripe_invoices_daily"])
CONTRACT_POSTING_STATUS_KEY = dg.AssetKey(["salesforce", "contract_posting_status"])


class ExtractionConfig(dg.Config):
    """Run-time knobs of a live extraction."""

    full_refresh: bool = False  # ignore the stored high-water marks and re-read everything
    # after the windows, compare every Salesforce Id + SystemModstamp with what was landed and
    # land what the windows missed (salesforce_id_comparison_schedule runs it weekly)
    compare_ids: bool = False


RAW_KINDS = {"python", "duckdb"}


def _spec(obj: SourceObject, description: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=["raw", obj.raw_table],
        group_name="raw",
        owners=owner_of(["raw", obj.raw_table]),
        kinds=RAW_KINDS | {obj.system},
        description=description,
        metadata={"source_object": obj.name, "id_fields": ",".join(obj.id_fields)},
    )


def _results(context: dg.AssetExecutionContext, extractions, conn,
             extra: dict[str, dict] | None = None):
    """One materialization per landed object, the same metadata whichever source landed it
    (with its raw table's columns)."""
    extractions = list(extractions)
    schemas = column_schemas(conn, [f"raw.{item.source.raw_table}" for item in extractions])
    for item in extractions:
        obj, landing = item.source, item.landing
        context.log.info(
            f"{obj.system}.{obj.name}: {item.received} received ({item.deleted} deleted) via "
            f"{item.path}, {landing.inserted} new versions landed, mark {item.high_water_mark}"
        )
        metadata = {
            "records_received": item.received,
            "deleted": item.deleted,
            "versions_appended": landing.inserted,
            "unchanged": landing.unchanged,
            "reported_total": item.reported_total,
            "path": item.path,
            "high_water_mark": item.high_water_mark or "",
            "request_id": context.run_id,
        }
        if item.source_count is not None:
            metadata["source_count"] = item.source_count
        if not item.available:
            metadata["available"] = False
        metadata.update((extra or {}).get(obj.raw_table, {}))
        metadata = with_column_schema(metadata, schemas, f"raw.{obj.raw_table}")
        yield dg.MaterializeResult(asset_key=["raw", obj.raw_table], metadata=metadata)


@dg.multi_asset(
    specs=[
        *(_spec(o, f"Salesforce {o.name} records as the REST API returns them.")
          for o in SALESFORCE_OBJECTS),
        _spec(SALESFORCE_ORG, "The Salesforce org as SOAP getUserInfo states it: multi-currency "
              "or not, its default currency, the time zone."),
    ],
    can_subset=False,
    pool="warehouse",
)
def salesforce_raw(
    context: dg.AssetExecutionContext,
    config: ExtractionConfig,
    salesforce: SalesforceResource,
    warehouse: WarehouseResource,
):
    """Land Salesforce Accounts, Products, Opportunities, line items, Contracts, CPQ subscriptions.

    Live: the window since each object's SystemModstamp mark (queryAll, so deletions land as
    tombstones), REST or Bulk 2.0 by size; CPQ objects only when the org has them."""
    source = salesforce.source()
    with warehouse.get_connection() as conn:
        landed = source.land(conn, request_id=context.run_id, full_refresh=config.full_refresh,
                             compare_ids=config.compare_ids)
        results = list(_results(context, landed.objects, conn, {
            table: {"id_comparison_checked": found.checked,
                    "id_comparison_missing": found.missing,
                    "id_comparison_stale": found.stale, "id_comparison_vanished": found.vanished}
            for table, found in landed.id_comparisons.items()}))
    for table, found in landed.id_comparisons.items():
        context.log.info(
            f"{table}: Id comparison over {found.checked} records: {found.missing} missing, "
            f"{found.stale} stale, {found.vanished} vanished, {found.landing.inserted} versions "
            "landed")
    yield from results


@dg.multi_asset(
    specs=[
        _spec(o, f"Stripe {o.name} as the API returns them at the pinned version.")
        for o in STRIPE_RESOURCES
    ],
    can_subset=False,
    pool="warehouse",
)
def billing_raw(
    context: dg.AssetExecutionContext,
    config: ExtractionConfig,
    billing: BillingResource,
    warehouse: WarehouseResource,
):
    """Land billing customers, products, prices, subscriptions, invoices, credit notes, payments
    and refunds.

    Live: objects created since each resource's mark, plus every object the events feed reports
    changed since the stored event cursor (voids, payments, updates)."""
    with warehouse.get_connection() as conn:
        landed = billing.source().land(conn, request_id=context.run_id,
                                       full_refresh=config.full_refresh)
        created = dict(conn.execute(  # invoices per UTC created day (latest versions)
            f"""select day, count(*) from (
                    select strftime(to_timestamp(cast(payload->>'created' as bigint))
                                    at time zone 'UTC', '%Y-%m-%d') as day
                    from raw.{INVOICES.raw_table}
                    qualify row_number() over (partition by record_id
                                               order by extracted_at desc) = 1)
                where day is not null group by day""").fetchall()) \
            if table_exists(conn, f"raw.{INVOICES.raw_table}") else {}
        results = list(_results(context, landed.objects, conn))
    yield from results
    # this landing holds every invoice day the daily partitions would, up to the last day an
    # invoice was created (a day without one is landed too: it has none): mark those days
    # written (the UI would show them missing), naming the run and the day's invoice count
    # (a day without invoices that was marked before is not marked again every run)
    last = max(created, default="")
    marked = context.instance.get_materialized_partitions(INVOICES_DAILY_KEY) if last else set()
    for day in invoice_daily_partitions.get_partition_keys():
        if day <= last and (day in created or day not in marked):
            context.log_event(dg.AssetMaterialization(
                asset_key=INVOICES_DAILY_KEY, partition=day,
                metadata={"written_by": f"{context.job_name} (billing_raw)",
                          "invoices": created.get(day, 0)}))


@dg.multi_asset(
    specs=[_spec(o, f"ERP reference table {o.name}.") for o in ERP_TABLES],
    can_subset=False,
    pool="warehouse",
)
def erp_raw(
    context: dg.AssetExecutionContext, erp: SourceSnapshotResource, warehouse: WarehouseResource
):
    """Land ERP reference data: entities, chart of accounts, periods, catalog, tax, FX,
    customers."""
    with warehouse.get_connection() as conn:
        landed = land_snapshot_objects(conn, erp.get_source(), ERP_TABLES)
        results = list(_results(context, landed, conn))
    yield from results


@dg.asset(
    key=["raw", "usage_events"],
    owners=owner_of(["raw", "usage_events"]),
    group_name="raw",
    kinds={"python", "duckdb", "parquet"},
    pool="warehouse",
)
def usage_events_raw(
    context: dg.AssetExecutionContext, billing: BillingResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Metered usage events, one row per event, read from the daily Parquet files as they are.
    A day file that cannot be read is quarantined as a file; the other days land."""
    source = billing.get_source()
    days = source.usage_days()
    with warehouse.get_connection() as conn:
        frames = snapshot_usage_frames(conn, source, datetime.now(timezone.utc))
        rows = land_usage_events(conn, frames)
        schemas = column_schemas(conn, ["raw.usage_events"])
    context.log.info(f"usage: {rows} events over {len(frames)} of {len(days)} days")
    return dg.MaterializeResult(metadata=with_column_schema(
        {"events": rows, "days": len(frames), "unreadable_days": len(days) - len(frames)},
        schemas, "raw.usage_events"))


@dg.asset(
    key=INVOICES_DAILY_KEY,
    owners=owner_of(INVOICES_DAILY_KEY),
    group_name="invoices_daily",
    kinds={"python", "duckdb", "stripe"},
    partitions_def=invoice_daily_partitions,
    pool="warehouse",
    metadata={"table": f"raw.{INVOICES.raw_table}", "partition": "UTC day the invoice was created"},
)
def stripe_invoices_daily(
    context: dg.AssetExecutionContext, billing: BillingResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Billing invoices created on one UTC day, as billing holds them now (status, every line),
    appended to ``raw.stripe_invoices`` when their content changed. Requested by
    ``billing_invoice_sensor`` for the days a new or changed invoice falls on."""
    day = context.partition_key
    invoices, extracted_at, request_id = billing.source().invoices_created_on(
        day, context.run_id)
    with warehouse.get_connection() as conn:
        landing = land_invoice_day(
            conn, invoices, extracted_at=extracted_at, request_id=request_id
        )
        schemas = column_schemas(conn, [f"raw.{INVOICES.raw_table}"])
    context.log.info(f"invoices of {day}: {len(invoices)} received, {landing.inserted} new")
    return dg.MaterializeResult(metadata=with_column_schema({
        "day": day,
        "invoices": len(invoices),
        "versions_appended": landing.inserted,
        "unchanged": landing.unchanged,
    }, schemas, f"raw.{INVOICES.raw_table}"))


@dg.asset(
    key=CONTRACT_POSTING_STATUS_KEY,
    owners=owner_of(CONTRACT_POSTING_STATUS_KEY),
    group_name="writeback",
    kinds={"python", "duckdb", "salesforce"},
    deps=[
        dg.AssetKey(["finance", "journal_lines"]),
        dg.AssetKey(["canonical", "quarantine"]),
        dg.AssetKey(["canonical", "contracts"]),
    ],
    pool="warehouse",
)
def contract_posting_status(
    context: dg.AssetExecutionContext, salesforce: SalesforceResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """One row per Salesforce Contract: posted, pending, or failed with the quarantine rule that
    holds it. Stored in ``finance.contract_posting_status``; with a live org, also written to
    Contract.Q2C_Posting_Status__c / Q2C_Posting_Message__c in bulk, only where they differ."""
    with warehouse.get_connection() as conn:
        statuses = build_contract_posting_statuses(
            read_table(conn, "canonical", "contracts"),
            read_table(conn, "finance", "journal_lines"),
            read_table(conn, "canonical", "quarantine"),
            read_table(conn, "canonical", "pending_invoices"),
        )
        replace_table(
            conn, "finance", "contract_posting_status", statuses,
            types=dict.fromkeys(statuses.columns, "VARCHAR"),
        )
        schemas = column_schemas(conn, ["finance.contract_posting_status"])
    counts = {k: int(v) for k, v in sorted(statuses.groupby("status").size().items())}
    metadata: dict = with_column_schema({"contracts": len(statuses), "by_status": counts},
                                        schemas, "finance.contract_posting_status")
    written = salesforce.source().write_statuses([
        {"contract_id": row.salesforce_id, "status": row.status, "message": row.message}
        for row in statuses.itertuples(index=False)
    ])
    if written is not None:  # a snapshot has nowhere to write: the statuses stay here
        metadata.update(updated_in_salesforce=written.updated, unchanged=written.unchanged)
        context.log.info(f"posting status: {written.updated} contracts updated in Salesforce")
    return dg.MaterializeResult(metadata=metadata)
