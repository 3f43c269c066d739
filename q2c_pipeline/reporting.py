"""The close summary a controller reads after a run: per entity and month, billings, revenue,
reductions, the contract position (contract liability, contract asset, unbilled receivable,
refund liability) and open exceptions by owner, straight from the reconciliation marts."""

from __future__ import annotations

from q2c_pipeline.core.money import from_minor
from q2c_pipeline.warehouse import connect

SUMMARY_SQL = """
    select legal_entity, period, coalesce(functional_currency_code, '') as currency,
           coalesce(billings_functional_minor, 0), coalesce(revenue_functional_minor, 0),
           coalesce(reductions_functional_minor, 0),
           coalesce(contract_liability_functional_minor, 0),
           coalesce(contract_asset_functional_minor, 0),
           coalesce(unbilled_receivable_functional_minor, 0),
           coalesce(refund_liability_functional_minor, 0),
           held_invoices, open_exceptions_sales_ops, open_exceptions_billing_ops,
           open_exceptions_controllership
    from marts.fct_close_summary
    order by legal_entity = 'UNASSIGNED', legal_entity, period
"""

TIE_SQL = """
    select count(*) filter (where not is_tied), count(*) from marts.fct_deferred_revenue_rollforward
"""

POSITIONS_SQL = """
    select count(*) filter (where comparison_status = 'tied'),
           count(*) filter (where is_compared),
           count(*) filter (where not is_compared)
    from marts.fct_contract_position_reconciliation
"""

SOURCE_SQL = """
select count(*) filter (where tieout_status = 'tied'), count(*)
from marts.fct_invoice_source_tieout
"""
USAGE_SQL = """
select count(*) filter (where tieout_status = 'tied'), count(*), sum(source_quantity)
from marts.fct_usage_source_tieout
"""
CONTRACT_SQL = """
select count(*) filter (where tieout_status = 'tied'),
       count(*) filter (where tieout_status <> 'no_opportunity'),
       count(*) filter (where tieout_status = 'no_opportunity')
from marts.fct_contract_source_tieout
"""
PENDING_SQL = """
select count(*), string_agg(customer_name || ' ' || source_id, ', ' order by source_id)
from canonical.pending_invoices
"""
AR_SQL = """
    select reconciliation_status, count(*) from marts.fct_invoice_ar_reconciliation
    group by 1 order by 1
"""

HELD_SQL = """
    select count(distinct record_id) from canonical.quarantine where source_table = 'invoices'
    and record_id not in (select invoice_id from canonical.invoices)  -- a held change is booked
"""
# revenue dated in an earlier month than the one it was booked in (a closed or locked month's
# activity or correction, booked in the first open one: DECISIONLOG "Lock-then-fix")
LATE_REVENUE_SQL = """
    select legal_entity, period, currency, sum(credit - debit)
    from finance.journal_lines
    where account = 'Revenue' and strftime(original_date, '%Y-%m') < period
    group by 1, 2, 3 having sum(credit - debit) <> 0 order by 1, 2, 3
"""

# per owner and rule: open (not waived or resolved; an override waits for its run) and waived
EXCEPTIONS_SQL = """
    select exceptions.owner, exceptions.rule,
           count(*) filter (where states.state not in ('waived', 'resolved')),
           count(*) filter (where states.state = 'waived')
    from marts.fct_exceptions as exceptions
    join intermediate.int_exception_states as states using (exception_id)
    group by 1, 2
    having count(*) filter (where states.state <> 'resolved') > 0
    order by 1, 2
"""

# (header, width) of the money columns, functional currency
MONEY_COLUMNS = (
    ("billings", 14), ("revenue", 14), ("reductions", 14), ("contract liab.", 15),
    ("contract asset", 15), ("unbilled AR", 14), ("refund liab.", 14),
)


def _count(value: object) -> str:
    return "" if value is None else str(int(value))


