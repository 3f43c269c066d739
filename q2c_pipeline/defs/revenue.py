"""Finance assets: allocation, revenue schedules, journal lines, account balances and contract
positions.

All five come from one call to the pure engine (``q2c_pipeline.engine.run_engine``) over
the validated canonical tables, the same engine ``q2c revrec`` runs on an interchange folder.
The engine's journals are reconciled against the append-only ledger (``ledger.journal_lines``):
new journals and reversals of changed ones are appended, and ``finance.journal_lines`` is the
whole posted ledger, ``finance.account_balances`` its balances.
"""


import hashlib
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
from pydantic import Field

from q2c_pipeline.close.decisions import ensure_decisions
from q2c_pipeline.core.money import major_units
from q2c_pipeline.core.policy import Policy, load_policy_text
from q2c_pipeline.defs.columns import column_schemas, with_column_schema
from q2c_pipeline.defs.owners import owner_of
from q2c_pipeline.defs.partitions import usage_daily_partitions
from q2c_pipeline.defs.resources import (
    CloseSettingsResource,
    SourceSnapshotResource,
    WarehouseResource,
    live_systems,
)
from q2c_pipeline.defs.usage import USAGE_SUMMARY_KEY
from q2c_pipeline.schemas.validation import VALIDATION_ORDER
from q2c_pipeline.stages import FINANCE_OUTPUTS, build_finance

FINANCE_TABLES = {
    "allocation": "One row per performance obligation: SSP, transaction price, allocated amount.",
    "revenue_schedule": "One row per obligation and period: revenue recognized (minor units).",
    "journal_lines": "One row per posted journal line (the append-only ledger): balanced, "
    "period-aware, with a journal_key; changes arrive as reversals and new entries.",
    "account_balances": "One row per entity, period, logical account and currency, from the "
    "posted ledger.",
    "contract_positions": "One row per revenue contract and period: closing deferred revenue, "
    "contract asset, unbilled receivable, refund liability and the net contract position "
    "(ASC 606-10-45-1), in the contract's currency, as of the close.",
}


class CloseConfig(dg.Config):
    """Run-time knobs of a close run."""

    as_of: str = Field(
        default="",
        description="Close date YYYY-MM-DD: revenue is recognized and journaled through this "
        "day. Empty = the close settings' as_of (Q2C_AS_OF), "
        "else the snapshot's manifest as_of, else today in UTC.")


def resolve_as_of_with_source(config_value: str, close_settings: CloseSettingsResource,
                              snapshot: SourceSnapshotResource | None) -> tuple[date, str]:
    """The close date and where it came from (run config, the close settings' Q2C_AS_OF,
    the snapshot's manifest, today in UTC)."""
    if config_value:
        return date.fromisoformat(config_value), "run config"
    if close_settings.as_of:
        return date.fromisoformat(close_settings.as_of), "Q2C_AS_OF"
    if snapshot is not None:
        value = str(snapshot.get_source().manifest().get("as_of", ""))
        if value:
            return date.fromisoformat(value), "snapshot manifest"
    return datetime.now(UTC).date(), "today (UTC)"


def policy_file(close_settings: CloseSettingsResource,
                snapshot: SourceSnapshotResource | None) -> str:
    """The close settings' policy file (Q2C_POLICY_PATH), else ``policy.yaml`` in the
    snapshot, else '' (the built-in defaults)."""
    path = close_settings.policy_path
    if not path and snapshot is not None:
        candidate = Path(snapshot.root) / "policy.yaml"
        path = str(candidate) if candidate.exists() else ""
    return path


def close_inputs(context: dg.AssetExecutionContext, config_as_of: str,
                 close_settings: CloseSettingsResource, snapshot: SourceSnapshotResource,
                 database_path: str) -> tuple[dict, Policy]:
    """What this close runs on, resolved once: as-of and its source, the policy file and the
    sha256 of the very bytes the policy is parsed from, the warehouse, the sources (snapshot
    folder or live) and the roles file; and the policy."""
    as_of, source = resolve_as_of_with_source(config_as_of, close_settings, snapshot)
    path = policy_file(close_settings, snapshot)
    content = Path(path).read_bytes() if path else b""
    policy = load_policy_text(content.decode("utf-8"), path) if path else Policy()
    live = sorted(live_systems())
    inputs = {"run_id": context.run_id, "as_of": as_of.isoformat(), "as_of_source": source,
              "policy_path": path or "(built-in defaults)",
              "policy_sha256": hashlib.sha256(content).hexdigest() if path else "",
              "warehouse_path": database_path,
              "sources": ("live: " + ", ".join(live) + "; " if live else "")
              + f"snapshot: {snapshot.root}",
              "roles_path": str(close_settings.roles_file(snapshot.root))}
    return inputs, policy


