"""Asset checks: the accounting and data-conservation properties that must hold before close.

Each check reads the warehouse independently of the code that wrote it, states one property,
and on failure carries the offending rows so a human can act on them.
"""


import dagster as dg
import duckdb

from q2c_pipeline.accounting.ledger import JOURNAL_TABLE, LOCKS_TABLE, ensure_ledger
from q2c_pipeline.core.money import major_units
from q2c_pipeline.defs.resources import WarehouseResource
from q2c_pipeline.schemas.validation import VALIDATION_ORDER
from q2c_pipeline.warehouse import identifier

SAMPLE_ROWS = 10


def _result(
    passed: bool, failures: list[tuple], columns: list[str], **metadata
) -> dg.AssetCheckResult:
    sample = [dict(zip(columns, row, strict=True)) for row in failures[:SAMPLE_ROWS]]
    return dg.AssetCheckResult(
        passed=passed,
        metadata={
            "failing_rows": len(failures), "sample": dg.MetadataValue.json(sample), **metadata,
        },
    )


# Control queries shared by the asset checks and the period close job (defs/accounting.py). Each
# returns (failing rows, column names); no failing rows = the property holds.

UNBALANCED_JOURNALS_SQL = """
    select journal_id, legal_entity, currency,
           sum(debit) - sum(credit) as difference,
           sum(debit_functional) - sum(credit_functional) as difference_functional
    from finance.journal_lines
    group by journal_id, legal_entity, currency
    having sum(debit) <> sum(credit) or sum(debit_functional) <> sum(credit_functional)
    order by journal_id, currency
"""

# A line breaks a close when it was posted after its period closed: after q2c's lock (a later
# posting_seq than the lock's), or by a run as of the ERP's closing date or later. An ERP-closed
# period without a closing date and without a q2c lock admits no line at all.
LINES_IN_CLOSED_PERIODS_SQL = f"""
    select j.journal_id, j.line_number, j.legal_entity, j.period, j.posting_seq,
           case when l.lock_seq is not null and j.posting_seq > l.lock_seq then 'q2c_lock'
                else 'erp_closed' end as closed_by
    from finance.journal_lines j
    left join {LOCKS_TABLE} l on l.legal_entity = j.legal_entity and l.period = j.period
    left join (select legal_entity, period, max(closed_at) as closed_at
               from canonical.accounting_periods where status = 'closed'
               group by legal_entity, period) e
      on e.legal_entity = j.legal_entity and e.period = j.period
    where (l.lock_seq is not null and j.posting_seq > l.lock_seq)
       or (e.legal_entity is not null and (
             (e.closed_at is null and l.lock_seq is null)
             or j.posting_as_of >= cast(e.closed_at as date)))
    order by j.journal_id, j.line_number
"""


def find_unbalanced_journals(conn: duckdb.DuckDBPyConnection) -> tuple[list[tuple], list[str]]:
    columns = ["journal_id", "legal_entity", "currency", "difference", "difference_functional"]
    return conn.execute(UNBALANCED_JOURNALS_SQL).fetchall(), columns


def find_lines_in_closed_periods(conn: duckdb.DuckDBPyConnection) -> tuple[list[tuple], list[str]]:
    ensure_ledger(conn)
    columns = ["journal_id", "line_number", "legal_entity", "period", "posting_seq", "closed_by"]
    return conn.execute(LINES_IN_CLOSED_PERIODS_SQL).fetchall(), columns


def find_unconserved_tables(conn: duckdb.DuckDBPyConnection) -> tuple[list[tuple], list[str]]:
    """Per source table: rows in <> canonical rows + quarantined rows, or (where one source
    object maps one-to-one) records landed, less those set aside, <> rows in."""
    audit = {
        row[0]: row[1:]
        for row in conn.execute(
            "select source_table, rows_in, accepted, quarantined from canonical.load_audit"
        ).fetchall()
    }
    columns = {c for (c,) in conn.execute(
        "select column_name from information_schema.columns where table_schema = 'canonical' "
        "and table_name = 'load_audit'").fetchall()}
    landed = dict(conn.execute(
        "select source_table, received - pending from canonical.load_audit "
        "where received is not null").fetchall()) if {"received", "pending"} <= columns else {}
    quarantined = dict(
        conn.execute(
            "select source_table, count(*) from canonical.quarantine group by source_table"
        ).fetchall()
    )
    # a held change whose record's last accepted version stays booked is in both
    kept = dict(conn.execute(
        "select source_table, kept_last_accepted from canonical.load_audit").fetchall()) \
        if "kept_last_accepted" in columns else {}
    failures: list[tuple] = []
    for table in VALIDATION_ORDER:
        rows_in, _, _ = audit.get(table, (0, 0, 0))
        canonical = conn.execute(
            f"select count(*) from canonical.{identifier(table)}").fetchall()[0][0] - int(
            kept.get(table, 0))
        held = int(quarantined.get(table, 0))
        expected = landed.get(table, rows_in)  # what was landed, less what is set aside
        if rows_in != canonical + held or expected != rows_in:
            failures.append((table, int(expected), int(rows_in), int(canonical), held))
    return failures, ["source_table", "landed_less_set_aside", "rows_in", "canonical",
                      "quarantined"]


