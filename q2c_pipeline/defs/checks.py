"""Asset checks: the accounting and data-conservation properties that must hold before close.

Each check reads the warehouse independently of the code that wrote it, states one property,
and on failure carries the offending rows so a human can act on them.
"""


import dagster as dg

from q2c_pipeline.defs.resources import WarehouseResource
from q2c_pipeline.schemas.validation import VALIDATION_ORDER
from q2c_pipeline.warehouse import identifier

SAMPLE_ROWS = 10


def _result(passed: bool, failures: list[tuple], columns: list[str], **metadata) -> dg.AssetCheckResult:
    sample = [dict(zip(columns, row, strict=True)) for row in failures[:SAMPLE_ROWS]]
    return dg.AssetCheckResult(
        passed=passed,
        metadata={"failing_rows": len(failures), "sample": dg.MetadataValue.json(sample), **metadata},
    )


@dg.asset_check(asset=dg.AssetKey(["finance", "journal_lines"]), blocking=True)
def journal_lines_balance(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Every journal balances per entity and currency, in transaction and functional currency."""
    sql = """
        select journal_id, legal_entity, currency,
               sum(debit) - sum(credit) as difference,
               sum(debit_functional) - sum(credit_functional) as difference_functional
        from finance.journal_lines
        group by journal_id, legal_entity, currency
        having sum(debit) <> sum(credit) or sum(debit_functional) <> sum(credit_functional)
        order by journal_id, currency
    """
    with warehouse.get_connection() as conn:
        failures = conn.execute(sql).fetchall()
        journals = conn.execute("select count(distinct journal_id) from finance.journal_lines").fetchone()[0]
    columns = ["journal_id", "legal_entity", "currency", "difference", "difference_functional"]
    return _result(not failures, failures, columns, journals=int(journals))


@dg.asset_check(asset=dg.AssetKey(["finance", "journal_lines"]), blocking=True)
def journal_lines_avoid_closed_periods(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """No journal line posts to a period the entity has closed."""
    sql = """
        select j.journal_id, j.line_number, j.legal_entity, j.period
        from finance.journal_lines j
        join canonical.accounting_periods p
          on p.legal_entity = j.legal_entity and p.period = j.period and p.status = 'closed'
        order by j.journal_id, j.line_number
    """
    with warehouse.get_connection() as conn:
        failures = conn.execute(sql).fetchall()
    return _result(not failures, failures, ["journal_id", "line_number", "legal_entity", "period"])


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
    columns = ["contract_line_id", "currency", "allocated_amount", "deferred_reductions", "scheduled"]
    return _result(not failures, failures, columns, obligations=int(obligations))


@dg.asset_check(asset=dg.AssetKey(["canonical", "load_audit"]), blocking=True)
def canonical_rows_conserved(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    """Per source table: rows in = canonical rows + quarantined rows, counted in the warehouse."""
    failures: list[tuple] = []
    with warehouse.get_connection() as conn:
        audit = {
            row[0]: row[1:]
            for row in conn.execute(
                "select source_table, rows_in, accepted, quarantined from canonical.load_audit"
            ).fetchall()
        }
        quarantined = dict(
            conn.execute(
                "select source_table, count(*) from canonical.quarantine group by source_table"
            ).fetchall()
        )
        for table in VALIDATION_ORDER:
            rows_in, _, _ = audit.get(table, (0, 0, 0))
            canonical = conn.execute(
                f"select count(*) from canonical.{identifier(table)}"
            ).fetchone()[0]
            held = int(quarantined.get(table, 0))
            if rows_in != canonical + held:
                failures.append((table, int(rows_in), int(canonical), held))
    total_in = sum(int(v[0]) for v in audit.values())
    return _result(
        not failures, failures, ["source_table", "rows_in", "canonical", "quarantined"],
        rows_in=total_in,
    )