def close_summary_lines(duckdb_path: str) -> list[str]:
    """Lines of the printed close summary (empty marts print a note instead of failing)."""
    with connect(duckdb_path, read_only=True) as conn:
        rows = conn.execute(SUMMARY_SQL).fetchall()
        untied, periods = conn.execute(TIE_SQL).fetchone()
        positions_tied, positions_compared, positions_skipped = conn.execute(
            POSITIONS_SQL).fetchone()
        ar = conn.execute(AR_SQL).fetchall()
        source_tied, source_total = conn.execute(SOURCE_SQL).fetchone()
        usage_tied, usage_total, usage_quantity = conn.execute(USAGE_SQL).fetchone()
        pending_count, pending_names = conn.execute(PENDING_SQL).fetchone()
        late_revenue = conn.execute(LATE_REVENUE_SQL).fetchall()
        contracts_tied, contracts_compared, contracts_alone = conn.execute(
            CONTRACT_SQL).fetchone()
        exceptions = conn.execute(EXCEPTIONS_SQL).fetchall()
        held_total = conn.execute(HELD_SQL).fetchone()[0]

    header = (
        f"{'entity':<11}{'period':<9}{'ccy':<5}"
        + "".join(f"{title:>{width}}" for title, width in MONEY_COLUMNS)
        + "  held  exceptions s/b/c"
    )
    lines = [
        "",
        "Close summary (functional currency)",
        "Contract position at the month end, from the ledger; held = invoices finalized that "
        "month and held in the quarantine (not journaled);",
        "exceptions open now by owner, s/b/c = sales_ops/billing_ops/controllership",
        header,
        "-" * len(header),
    ]
    for entity, period, ccy, *amounts, held, sales, billing, control in rows:
        money = "".join(
            f"{from_minor(amount, ccy) if ccy else '':>{width}}"
            for amount, (_, width) in zip(amounts, MONEY_COLUMNS, strict=True)
        )
        counts = "/".join(_count(v) for v in (sales, billing, control))
        lines.append(
            f"{entity:<11}{period:<9}{ccy:<5}{money}{(str(held) if held else ''):>6}  "
            f"{counts if counts != '//' else ''}".rstrip()
        )
    lines.append("")
    lines.append(
        f"Contract-position roll-forward: {periods - untied} of {periods} entity-currency-months "
        "tie to the ledger"
    )
    skipped = (
        f" ({positions_skipped} not compared: before the ledger or posted in a later period)"
        if positions_skipped else ""
    )
    lines.append(
        f"Contract positions vs ledger: {positions_tied} of {positions_compared} "
        f"entity-currency-months tie{skipped}"
    )
    lines.append("Invoices vs AR journals: " + ", ".join(f"{s} {n}" for s, n in ar)
                 + f"; {held_total} more held in the quarantine (not journaled: "
                 "marts.fct_work_queue, queue invoices_not_in_erp)")
    lines.append(
        f"Invoices vs Stripe's own totals (discounts, tax, total, paid, remaining): "
        f"{source_tied} of {source_total} tie in canonical and ledger"
    )
    lines.append(
        f"Usage vs Stripe's meter and invoices (metered, invoiced, rated; amount): "
        f"{usage_tied} of {usage_total} usage lines tie "
        f"({int(usage_quantity or 0):,} units invoiced)"
    )
    alone = f" ({contracts_alone} without an opportunity)" if contracts_alone else ""
    lines.append(
        f"Contracts vs Salesforce's own opportunity and amendment amounts: {contracts_tied} of "
        f"{contracts_compared} tie{alone}"
    )
    lines.append(
        f"Invoices awaiting finalization in Stripe (drafts, not posted): {pending_count}"
        + (f" ({pending_names})" if pending_names else "")
    )
    if late_revenue:
        lines.append("Revenue booked after the month it is dated in (a closed or locked month's, "
                     "in the first open one): " + "; ".join(
                         f"{e} {p} {from_minor(a, c)} {c}" for e, p, c, a in late_revenue))
    lines.append("Open exceptions by owner and rule:")
    for owner, rule, count, waived in exceptions:
        lines.append(f"  {owner:<16}{rule:<32}{count}"
                     + (f" (and {waived} waived)" if waived else ""))
    return lines
