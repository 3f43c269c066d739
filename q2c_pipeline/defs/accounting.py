"""Ledger posting and period close: the ERP outbox and its import files, and the close job.

- ``ledger/erp_outbox`` (group ``erp_posting``): every journal of the posted ledger is queued
  once in ``ledger.erp_outbox`` and pending ones are posted through the ``erp_posting``
  resource. For the sample company that resource is a file drop: NetSuite's CSV journal import
  and a generic JSON file under ``Q2C_ERP_OUTPUT_DIR`` (default ``output/erp`` beside the
  warehouse file, i.e. ``data/output/erp/``), each posted journal receiving the deterministic
  document id ``<drop>:<journal_id>``. A NetSuite or Sage Intacct REST client implements the
  same ``ErpPostingClient`` Protocol (``q2c_pipeline/accounting/erp_posting.py``).
- ``close_period_job``: re-runs the ledger controls for one entity and period and refuses
  (fails, naming each failing control with its count) unless all hold; then writes q2c's lock to
  ``ledger.period_locks``. From then on nothing posts into that period: late activity and
  reversals go to the first open period after it.
- ``monthly_close_period_schedule``: business day 3 of each month at 18:00 UTC closes the
  previous month for every legal entity.
"""


from datetime import date, timedelta
from pathlib import Path
from typing import Literal

import dagster as dg
import duckdb
import pandas as pd
from pydantic import Field

from q2c_pipeline.accounting.ledger import (
    JOURNAL_TABLE,
    LOCK_TYPES,
    LOCKS_TABLE,
    ensure_ledger,
    lock_period,
    read_period_locks,
)
from q2c_pipeline.accounting.outbox import OUTBOX_TABLE, ensure_outbox, post_ledger
from q2c_pipeline.close.decisions import (
    CLOSE_RUN_COLUMNS,
    DecisionRefused,
    load_roles,
    record_decision,
)
from q2c_pipeline.close.decisions import COLUMNS as DECISION_COLUMNS
from q2c_pipeline.close.exceptions import (
    decide,
    exceptions_with_state,
    field_value,
    find_exception,
    find_open_exceptions,
    find_unreviewed_amendments,
    in_lock_scope,
)
from q2c_pipeline.close.pack import write_close_pack, write_close_packs
from q2c_pipeline.defs.checks import (
    SAMPLE_ROWS,
    find_lines_in_closed_periods,
    find_unbalanced_journals,
    find_unconserved_tables,
)
from q2c_pipeline.defs.columns import COLUMN_SCHEMA, column_schemas, with_column_schema
from q2c_pipeline.defs.owners import owner_of
from q2c_pipeline.defs.resources import (
    CloseSettingsResource,
    ErpPostingResource,
    SourceSnapshotResource,
    WarehouseResource,
)
from q2c_pipeline.warehouse import table_exists

# the tie-outs the ERP outbox waits for (each with its dbt test)
RECONCILIATION_MARTS = ("fct_invoice_ar_reconciliation", "fct_invoice_source_tieout",
                        "fct_deferred_revenue_rollforward",
                        "fct_contract_position_reconciliation", "fct_usage_source_tieout",
                        "fct_contract_source_tieout")
CLOSE_BUSINESS_DAY = 3  # the close calendar: books of month M lock on business day 3 of M+1
# Business day 3 always falls on calendar day 3, 4 or 5: the schedule ticks at 18:00 UTC on
# those days and acts on the one that is business day 3 (cron cannot say "business day").
CLOSE_CRON = "0 18 3-5 * *"


