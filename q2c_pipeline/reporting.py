"""The close summary a controller reads after a run: per entity and month, billings, revenue,
deferred balance and open exceptions by owner, straight from the reconciliation marts."""

from __future__ import annotations

from q2c_pipeline.core.money import from_minor
from q2c_pipeline.warehouse import connect

SUMMARY_SQL = """
    select legal_entity, period, coalesce(functional_currency_code, '') as currency,
           coalesce(billings_functional_minor, 0), coalesce(revenue_functional_minor, 0),
           coalesce(deferred_balance_functional_minor, 0),
           open_exceptions_sales_ops, open_exceptions_billing_ops,
           open_exceptions_controllership
    from marts.fct_close_summary
    order by legal_entity = 'UNASSIGNED', legal_entity, period
"""

TIE_SQL = """
    select count(*) filter (where not is_tied), count(*) from marts.fct_deferred_revenue_rollforward
"""

AR_SQL = """
    select reconciliation_status, count(*) from marts.fct_invoice_ar_reconciliation
    group by 1 order by 1
"""

EXCEPTIONS_SQL = """
    select owner, rule, count(*) from marts.fct_exceptions group by 1, 2 order by 1, 2
"""


def _count(value: object) -> str:
    return "" if value is None else str(int(value))


def close_summary_lines(duckdb_path: str) -> list[str]:
    """Lines of the printed close summary (empty marts print a note instead of failing)."""
    with connect(duckdb_path, read_only=True) as conn:
        rows = conn.execute(SUMMARY_SQL).fetchall()
        untied, periods = conn.execute(TIE_SQL).fetchone()
        ar = conn.execute(AR_SQL).fetchall()
        exceptions = conn.execute(EXCEPTIONS_SQL).fetchall()

    header = (
        f"{'entity':<11}{'period':<9}{'ccy':<5}{'billings':>15}{'revenue':>15}"
        f"{'deferred bal.':>15}  {'exceptions: sales/billing/controllership'}"
    )
    lines = ["", "Close summary (functional currency)", header, "-" * len(header)]
    for entity, period, ccy, billings, revenue, deferred, sales, billing, control in rows:
        money = (
            f"{from_minor(billings, ccy):>15}{from_minor(revenue, ccy):>15}"
            f"{from_minor(deferred, ccy):>15}"
            if ccy
            else f"{'':>15}{'':>15}{'':>15}"
        )
        counts = "/".join(_count(v) for v in (sales, billing, control))
        lines.append(f"{entity:<11}{period:<9}{ccy:<5}{money}  {counts if counts != '//' else ''}")
    lines.append("")
    lines.append(
        f"Deferred-revenue roll-forward: {periods - untied} of {periods} entity-currency-months "
        "tie to the ledger"
    )
    lines.append("Invoices vs AR journals: " + ", ".join(f"{s} {n}" for s, n in ar))
    lines.append("Open exceptions by owner and rule:")
    for owner, rule, count in exceptions:
        lines.append(f"  {owner:<16}{rule:<32}{count}")
    return lines
