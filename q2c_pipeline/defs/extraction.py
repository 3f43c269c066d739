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
    compare_salesforce_ids,
    extract_billing_resources,
    extract_salesforce_objects,
    extract_salesforce_org,
    fetch_invoice_day,
    invoices_created_on,
    land_invoice_day,
    record_snapshot_counts,
)
from q2c_pipeline.sources.registry import (
    ERP_TABLES,
    SALESFORCE_OBJECTS,
    SALESFORCE_ORG,
    SALESFORCE_SOURCES,
    STRIPE_RESOURCES,
    SourceObject,
)
from q2c_pipeline.sources.salesforce_client import write_contract_statuses
from q2c_pipeline.stages import land_source_objects, land_usage_events, snapshot_records
from q2c_pipeline.warehouse import read_table, replace_table

INVOICES_DAILY_KEY = dg.AssetKey(["raw", "stripe_invoices_daily"])
CONTRACT_POSTING_STATUS_KEY = dg.AssetKey(["salesforce", "contract_posting_status"])


class ExtractionConfig(dg.Config):
    """Run-time knobs of a live extraction."""

    full_refresh: bool = False  # ignore the stored high-water marks and re-read everything
    # after the windows, compare every Salesforce Id + SystemModstamp with what was landed and
    # land what the windows missed (salesforce_id_comparison_schedule runs it weekly)
    compare_ids: bool = False


def _now() -> datetime:
    """Extraction time of a live run (wiring only: the pure code takes it as an argument)."""
    return datetime.now(timezone.utc)


def _snapshot_request_id(manifest: dict) -> str:
    return f"snapshot:{manifest.get('seed')}:{manifest.get('scale')}"

RAW_KINDS = {"python", "duckdb"}


def _spec(obj: SourceObject, description: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=["raw", obj.raw_table],
        group_name="raw",
        kinds=RAW_KINDS | {obj.system},
        description=description,
        metadata={"source_object": obj.name, "id_fields": ",".join(obj.id_fields)},
    )


def _extracted_at(manifest: dict) -> datetime:
    """Snapshots carry their own extraction time, so landing them twice is byte-identical."""
    return datetime.fromisoformat(str(manifest["extracted_at"]).replace("Z", "+00:00"))


def _land(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    objects: tuple[SourceObject, ...],
    fetch,
    request_id: str,
    extracted_at: datetime,
):
    with warehouse.get_connection() as conn:
        landed = land_source_objects(
            conn, objects, fetch, request_id=request_id, extracted_at=extracted_at
        )
    for item in landed:
        obj, result = item.source, item.result
        context.log.info(
            f"{obj.system}.{obj.name}: {item.received} received, {result.inserted} new "
            f"versions landed, {result.unchanged} unchanged"
        )
        yield dg.MaterializeResult(
            asset_key=["raw", obj.raw_table],
            metadata={
                "records_received": item.received,
                "versions_appended": result.inserted,
                "unchanged": result.unchanged,
                "request_id": request_id,
            },
        )