@dg.asset_check(asset=dg.AssetKey(["finance", "journal_lines"]), blocking=True)
def journal_lines_balance(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Every journal balances per entity and currency, in transaction and functional currency."""
    with warehouse.get_connection() as conn:
        failures, columns = find_unbalanced_journals(conn)
        journals = conn.execute(
            "select count(distinct journal_id) from finance.journal_lines").fetchone()[0]
    return _result(not failures, failures, columns, journals=int(journals))


@dg.asset_check(asset=dg.AssetKey(["finance", "journal_lines"]), blocking=True)
def journal_lines_avoid_closed_periods(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """No journal line was posted to a period after the entity closed it (in the ERP or by
    q2c's close job); lines posted while it was open stay where they are."""
    with warehouse.get_connection() as conn:
        failures, columns = find_lines_in_closed_periods(conn)
    return _result(not failures, failures, columns)


@dg.asset_check(asset=dg.AssetKey(["finance", "journal_lines"]), blocking=True)
def journal_lines_match_posted_ledger(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """finance.journal_lines is exactly the append-only ledger: every posted line, once, and
    every journal key posted once (a reversal or re-posting carries a key of its own)."""
    sql = f"""
        select 'only_in_ledger' as side, journal_key, line_number from (
            select journal_key, line_number from {JOURNAL_TABLE}
            except all select journal_key, line_number from finance.journal_lines)
        union all
        select 'only_in_finance', journal_key, line_number from (
            select journal_key, line_number from finance.journal_lines
            except all select journal_key, line_number from {JOURNAL_TABLE})
        order by 1, 2, 3
    """
    with warehouse.get_connection() as conn:
        ensure_ledger(conn)
        failures = conn.execute(sql).fetchall()
        lines = conn.execute(f"select count(*) from {JOURNAL_TABLE}").fetchone()[0]
    return _result(not failures, failures, ["side", "journal_key", "line_number"],
                   ledger_lines=int(lines))


@dg.asset_check(asset=dg.AssetKey(["finance", "revenue_schedule"]))
def revenue_schedule_sums_to_allocation(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Each contract obligation's schedule sums exactly to its allocated amount, less what
    credit notes, refunds, voids and write-offs took off its not-yet-recognized part."""
    sql = """
        with scheduled as (
            select source_id, currency, sum(amount) as scheduled
            from finance.revenue_schedule
            where source_type = 'contract_line'
            group by source_id, currency
        )
        select a.contract_line_id, a.currency, a.allocated_amount, a.deferred_reductions,
               coalesce(s.scheduled, 0) as scheduled
        from finance.allocation a
        left join scheduled s on s.source_id = a.contract_line_id
        where a.allocated_amount - a.deferred_reductions <> coalesce(s.scheduled, 0)
        order by a.contract_line_id
    """
    with warehouse.get_connection() as conn:
        failures = conn.execute(sql).fetchall()
        obligations = conn.execute("select count(*) from finance.allocation").fetchone()[0]
    columns = [
        "contract_line_id", "currency", "allocated_amount", "deferred_reductions", "scheduled",
    ]
    return _result(not failures, failures, columns, obligations=int(obligations))


@dg.asset_check(asset=dg.AssetKey(["canonical", "load_audit"]), blocking=True)
def canonical_rows_conserved(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Per source table: rows in = canonical rows + quarantined rows, counted in the warehouse."""
    with warehouse.get_connection() as conn:
        failures, columns = find_unconserved_tables(conn)
        total_in = conn.execute(
            "select coalesce(sum(rows_in), 0) from canonical.load_audit").fetchone()[0]
    return _result(not failures, failures, columns, rows_in=int(total_in))


@dg.asset_check(
    asset=dg.AssetKey(["marts", "fct_usage_source_tieout"]),
    description=("Every usage invoice line ties three ways: the quantity Stripe's billing meter "
                 "counted, the quantity and amount Stripe invoiced, and q2c's rating of the raw "
                 "usage events. Fails on any line that differs, naming it."),
)
def usage_ties_to_stripe(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """The usage tie-out in words for the UI: lines tied, units and amounts invoiced."""
    with warehouse.get_connection() as conn:
        rows = conn.execute("""
            select invoice_line_id, stripe_customer_id, currency_code, period_start_at,
                   meter_quantity, source_quantity, q2c_quantity, source_amount_minor,
                   q2c_amount_minor, tieout_status
            from marts.fct_usage_source_tieout order by invoice_line_id""").fetchall()
    columns = ["invoice_line_id", "stripe_customer_id", "currency", "period_start",
               "meter_quantity", "invoiced_quantity", "q2c_quantity", "invoiced_amount_minor",
               "q2c_amount_minor", "status"]
    failing = [tuple(str(v) for v in r) for r in rows if r[-1] != "tied"]
    by_currency: dict[str, int] = {}
    for r in rows:
        by_currency[r[2]] = by_currency.get(r[2], 0) + int(r[7] or 0)
    return _result(
        not failing, failing, columns,
        usage_lines=len(rows), tied=len(rows) - len(failing),
        units_invoiced=int(sum(int(r[5] or 0) for r in rows)),
        **major_units("invoiced", by_currency),
    )


@dg.asset_check(
    asset=dg.AssetKey(["canonical", "quarantine"]),
    description=("Warns while any record is held in the quarantine, naming each record that "
                 "holds others (customer, rule, owner) and counting the records held with it. "
                 "A warning, not a failure: the rest of the close goes on; the period lock "
                 "waits for them (close_period_job)."),
)
def quarantine_is_empty(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """The quarantine in words: who must fix what."""
    with warehouse.get_connection() as conn:
        rows = conn.execute("""
            select q.owner, q.rule, coalesce(c.name, case when q.source_table = 'customers'
                   and json_valid(q.payload) then q.payload ->> '$.Name' end, 'unknown')
                   as customer, q.source_table, q.record_id
            from canonical.quarantine q
            left join canonical.customers c on c.customer_id = q.customer_id
            where q.rule <> 'held_by_upstream'
            order by q.owner, q.rule, customer, q.record_id""").fetchall()
        held = conn.execute("select count(*) from canonical.quarantine "
                            "where rule = 'held_by_upstream'").fetchone()[0]
    return dg.AssetCheckResult(
        passed=not rows and not held, severity=dg.AssetCheckSeverity.WARN,
        metadata={"records_holding_others": len(rows), "records_held_with_them": int(held),
                  "held": dg.MetadataValue.md("\n".join(
                      ["| owner | rule | customer | record |", "|---|---|---|---|"]
                      + [f"| {o} | {r} | {c} | {t} {i} |" for o, r, c, t, i in rows]))})


# The work queues of marts.fct_work_queue and what each means; the SLA (days) is the dbt var
# work_queue_sla_days in dbt_models/dbt_project.yml, read back from the table's sla_days.
WORK_QUEUES = {
    "contracts_not_billed": "contracts activated in Salesforce with no invoice in Stripe",
    "invoices_not_in_erp": "finalized invoices whose receivable journal the ERP does not hold",
    "obligations_pending_allocation": "contract lines with no allocation (nothing recognized)",
    "payments_not_applied": "cash received that is held, not applied to its invoice",
    "failed_payment_attempts": "open invoices Stripe tried to collect and could not",
    "amendments_awaiting_review": ("price decreases, backdated or future-dated amendments and "
                                   "amendments whose treatment was chosen by default"),
    "quarantined_records": "quarantined records, by owner and age",
}


def _work_queue_check(queue: str, meaning: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(["marts", "fct_work_queue"]),
        name=f"{queue}_within_sla",
        description=(f"Warns when an open row of the {queue} queue ({meaning}) is older than "
                     "its SLA at the close's as-of date; lists the oldest with owner, customer "
                     "and record."),
    )
    def _check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.get_connection() as conn:
            rows = conn.execute("""
                select owner, legal_entity, record_label, age_days, sla_days
                from marts.fct_work_queue
                where queue = ? and decision_state = 'open'
                order by age_days desc, record_label""", [queue]).fetchall()
        late = [r for r in rows if r[3] is not None and r[4] is not None and r[3] > r[4]]
        return dg.AssetCheckResult(
            passed=not late, severity=dg.AssetCheckSeverity.WARN,
            metadata={"open": len(rows), "past_sla": len(late),
                      "sla_days": int(rows[0][4]) if rows and rows[0][4] is not None else 0,
                      "oldest": dg.MetadataValue.md("\n".join(
                          ["| owner | entity | record | age (days) |", "|---|---|---|---|"]
                          + [f"| {o} | {e} | {label} | {age} |"
                             for o, e, label, age, _ in late[:SAMPLE_ROWS]]))})

    return _check


work_queue_checks = [_work_queue_check(q, m) for q, m in WORK_QUEUES.items()]
