"""Raw landing assets: every source record as received, append-only, in ``raw.*``.

The sample company is read through the snapshot resource; the live connectors (issue 3) sit
behind the same resource keys. Landing is idempotent: a record version is appended only when its
content hash is new, so re-materializing adds nothing.
"""


from datetime import datetime

import dagster as dg

from q2c_pipeline.defs.resources import SourceSnapshotResource, WarehouseResource
from q2c_pipeline.sources.registry import (
    ERP_TABLES,
    SALESFORCE_OBJECTS,
    STRIPE_RESOURCES,
    SourceObject,
)
from q2c_pipeline.stages import land_source_objects, land_usage_events, snapshot_records

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


@dg.multi_asset(
    specs=[_spec(o, f"Salesforce {o.name} records as the REST API returns them.") for o in SALESFORCE_OBJECTS],
    can_subset=False,
    pool="warehouse",
)
def salesforce_raw(
    context: dg.AssetExecutionContext, salesforce: SourceSnapshotResource, warehouse: WarehouseResource
):
    """Land Salesforce Accounts, Products, Opportunities, line items, Contracts and CPQ subscriptions."""
    source = salesforce.get_source()
    manifest = source.manifest()
    yield from _land(
        context, warehouse, SALESFORCE_OBJECTS, lambda o: snapshot_records(source, o),
        f"snapshot:{manifest.get('seed')}:{manifest.get('scale')}", _extracted_at(manifest),
    )


@dg.multi_asset(
    specs=[_spec(o, f"Stripe {o.name} as the API returns them at the pinned version.") for o in STRIPE_RESOURCES],
    can_subset=False,
    pool="warehouse",
)
def billing_raw(
    context: dg.AssetExecutionContext, billing: SourceSnapshotResource, warehouse: WarehouseResource
):
    """Land billing customers, products, prices, subscriptions, invoices, credit notes, payments, refunds."""
    source = billing.get_source()
    manifest = source.manifest()
    yield from _land(
        context, warehouse, STRIPE_RESOURCES, lambda o: snapshot_records(source, o),
        f"snapshot:{manifest.get('seed')}:{manifest.get('scale')}", _extracted_at(manifest),
    )


@dg.multi_asset(
    specs=[_spec(o, f"ERP reference table {o.name}.") for o in ERP_TABLES],
    can_subset=False,
    pool="warehouse",
)
def erp_raw(context: dg.AssetExecutionContext, erp: SourceSnapshotResource, warehouse: WarehouseResource):
    """Land ERP reference data: entities, chart of accounts, periods, catalog, tax, FX, customers."""
    source = erp.get_source()
    manifest = source.manifest()

    yield from _land(
        context, warehouse, ERP_TABLES, lambda o: snapshot_records(source, o),
        f"snapshot:{manifest.get('seed')}:{manifest.get('scale')}", _extracted_at(manifest),
    )


@dg.asset(
    key=["raw", "usage_events"],
    group_name="raw",
    kinds={"python", "duckdb", "parquet"},
    pool="warehouse",
)
def usage_events_raw(
    context: dg.AssetExecutionContext, billing: SourceSnapshotResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Metered usage events, one row per event, read from the daily Parquet files as they are."""
    source = billing.get_source()
    days = source.usage_days()
    with warehouse.get_connection() as conn:
        rows = land_usage_events(conn, (source.usage_events(day) for day in days))
    context.log.info(f"usage: {rows} events over {len(days)} days")
    return dg.MaterializeResult(metadata={"events": rows, "days": len(days)})