@dg.asset(
    key=["ledger", "erp_outbox"],
    group_name="erp_posting",
    owners=owner_of(["ledger", "erp_outbox"]),
    kinds={"python", "duckdb", "netsuite"},
    # posts only after the journals' reconciliation: the marts and their dbt tests (a failing
    # test fails the dbt step, and the outbox does not run)
    deps=[dg.AssetKey(["finance", "journal_lines"]),
          dg.AssetKey(["canonical", "chart_of_accounts"]),
          *[dg.AssetKey(["marts", name]) for name in RECONCILIATION_MARTS]],
    pool="warehouse",
)
def erp_outbox(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, erp_posting: ErpPostingResource
) -> dg.MaterializeResult:
    """One row per posted journal (ledger.journal_lines) with its ERP status: pending, posted
    (with the ERP document id) or failed (with the ERP's reason). New journals are written to
    the import files and posted; a journal already in the outbox is never sent again."""
    with warehouse.get_connection() as conn:
        result = post_ledger(conn, erp_posting.get_client())
        schemas = column_schemas(conn, [OUTBOX_TABLE])
    context.log.info(f"outbox: {result.enqueued} queued, {result.run.posted} posted, "
                     f"{result.run.failed} failed, {result.run.still_pending} pending; "
                     f"files {[str(f) for f in result.files]}")
    return dg.MaterializeResult(metadata=with_column_schema({
        "enqueued": result.enqueued, "posted": result.run.posted, "failed": result.run.failed,
        "still_pending": result.run.still_pending,
        "statuses": result.statuses,
        "files": [str(f) for f in result.files],
    }, schemas, OUTBOX_TABLE))


# --- period close ------------------------------------------------------------------------------


def find_untied_rollforward(conn: duckdb.DuckDBPyConnection, legal_entity: str,
                            period: str) -> tuple[list[tuple], list[str]]:
    """Deferred-revenue roll-forward rows of the entity up to the period that do not tie."""
    columns = ["legal_entity", "currency_code", "period", "difference_minor"]
    exists = conn.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'marts' and table_name = 'fct_deferred_revenue_rollforward'"
    ).fetchone()[0]
    if not exists:
        return [(legal_entity, None, period, None)], columns
    rows = conn.execute(
        """select legal_entity, currency_code, period, difference_minor
           from marts.fct_deferred_revenue_rollforward
           where legal_entity = ? and period <= ? and not is_tied
           order by currency_code, period""", [legal_entity, period]).fetchall()
    return rows, columns


def find_unposted_journals(conn: duckdb.DuckDBPyConnection, legal_entity: str,
                           period: str) -> tuple[list[tuple], list[str]]:
    """Ledger journals of the entity up to the period that the ERP does not hold yet."""
    ensure_outbox(conn)
    rows = conn.execute(
        f"""select distinct j.journal_id, j.period, coalesce(o.status, 'not_enqueued'), o.reason
            from {JOURNAL_TABLE} j
            left join {OUTBOX_TABLE} o on o.journal_key = j.journal_key
            where j.legal_entity = ? and j.period <= ? and coalesce(o.status, '') <> 'posted'
            order by j.period, j.journal_id""", [legal_entity, period]).fetchall()
    return rows, ["journal_id", "period", "status", "reason"]


def evaluate_close_controls(conn: duckdb.DuckDBPyConnection, legal_entity: str,
                            period: str) -> dict[str, tuple[list[tuple], list[str]]]:
    """Each close control's failing rows (empty = holds), by control name."""
    ensure_ledger(conn)
    return {
        "journal_lines_balance": find_unbalanced_journals(conn),
        "journal_lines_avoid_closed_periods": find_lines_in_closed_periods(conn),
        "canonical_rows_conserved": find_unconserved_tables(conn),
        "deferred_revenue_rollforward_ties": find_untied_rollforward(conn, legal_entity, period),
        "erp_holds_every_journal": find_unposted_journals(conn, legal_entity, period),
        "earlier_periods_closed": find_open_earlier_periods(conn, legal_entity, period),
        "no_open_exceptions": find_open_exceptions(conn, legal_entity, period),
        "amendments_reviewed": find_unreviewed_amendments(conn, legal_entity, period),
    }


def find_open_earlier_periods(
    conn: duckdb.DuckDBPyConnection, legal_entity: str, period: str
) -> tuple[list[tuple], list[str]]:
    """Periods before ``period`` that carry posted lines but are neither closed in the ERP nor
    locked by q2c: the books close in order, one month after the other."""
    sql = f"""
        select distinct j.period
        from {JOURNAL_TABLE} j
        left join canonical.accounting_periods p
          on p.legal_entity = j.legal_entity and p.period = j.period and p.status = 'closed'
        left join ledger.period_locks l
          on l.legal_entity = j.legal_entity and l.period = j.period
        where j.legal_entity = ? and j.period < ? and p.period is null and l.period is null
        order by j.period
    """
    return conn.execute(sql, [legal_entity, period]).fetchall(), ["period"]


