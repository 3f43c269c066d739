"""The close's last step: publish what analysts read to ``analytics.duckdb``
(``q2c_pipeline/publish.py``), so an analyst's open connection never blocks the next close."""

import dagster as dg

from q2c_pipeline.defs.dbt import q2c_dbt_models, q2c_dbt_work_queues
from q2c_pipeline.defs.owners import owner_of
from q2c_pipeline.defs.resources import WarehouseResource
from q2c_pipeline.publish import analytics_path, publish_analytics
from q2c_pipeline.warehouse import back_up

ANALYTICS_KEY = dg.AssetKey(["publish", "analytics"])


@dg.asset(
    key=ANALYTICS_KEY,
    group_name="publish",
    owners=owner_of(ANALYTICS_KEY),
    kinds={"python", "duckdb"},
    deps=sorted(q2c_dbt_models.keys | q2c_dbt_work_queues.keys,
                key=lambda k: k.to_user_string()),
    pool="warehouse",
    description=(
        "analytics.duckdb beside the warehouse: the canonical model with the quarantine, "
        "finance, ledger and the reconciliation marts as of the last close, swapped in whole when "
        "the close's marts are built. Analysts read this file; the close writes the warehouse. "
        "The warehouse is then checkpointed and copied whole to backups/ as the last good "
        "close (q2c restore puts it back)."
    ),
)
def analytics_publish(context: dg.AssetExecutionContext,
                      warehouse: WarehouseResource) -> dg.MaterializeResult:
    target = analytics_path(warehouse.database_path)
    with warehouse.get_connection() as conn:
        as_of = conn.execute(
            "select as_of from ledger.close_runs order by run_id = ? desc, recorded_at desc "
            "limit 1", [context.run_id]).fetchall()
        counts = publish_analytics(conn, target, run_id=context.run_id,
                                   as_of=as_of[0][0] if as_of else None)
        backup = back_up(conn, warehouse.database_path)
    context.log.info(f"published {len(counts)} tables to {target}; last good close kept as "
                     f"{backup}")
    return dg.MaterializeResult(metadata={
        "path": str(target), "tables": len(counts),
        "rows": sum(counts.values()), "backup": str(backup),
    })