def _live_results(context: dg.AssetExecutionContext, extractions,
                  extra: dict[str, dict] | None = None):
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
    if salesforce.is_live:
        extractor = salesforce.get_extractor()
        with warehouse.get_connection() as conn:
            extracted_at = _now()
            extractions = extract_salesforce_objects(
                conn, extractor, SALESFORCE_OBJECTS, extracted_at=extracted_at,
                request_id=context.run_id, full_refresh=config.full_refresh,
            )
            extractions.append(extract_salesforce_org(
                conn, extractor, extracted_at=extracted_at, request_id=context.run_id))
            compared = {}
            if config.compare_ids:
                for obj in SALESFORCE_OBJECTS:
                    if obj.name not in extractor.object_names():
                        continue  # a package the org lacks
                    found = compare_salesforce_ids(conn, extractor, obj,
                                                   extracted_at=extracted_at,
                                                   request_id=context.run_id)
                    compared[obj.raw_table] = found
                    context.log.info(
                        f"salesforce.{obj.name}: Id comparison over {found.checked} records: "
                        f"{found.missing} missing, {found.stale} stale, {found.vanished} "
                        f"vanished, {found.landing.inserted} versions landed")
        yield from _live_results(context, extractions, {
            table: {"id_comparison_checked": found.checked,
                    "id_comparison_missing": found.missing, "id_comparison_stale": found.stale,
                    "id_comparison_vanished": found.vanished}
            for table, found in compared.items()})
        return
    source = salesforce.get_source()
    manifest = source.manifest()
    extracted_at = _extracted_at(manifest)
    request_id = _snapshot_request_id(manifest)
    with warehouse.get_connection() as conn:
        record_snapshot_counts(
            conn, SALESFORCE_OBJECTS, lambda o: snapshot_records(source, o),
            extracted_at=extracted_at, request_id=request_id,
        )
    yield from _land(
        context, warehouse, SALESFORCE_SOURCES, lambda o: snapshot_records(source, o),
        request_id, extracted_at,
    )


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
    if billing.is_live:
        extractor = billing.get_extractor()
        with warehouse.get_connection() as conn:
            extractions = extract_billing_resources(
                conn, extractor, STRIPE_RESOURCES, extracted_at=_now(),
                request_id=context.run_id, full_refresh=config.full_refresh,
            )
        yield from _live_results(context, extractions)
        return
    source = billing.get_source()
    manifest = source.manifest()
    yield from _land(
        context, warehouse, STRIPE_RESOURCES, lambda o: snapshot_records(source, o),
        _snapshot_request_id(manifest), _extracted_at(manifest),
    )


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
    source = erp.get_source()
    manifest = source.manifest()

    yield from _land(
        context, warehouse, ERP_TABLES, lambda o: snapshot_records(source, o),
        _snapshot_request_id(manifest), _extracted_at(manifest),
    )


@dg.asset(
    key=["raw", "usage_events"],
    group_name="raw",
    kinds={"python", "duckdb", "parquet"},
    pool="warehouse",
)
def usage_events_raw(
    context: dg.AssetExecutionContext, billing: BillingResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Metered usage events, one row per event, read from the daily Parquet files as they are."""
    source = billing.get_source()
    days = source.usage_days()
    with warehouse.get_connection() as conn:
        rows = land_usage_events(conn, (source.usage_events(day) for day in days))
    context.log.info(f"usage: {rows} events over {len(days)} days")
    return dg.MaterializeResult(metadata={"events": rows, "days": len(days)})


@dg.asset(
    key=INVOICES_DAILY_KEY,
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
    if billing.is_live:
        invoices = fetch_invoice_day(billing.get_extractor(), day)
        extracted_at, request_id = _now(), context.run_id
    else:
        source = billing.get_source()
        manifest = source.manifest()
        invoices = invoices_created_on(source.billing_objects(INVOICES.name), day)
        extracted_at, request_id = _extracted_at(manifest), _snapshot_request_id(manifest)
    with warehouse.get_connection() as conn:
        landing = land_invoice_day(
            conn, invoices, extracted_at=extracted_at, request_id=request_id
        )
    context.log.info(f"invoices of {day}: {len(invoices)} received, {landing.inserted} new")
    return dg.MaterializeResult(metadata={
        "day": day,
        "invoices": len(invoices),
        "versions_appended": landing.inserted,
        "unchanged": landing.unchanged,
    })


@dg.asset(
    key=CONTRACT_POSTING_STATUS_KEY,
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
    counts = {k: int(v) for k, v in sorted(statuses.groupby("status").size().items())}
    metadata: dict = {"contracts": len(statuses), "by_status": counts}
    if salesforce.is_live:
        extractor = salesforce.get_extractor()
        written = write_contract_statuses(
            extractor.sf,
            [
                {"contract_id": row.salesforce_id, "status": row.status, "message": row.message}
                for row in statuses.itertuples(index=False)
            ],
            retry_policy=extractor.config.retry_policy,
        )
        metadata.update(updated_in_salesforce=written.updated, unchanged=written.unchanged)
        context.log.info(f"posting status: {written.updated} contracts updated in Salesforce")
    return dg.MaterializeResult(metadata=metadata)