SCHEDULE_ACTOR = "q2c-close-schedule"  # who the monthly schedule acts as (in roles.yaml)


class ClosePeriodConfig(dg.Config):
    """Which books to lock, who is acting and why."""

    legal_entity: str = Field(description="Legal entity to lock, e.g. US01.")
    period: str = Field(description="Accounting period to lock, YYYY-MM.")
    actor: str = Field(
        default="",
        description="Who locks: a person in roles.yaml acting for controllership, e.g. "
        "dana.controller@q2c.example (the monthly schedule acts as q2c-close-schedule). "
        "Required: q2c records who, it does not sign anyone in.")
    reason: str = Field(default="month-end close",
                        description="Why, for the decisions table (e.g. 'March close').")


class ReopenPeriodConfig(dg.Config):
    """Which locked books to reopen, who is reopening them and why."""

    legal_entity: str = Field(description="Legal entity, e.g. US01.")
    period: str = Field(description="The locked period to reopen, YYYY-MM.")
    actor: str = Field(description="A person in roles.yaml acting for controllership.")
    reason: str = Field(description="Why the period is reopened (required, kept for audit).")


def _mark_close_records(context: dg.OpExecutionContext, conn: duckdb.DuckDBPyConnection,
                        *, locks: bool) -> None:
    """The decisions (and the locks) this op wrote, as materializations of their assets, so
    the UI shows when they last changed and how many rows they hold."""
    tables = [("decisions", "ledger.decisions")] + ([("period_locks", "ledger.period_locks")]
                                                    if locks else [])
    for name, table in tables:
        if table_exists(conn, table):
            rows = conn.execute(f"select count(*) from {table}").fetchall()[0][0]
            context.log_event(dg.AssetMaterialization(
                asset_key=["ledger", name], metadata=with_column_schema(
                    {"rows": int(rows), "written_by": context.job_name},
                    column_schemas(conn, [table]), table)))


def _refusal(description: str) -> dg.Failure:
    return dg.Failure(description=description, allow_retries=False)