def record_close_run(conn, inputs: dict) -> None:
    """One row per close run in ``ledger.close_runs`` (append-only); the decisions table is
    made too, so the work queues can read it before anyone decided anything."""
    ensure_decisions(conn)
    columns = list(inputs)
    conn.execute("create table if not exists ledger.close_runs (recorded_at timestamp, "
                 + ", ".join(f"{c} varchar" for c in columns) + ")")
    conn.execute(f"insert into ledger.close_runs (recorded_at, {', '.join(columns)}) values "
                 f"(?, {', '.join('?' for _ in columns)})",
                 [datetime.now(UTC).replace(tzinfo=None), *inputs.values()])


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            key=["finance", name],
            group_name="finance",
            owners=owner_of(["finance", name]),
            kinds={"python", "duckdb"},
            description=doc,
            deps=[dg.AssetKey(["canonical", t]) for t in VALIDATION_ORDER],
        )
        for name, doc in FINANCE_TABLES.items()
    ],
    can_subset=False,
    pool="warehouse",
)
def revenue_and_ledger(
    context: dg.AssetExecutionContext,
    config: CloseConfig,
    warehouse: WarehouseResource,
    erp: SourceSnapshotResource,
    close_settings: CloseSettingsResource,
):
    """Allocate, schedule and journal every accepted obligation as of the close date."""
    inputs, policy = close_inputs(context, config.as_of, close_settings, erp,
                                  warehouse.database_path)
    as_of = date.fromisoformat(inputs["as_of"])
    with warehouse.get_connection() as conn:
        record_close_run(conn, inputs)
        runs = conn.execute("select count(*) from ledger.close_runs").fetchall()[0][0]
        run_columns = column_schemas(conn, ["ledger.close_runs"])
        result = build_finance(conn, policy, as_of)
        days = [str(d) for (d,) in conn.execute(
            "select distinct strftime(day, '%Y-%m-%d') from ledger.usage_summary order by 1"
        ).fetchall()]
        schemas = column_schemas(conn, [f"finance.{name}" for name in FINANCE_TABLES])
    context.log_event(dg.AssetMaterialization(
        asset_key=["ledger", "close_runs"], metadata=with_column_schema(
            {"rows": int(runs), **{f"close/{k}": v for k, v in inputs.items()}},
            run_columns, "ledger.close_runs")))
    # the close summarized every usage day it holds (the same lines the daily partitions
    # write): mark those partitions as written, so the UI does not show them missing
    known = set(usage_daily_partitions.get_partition_keys())
    for day in days:
        if day in known:
            context.log_event(dg.AssetMaterialization(
                asset_key=USAGE_SUMMARY_KEY, partition=day,
                metadata={"written_by": "month_end_close_job (revenue_and_ledger)"}))
    outputs = {name: getattr(result, name) for name in FINANCE_OUTPUTS}
    counts = ", ".join(f"{k}={len(v)}" for k, v in outputs.items())
    context.log.info(f"engine as of {as_of}: {counts}")
    journals = result.journal_lines
    delta = result.delta
    context.log.info(
        f"ledger: {delta.journals_posted} journals posted, {delta.journals_reversed} reversed"
        + (f" in batch {delta.posting_batch}" if delta.posting_batch else "")
        + (" (held back: the ledger is already posted past this as-of date)"
           if delta.held_back else "")
    )
    for name, frame in outputs.items():
        metadata: dict = {"rows": len(frame), **{f"close/{k}": v for k, v in inputs.items()}}
        if name == "journal_lines":
            metadata["journals_posted_this_run"] = delta.journals_posted
            metadata["journals_reversed_this_run"] = delta.journals_reversed
            metadata["posting_batch"] = delta.posting_batch or ""
            metadata["held_back"] = delta.held_back
        if name == "journal_lines" and len(journals):
            metadata["journals"] = int(journals["journal_id"].nunique())
            totals = journals.groupby("currency")["debit"].sum()
            metadata.update(major_units("debits", totals))
        if name == "revenue_schedule" and len(frame):
            totals = frame.groupby("currency")["amount"].sum()
            metadata.update(major_units("revenue", totals))
        yield dg.MaterializeResult(asset_key=["finance", name], metadata=with_column_schema(
            metadata, schemas, f"finance.{name}"))