@dg.op(tags={"kind": "duckdb"}, pool="warehouse")
def close_period(
    context: dg.OpExecutionContext, config: ClosePeriodConfig, warehouse: WarehouseResource,
    erp: SourceSnapshotResource, close_settings: CloseSettingsResource,
) -> dg.Output:
    """Lock one entity's period after every close control holds (open exceptions included);
    refuse otherwise, naming each blocker. Locks and refusals are decisions (ledger.decisions)."""
    entity, period = config.legal_entity, config.period
    if not config.actor.strip():
        raise _refusal(f"refusing to close {entity} {period}: say who locks (actor: a person "
                       "in roles.yaml acting for controllership)")
    try:
        roles = load_roles(close_settings.roles_file(erp.root))
        role = roles.role_for(config.actor, "lock", None)
    except DecisionRefused as error:
        raise _refusal(f"refusing to close {entity} {period}: {error}") from None
    with warehouse.get_connection() as conn:
        locks = read_period_locks(conn)
        already = locks[(locks["legal_entity"] == entity) & (locks["period"] == period)]
        if len(already):
            context.log.info(f"{entity} {period} is already locked")
            return dg.Output(None, metadata={"locked": False, "already_locked": True})
        known = conn.execute(
            "select count(*) from canonical.legal_entities where legal_entity = ?", [entity]
        ).fetchone()[0]
        if not known:
            raise _refusal(f"unknown legal entity {entity!r}")
        problem = period_problem(conn, period)
        if problem:
            raise _refusal(f"refusing to close {entity} {period}: {problem}")
        controls = evaluate_close_controls(conn, entity, period)
        failing = {name: rows for name, (rows, _) in controls.items() if rows}
        if failing:
            samples = {name: [dict(zip(controls[name][1], [str(v) for v in row], strict=True))
                              for row in rows[:SAMPLE_ROWS]] for name, rows in failing.items()}
            record_decision(conn, actor=config.actor, role=role, action="lock_refused",
                            reason=config.reason, legal_entity=entity, period=period,
                            detail={"failing_controls": {n: len(r) for n, r in failing.items()},
                                    "blockers": samples})
            pack = write_close_pack(conn, entity, period,
                                    close_pack_dir(warehouse.database_path))
            _mark_close_records(context, conn, locks=False)
            raise dg.Failure(
                description=f"refusing to close {entity} {period}:\n" + "\n".join(
                    f"- {describe_blockers(name, rows)}" for name, rows in failing.items()),
                metadata={"failing_controls": {n: len(r) for n, r in failing.items()},
                          "sample": dg.MetadataValue.json(samples),
                          "close_pack": dg.MetadataValue.path(str(pack))},
                allow_retries=False)
        waived = waived_exceptions_in_scope(conn, entity, period)
        record = context.instance.get_run_record_by_id(context.run_id)
        created = record.create_timestamp if record is not None else None
        closed_at = (pd.Timestamp(created).tz_convert("UTC").tz_localize(None)
                     if created is not None else pd.Timestamp(f"{period}-01"))
        lock_period(conn, entity, period, closed_at=closed_at.to_pydatetime(),
                    closed_by_run=context.run_id)
        lines = conn.execute(
            f"select count(*) from {JOURNAL_TABLE} where legal_entity = ? and period = ?",
            [entity, period]).fetchone()[0]
        record_decision(conn, actor=config.actor, role=role, action="lock", reason=config.reason,
                        legal_entity=entity, period=period,
                        detail={"controls": sorted(controls), "lines_in_period": int(lines),
                                "run_id": context.run_id, "waived_open": waived})
        pack = write_close_pack(conn, entity, period, close_pack_dir(warehouse.database_path))
        _mark_close_records(context, conn, locks=True)
    context.log.info(f"locked {entity} {period} ({lines} posted lines, {len(waived)} waived "
                     "exceptions open)")
    return dg.Output(None, metadata={"locked": True, "legal_entity": entity, "period": period,
                                     "lines_in_period": int(lines),
                                     "waived_exceptions_open": len(waived),
                                     "close_pack": dg.MetadataValue.path(str(pack))})


def period_problem(conn: duckdb.DuckDBPyConnection, period: str) -> str | None:
    """Why ``period`` cannot be locked before any control runs: not a month, or not over at
    the as-of date of the last close (its books cannot be complete)."""
    try:
        start = date.fromisoformat(f"{period}-01") if len(period) == 7 else None
    except ValueError:
        start = None
    if start is None:
        return "the period must be a month YYYY-MM (01-12)"
    as_of = conn.execute("select max(as_of) from ledger.close_runs").fetchall()[0][0] \
        if table_exists(conn, "ledger.close_runs") else None
    month_end = (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    if as_of is None or month_end > date.fromisoformat(str(as_of)[:10]):
        return (f"the month is not over at the last close's as-of date ({as_of or 'no close'}"
                "); run the close through its last day first")
    return None


def describe_blockers(control: str, rows: list[tuple]) -> str:
    """One control's failure in words: the exceptions by name, the others by count."""
    if control == "amendments_reviewed":
        shown = ", ".join(f"{label}: {detail} (id {item})" for item, label, detail, _ in rows)
        return (f"amendments_reviewed ({len(rows)} awaiting review: {shown}; keep the treatment: "
                "q2c exceptions resolve ID, or choose another: q2c exceptions override ID --set "
                "modification_treatment=...)")
    if control == "earlier_periods_closed":
        return (f"earlier_periods_closed (lock {', '.join(r[0] for r in rows)} first: the books "
                "close in order)")
    if control != "no_open_exceptions":
        return f"{control} ({len(rows)} failing)"
    shown = ", ".join(f"{label} ({rule}, {owner}, {state}"
                      + (f", holding {held} more" if held else "") + f"; id {eid})"
                      for eid, label, rule, owner, _period, state, held in rows[:SAMPLE_ROWS])
    more = f" and {len(rows) - SAMPLE_ROWS} more" if len(rows) > SAMPLE_ROWS else ""
    return (f"no_open_exceptions ({len(rows)} open: {shown}{more}; fix at the source and run "
            "the close again, or waive: q2c exceptions waive ID --reason ...)")


def waived_exceptions_in_scope(conn: duckdb.DuckDBPyConnection, entity: str,
                               period: str) -> list[dict]:
    """Exceptions in the lock's scope still in the quarantine but waived (the lock says so)."""
    frame = exceptions_with_state(conn)
    waived = frame[in_lock_scope(frame, entity, period) & (frame["state"] == "waived")
                   & frame["is_root"]]
    return [{"exception_id": r.exception_id[:12], "record": r.record_label, "rule": r.rule,
             "decision": r.decision} for r in waived.itertuples(index=False)]


@dg.op(tags={"kind": "duckdb"}, pool="warehouse")
def reopen_period(
    context: dg.OpExecutionContext, config: ReopenPeriodConfig, warehouse: WarehouseResource,
    erp: SourceSnapshotResource, close_settings: CloseSettingsResource,
) -> dg.Output:
    """Reopen a period q2c locked (controllership, with a reason). Later periods must be
    reopened first; the controls run again at the next lock."""
    entity, period = config.legal_entity, config.period
    try:
        roles = load_roles(close_settings.roles_file(erp.root))
        role = roles.role_for(config.actor, "reopen", None)
        with warehouse.get_connection() as conn:
            lock = reopen_locked_period(conn, entity, period, actor=config.actor, role=role,
                                        reason=config.reason)
            _mark_close_records(context, conn, locks=True)
    except DecisionRefused as error:
        raise _refusal(f"refusing to reopen {entity} {period}: {error}") from None
    context.log.info(f"reopened {entity} {period} (locked at {lock['closed_at']})")
    return dg.Output(None, metadata={"reopened": True, "legal_entity": entity,
                                     "period": period})


def reopen_locked_period(conn: duckdb.DuckDBPyConnection, entity: str, period: str, *,
                         actor: str, role: str, reason: str) -> dict:
    """Remove q2c's lock of (entity, period) and record why; refuses an unlocked period and
    one with later locked periods."""
    if not reason or not reason.strip():
        raise DecisionRefused("reopening needs a reason")
    locks = read_period_locks(conn)
    mine = locks[locks["legal_entity"] == entity]
    lock = mine[mine["period"] == period]
    if lock.empty:
        raise DecisionRefused(f"{entity} {period} is not locked by q2c (an ERP-closed period "
                              "is reopened in the ERP)")
    later = sorted(mine.loc[mine["period"] > period, "period"])
    if later:
        raise DecisionRefused(f"later periods are locked ({', '.join(later)}); reopen them "
                              "first, latest first")
    row = {k: str(v) for k, v in lock.iloc[0].to_dict().items()}
    conn.execute(f"delete from {LOCKS_TABLE} where legal_entity = ? and period = ?",
                 [entity, period])
    record_decision(conn, actor=actor, role=role, action="reopen", reason=reason,
                    legal_entity=entity, period=period, detail={"lock": row})
    return row


class ExceptionDecisionConfig(dg.Config):
    """One decision on one or more exceptions, as `q2c exceptions waive|resolve|override`."""

    action: Literal["waive", "resolve", "override"] = Field(
        description="waive: accept it open for the period lock (controllership); resolve: "
        "close it without posting (controllership); override: correct the record at the next "
        "run with the fields below (the owning team; a revenue-treatment field needs "
        "controllership).")
    exception_ids: list[str] = Field(
        description="Exception ids (first 6+ characters each), from marts.fct_exceptions or "
        "the amendments_awaiting_review queue of marts.fct_work_queue.")
    actor: str = Field(description="Who decides: a person in roles.yaml.")
    reason: str = Field(description="Why, kept in ledger.decisions (required).")
    set_fields: dict[str, str] = Field(
        default_factory=dict,
        description="override only: FIELD -> corrected value, fields of the source record "
        "(e.g. SBQQ__ProductCode__c) or canonical columns (e.g. product_code, "
        "modification_treatment); a value is read as JSON when it is JSON.")


@dg.op(tags={"kind": "duckdb"}, pool="warehouse")
def decide_on_exceptions(
    context: dg.OpExecutionContext, config: ExceptionDecisionConfig,
    warehouse: WarehouseResource, erp: SourceSnapshotResource,
    close_settings: CloseSettingsResource,
) -> dg.Output:
    """Record the decision for every exception named (all or none), after the role check."""
    try:
        fields = {k: field_value(v) for k, v in config.set_fields.items()}
        roles = load_roles(close_settings.roles_file(erp.root))
        with warehouse.get_connection() as conn:
            found = [find_exception(conn, prefix) for prefix in config.exception_ids]
            rows = [decide(conn, roles, action=config.action, prefix=e["exception_id"],
                           actor=config.actor, reason=config.reason, fields=fields)
                    for e in found]
            _mark_close_records(context, conn, locks=False)
    except DecisionRefused as error:
        raise _refusal(f"no decision recorded: {error}") from None
    for exception, row in zip(found, rows, strict=True):
        context.log.info(f"{config.action} {exception['record_label']}: decision "
                         f"{row['decision_seq']} by {row['actor']} as {row['role']}")
    return dg.Output(None, metadata={"decisions": [int(r["decision_seq"]) for r in rows],
                                     "records": [e["record_label"] for e in found]})


@dg.job(
    description="Waive, resolve or override exceptions from the UI (as `q2c exceptions`): the "
    "role is checked against roles.yaml and each decision is appended to ledger.decisions; an "
    "override is applied at the next close run.",
    executor_def=dg.in_process_executor,
)
def exception_decision_job():
    decide_on_exceptions()


@dg.job(
    description="Lock one legal entity's accounting period in q2c's ledger once every close "
    "control holds (journals balance, nothing in a closed period, roll-forward ties, rows "
    "conserved, the ERP holds every journal, earlier periods locked, no open exception of the "
    "entity up to the period unless controllership waived it); refused otherwise, naming each "
    "blocker. Locks and refusals are recorded in ledger.decisions.",
    executor_def=dg.in_process_executor,
    tags={"team": "controllership"},
)
def close_period_job():
    close_period()


@dg.job(
    description="Reopen a period q2c locked (controllership, with a reason; later periods "
    "first). Recorded in ledger.decisions; the controls run again at the next lock.",
    executor_def=dg.in_process_executor,
    tags={"team": "controllership"},
)
def reopen_period_job():
    reopen_period()


def business_day_of_month(day: date) -> int:
    """1-based index of ``day`` among the month's weekdays (0 on a weekend)."""
    if day.weekday() >= 5:
        return 0
    first = day.replace(day=1)
    return sum(1 for n in range(day.day) if (first + timedelta(days=n)).weekday() < 5)


def previous_period(day: date) -> str:
    return (day.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")


@dg.schedule(
    name="monthly_close_period_schedule",
    job=close_period_job,
    cron_schedule=CLOSE_CRON,
    execution_timezone="UTC",
    description="Days 3-5 of each month at 18:00 UTC; on the one that is business day 3, one "
    "close_period_job run per legal entity locks the previous month (refused, naming the "
    "blockers, while a control fails or an exception is open).",
)
def monthly_close_period_schedule(context: dg.ScheduleEvaluationContext,
                                  warehouse: WarehouseResource):
    """On business day 3, one close run per legal entity for the previous month."""
    day = context.scheduled_execution_time.date()
    if business_day_of_month(day) != CLOSE_BUSINESS_DAY:
        return dg.SkipReason(f"{day} is not business day {CLOSE_BUSINESS_DAY}")
    period = previous_period(day)
    with warehouse.get_connection() as conn:
        entities = [r[0] for r in conn.execute(
            "select legal_entity from canonical.legal_entities order by legal_entity").fetchall()]
    return [
        dg.RunRequest(
            run_key=f"close_period:{entity}:{period}",
            run_config={"ops": {"close_period": {"config": {
                "legal_entity": entity, "period": period, "actor": SCHEDULE_ACTOR,
                "reason": f"{period} close on business day {CLOSE_BUSINESS_DAY}"}}}},
            tags={"legal_entity": entity, "period": period},
        )
        for entity in entities
    ]


def close_pack_dir(database_path: str) -> Path:
    """``output/close`` beside the warehouse (``data/output/close/`` for the sample)."""
    return Path(database_path).parent / "output" / "close"


@dg.asset(
    key=["close", "close_packs"],
    group_name="close",
    owners=owner_of(["close", "close_packs"]),
    kinds={"python", "html"},
    deps=[dg.AssetKey(["marts", "fct_work_queue"]), dg.AssetKey(["marts", "fct_close_summary"]),
          dg.AssetKey(["ledger", "decisions"]), dg.AssetKey(["ledger", "close_runs"]),
          dg.AssetKey(["ledger", "erp_outbox"])],
    pool="warehouse",
    description="The close pack of each legal entity for the month in progress: one HTML page "
    "(data/output/close/close_pack_<entity>_<period>.html) with the close's inputs, the "
    "summary, the deferred-revenue waterfall, roll-forward bars, billings vs revenue, the "
    "exceptions by owner and age, the reconciliation status and the locks, waivers and "
    "decisions. A lock or a refused lock writes that month's pack again.",
)
def close_packs(context: dg.AssetExecutionContext,
                warehouse: WarehouseResource) -> dg.MaterializeResult:
    with warehouse.get_connection() as conn:
        paths = write_close_packs(conn, close_pack_dir(warehouse.database_path))
    context.log.info(f"close packs: {', '.join(p.name for p in paths)}")
    return dg.MaterializeResult(metadata={
        "packs": len(paths), **{p.stem.removeprefix("close_pack_"): dg.MetadataValue.path(
            str(p)) for p in paths}})


# q2c's records of the close, written by the close jobs and the `q2c exceptions` command (not
# materialized by a run): the dbt work queues and the close pack read them.
def _close_record(name: str, description: str, columns: dict[str, str]) -> dg.AssetSpec:
    """A ``ledger`` table the close jobs write (controllership's), with its columns."""
    return dg.AssetSpec(
        key=["ledger", name], group_name="close", owners=owner_of(["ledger", name]),
        kinds={"duckdb"}, description=description,
        metadata={COLUMN_SCHEMA: dg.TableSchema(columns=[
            dg.TableColumn(column, kind.split()[0].lower()) for column, kind in columns.items()])})


CLOSE_RECORDS = [
    _close_record(
        "decisions", "Append-only: every period lock (with what was open and waived), refused "
        "lock (with its blockers), reopening, waiver, resolution and override: who, when (UTC), "
        "as which team, why. Written by close_period_job, reopen_period_job, "
        "exception_decision_job and `q2c exceptions`.", DECISION_COLUMNS),
    _close_record(
        "period_locks", "q2c's own close: one row per locked legal entity and period "
        "(closed_at, the run that locked it, lock_seq = the last posting before the lock); a "
        "reopening removes the row (the decision stays in ledger.decisions). Journals never "
        "post into a locked period: corrections go to the first open one.", LOCK_TYPES),
    _close_record(
        "close_runs", "Append-only: the inputs of every close run: as-of date and where it came "
        "from, the policy file and the sha256 of its content, the warehouse, the sources "
        "(snapshot folder or live) and the roles file.",
        {"recorded_at": "timestamp", **dict.fromkeys(CLOSE_RUN_COLUMNS, "varchar")}),
]


@dg.definitions
def accounting() -> dg.Definitions:
    """This module's contribution: the outbox asset, the close jobs and the schedule (the
    ``erp_posting`` resource is bound in ``defs/resources.py``)."""
    return dg.Definitions(
        assets=[erp_outbox, close_packs, *CLOSE_RECORDS],
        jobs=[close_period_job, reopen_period_job, exception_decision_job],
        schedules=[monthly_close_period_schedule],
    )
