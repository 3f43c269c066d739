"""The whole graph over the sample company: checks pass, nothing is lost, every bad record sits
in the quarantine with its reason, the layers agree on totals, and a re-run is byte-identical."""

from __future__ import annotations

import hashlib
import json
import os

import dagster as dg
import duckdb
import pytest

from q2c_pipeline.schemas.validation import VALIDATION_ORDER


@pytest.fixture(scope="module")
def warehouse(closed_warehouse):
    path, _, _ = closed_warehouse
    conn = duckdb.connect(str(path), read_only=True)
    yield conn
    conn.close()


def test_close_job_succeeds_and_every_asset_check_passes(closed_warehouse):
    _, result, _ = closed_warehouse
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    failed = [(e.asset_key.to_user_string(), e.check_name) for e in evaluations
              if not e.passed and e.severity != dg.AssetCheckSeverity.WARN]
    assert failed == []
    # what warns is the sample's own story: records held, and work waiting past its SLA in
    # every queue (each queue's rows: q2c_pipeline_tests/dbt/test_work_queues.py)
    warned = {e.check_name for e in evaluations if not e.passed}
    assert warned == {"quarantine_is_empty", *(f"{q}_within_sla" for q in (
        "contracts_not_billed", "invoices_not_in_erp", "obligations_pending_allocation",
        "payments_not_applied", "failed_payment_attempts", "amendments_awaiting_review",
        "quarantined_records"))}
    names = {e.check_name for e in evaluations}
    assert {"journal_lines_balance", "canonical_rows_conserved",
            "revenue_schedule_sums_to_allocation", "journal_lines_avoid_closed_periods"} <= names
    assert len(evaluations) >= 10  # the Python checks plus the dbt tests


def test_run_and_event_storage_live_in_postgres(closed_warehouse):
    _, result, instance = closed_warehouse
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    run = instance.get_run_by_id(result.run_id)
    assert run is not None and run.is_success
    # this run's own events are in PostgreSQL (other sessions may share the database)
    logged = {e.dagster_event.asset_key for e in instance.all_logs(
        result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)}
    assert dg.AssetKey(["finance", "journal_lines"]) in logged


def test_rows_in_equal_canonical_plus_quarantined_per_source_table(warehouse):
    audit = warehouse.execute(
        "select source_table, rows_in, accepted, quarantined from canonical.load_audit"
    ).fetchall()
    assert {row[0] for row in audit} == set(VALIDATION_ORDER)
    quarantined = dict(
        warehouse.execute(
            "select source_table, count(*) from canonical.quarantine group by 1"
        ).fetchall()
    )
    for table, rows_in, accepted, held in audit:
        actual = warehouse.execute(f"select count(*) from canonical.{table}").fetchone()[0]
        assert actual == accepted, table
        assert held == quarantined.get(table, 0), table
        assert rows_in == accepted + held, table
    assert sum(r[1] for r in audit) > 1000  # usage dominates; the company is not empty


@pytest.mark.parametrize(
    ("rule", "table", "owner", "minimum"),
    [
        ("unknown_product_code", "contract_lines", "sales_ops", 1),
        ("missing_legal_entity_mapping", "customers", "controllership", 1),
        ("currency_mismatch", "invoices", "billing_ops", 1),
        ("duplicate_id", "invoices", "billing_ops", 2),
        ("negative_quantity", "contract_lines", "sales_ops", 1),
    ],
)
def test_each_deliberately_bad_record_is_quarantined_with_its_reason(
    warehouse, rule, table, owner, minimum
):
    rows = warehouse.execute(
        "select record_id, field, reason, owner, payload from canonical.quarantine "
        "where rule = ? and source_table = ?",
        [rule, table],
    ).fetchall()
    assert len(rows) >= minimum
    for record_id, field, reason, row_owner, payload in rows:
        assert row_owner == owner
        assert field
        assert rule in reason and field in reason
        assert json.loads(payload)  # the source record as received
    if rule == "duplicate_id":
        assert len({r[0] for r in rows}) == 1  # both copies of one invoice id


def test_held_records_name_the_quarantined_upstream_record(warehouse):
    rows = warehouse.execute(
        "select reason from canonical.quarantine where rule = 'held_by_upstream'"
    ).fetchall()
    assert rows, "the bad contracts and customers hold their downstream records"
    assert all("quarantined" in r[0] for r in rows)


def test_revenue_journals_equal_the_schedule_through_the_close_period(warehouse):
    as_of_period = warehouse.execute(
        "select max(period) from finance.account_balances"
    ).fetchone()[0]
    scheduled = dict(
        warehouse.execute(
            "select currency, sum(amount) from finance.revenue_schedule where period <= ? "
            "group by 1",
            [as_of_period],
        ).fetchall()
    )
    journaled = dict(
        warehouse.execute(
            "select currency, sum(credit) - sum(debit) from finance.journal_lines "
            "where account = 'Revenue' group by 1"
        ).fetchall()
    )
    assert scheduled == journaled
    assert scheduled["USD"] > 0 and scheduled["GBP"] > 0


def test_every_invoice_reconciles_to_its_receivable_journal(warehouse):
    statuses = dict(
        warehouse.execute(
            "select reconciliation_status, count(*) from marts.fct_invoice_ar_reconciliation "
            "group by 1"
        ).fetchall()
    )
    invoices = warehouse.execute("select count(*) from canonical.invoices").fetchone()[0]
    assert statuses == {"matched": invoices}
    billed = dict(
        warehouse.execute(
            "select i.currency, "
            "sum(l.amount + case when l.tax_inclusive then 0 else l.tax_amount end) "
            "from canonical.invoice_lines l join canonical.invoices i using (invoice_id) group by 1"
        ).fetchall()
    )
    receivable = dict(
        warehouse.execute(
            "select currency, sum(debit) - sum(credit) from finance.journal_lines "
            "where account = 'AccountsReceivable' and source_type = 'invoice' group by 1"
        ).fetchall()
    )
    assert billed == receivable


def test_deferred_revenue_rollforward_ties_to_the_ledger_every_month(warehouse):
    untied, total = warehouse.execute(
        "select count(*) filter (where not is_tied), count(*) "
        "from marts.fct_deferred_revenue_rollforward"
    ).fetchone()
    assert total >= 12  # two entities, several currencies, six months
    assert untied == 0


def test_close_summary_has_a_row_per_entity_and_month_with_exceptions_by_owner(closed_warehouse):
    from q2c_pipeline.reporting import close_summary_lines

    path, _, _ = closed_warehouse
    lines = close_summary_lines(str(path))
    text = "\n".join(lines)
    assert "US01" in text and "UK01" in text and "2026-06" in text
    assert "unknown_product_code" in text and "controllership" in text
    assert max(len(line) for line in lines) <= 150  # readable in a terminal
    [header] = [line for line in lines if line.startswith("entity")]
    titles = ("billings", "revenue", "reductions", "contract liab.", "contract asset",
              "unbilled AR", "refund liab.", "exceptions")
    assert all(title in header for title in titles)
    # an entity-month row: entity, period, currency, the seven functional amounts, the held
    # invoices of the month (Vandelay's and Umbrella's June invoices: 2) and the
    # exceptions by owner
    [june] = [line.split() for line in lines if line.startswith("US01       2026-06")]
    assert june[:3] == ["US01", "2026-06", "USD"] and len(june) == 3 + 7 + 2
    assert june[10] == "2"
    [rollforward] = [line for line in lines if line.startswith("Contract-position roll-forward")]
    tied, _, total = rollforward.split(": ")[1].split()[:3]
    assert tied == total and int(total) >= 12
    [control] = [line for line in lines if line.startswith("Contract positions vs ledger")]
    tied, _, compared = control.split(": ")[1].split()[:3]
    assert tied == compared and int(compared) >= 12


def _fingerprint(path) -> dict[str, str]:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        tables = conn.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('canonical', 'finance', 'marts') order by 1, 2"
        ).fetchall()
        out = {}
        for schema, table in tables:
            rows = conn.execute(f"select * from {schema}.{table} order by all").fetchall()
            out[f"{schema}.{table}"] = hashlib.sha256(repr(rows).encode()).hexdigest()
        return out
    finally:
        conn.close()


def test_a_second_run_over_the_same_input_gives_byte_identical_tables(
    closed_warehouse, sample_company, tmp_path
):
    from q2c_pipeline.cli import run_close

    first, _, _ = closed_warehouse
    second = tmp_path / "again.duckdb"
    environment = dict(os.environ)
    ok, failures, _ = run_close(str(second), str(sample_company))
    assert ok and failures == []
    # the warehouse file reached every step as a resource (dbt by --vars), not through the
    # environment: the environment is as it was, and the ERP files sit beside this warehouse
    assert dict(os.environ) == environment
    assert os.environ.get("Q2C_DUCKDB_PATH") != str(second)
    assert sorted(p.name for p in (tmp_path / "output" / "erp").iterdir())
    assert _fingerprint(first) == _fingerprint(second)


def test_a_usage_journal_line_drills_down_to_exactly_its_events(closed_warehouse, tmp_path):
    import shutil

    from q2c_pipeline.accounting.usage_summary import drill_down

    path, _, _ = closed_warehouse
    copy = tmp_path / "drill.duckdb"
    shutil.copy(path, copy)
    conn = duckdb.connect(str(copy))
    try:
        lines = conn.execute(
            "select source_id, event_count, credit from finance.journal_lines "
            "where source_type = 'usage' and account = 'Revenue' order by source_id limit 3"
        ).fetchall()
        assert lines, "the sample company's usage posts as summary lines"
        for summary_line_id, event_count, credit in lines:
            events = drill_down(conn, summary_line_id)  # verifies count, amount, fingerprint
            assert len(events) == event_count
            assert int(events["amount"].sum()) == credit
    finally:
        conn.close()


def test_the_intercompany_deal_posts_an_equal_and_opposite_pair_and_every_journal_balances(
    warehouse,
):
    # Wayne Enterprises: sold by US01, invoiced in USD by UK01 (GBP functional) on five paid
    # monthly invoices of 6 seats x 100.00 net; UK01 owes US01 the pre-tax 600.00 of each.
    [customer_id] = warehouse.execute(
        "select customer_id from canonical.customers where name = 'Wayne Enterprises'"
    ).fetchone()
    pairs = warehouse.execute(
        "select legal_entity, account, currency, functional_currency, count(*), "
        "sum(debit) - sum(credit), sum(debit_functional) - sum(credit_functional) "
        "from finance.journal_lines "
        "where account in ('IntercompanyReceivable', 'IntercompanyPayable') "
        "and source_type <> 'fx_remeasurement' group by all order by all"
    ).fetchall()
    assert [row[:6] for row in pairs] == [
        ("UK01", "IntercompanyPayable", "USD", "GBP", 5, -300000),
        ("US01", "IntercompanyReceivable", "USD", "USD", 5, 300000),
    ]
    assert pairs[0][6] < 0 and pairs[1][6] == 300000  # UK01 carries the payable in GBP
    # the payable is a monetary item (IAS 21.23(a)): UK01 remeasures it at month ends (0 in USD,
    # the difference in GBP), each month's remeasurement reversed on the 1st of the next
    remeasured = warehouse.execute(
        "select count(*), sum(debit) + sum(credit) from finance.journal_lines "
        "where account = 'IntercompanyPayable' and source_type = 'fx_remeasurement'"
    ).fetchone()
    assert remeasured[0] > 0 and remeasured[1] == 0
    owners = dict(warehouse.execute(
        "select account, list(distinct legal_entity) from finance.journal_lines "
        "where customer_id = ? and account in ('Revenue', 'AccountsReceivable', 'TaxLiability', "
        "'DeferredRevenue', 'Cash') group by 1", [customer_id],
    ).fetchall())
    assert owners == {"Revenue": ["US01"], "DeferredRevenue": ["US01"],
                      "AccountsReceivable": ["UK01"], "TaxLiability": ["UK01"], "Cash": ["UK01"]}
    unbalanced = warehouse.execute(
        "select journal_id from finance.journal_lines group by journal_id, currency "
        "having sum(debit) <> sum(credit) "
        "union all select journal_id from finance.journal_lines group by journal_id "
        "having sum(debit_functional) <> sum(credit_functional)"
    ).fetchall()
    assert unbalanced == []


def _contract_of(warehouse, name):
    return warehouse.execute(
        "select distinct k.contract_id from canonical.contracts k "
        "join canonical.customers c using (customer_id) where c.name = ?", [name]
    ).fetchone()[0]


def test_globex_bundle_is_reallocated_by_the_catalog_ssp(warehouse):
    # ASC 606-10-32-31: seats 25 x 100.00 x 12 = 30,000.00 (catalog, per seat-month), onboarding
    # 5,000.00, services 10 x 1,600.00 = 16,000.00: SSP 51,000.00 for a price of 48,750.00
    # (seats at 7.5% off: 27,750.00 + 5,000.00 + 16,000.00). 48,750 x 30/51 = 28,676.470..,
    # x 5/51 = 4,779.411.., x 16/51 = 15,294.117..; largest remainder gives the cent to services.
    rows = warehouse.execute(
        "select l.product_code, a.ssp_amount, a.allocated_amount, a.ssp_source "
        "from finance.allocation a join canonical.contract_lines l using (contract_line_id) "
        "where a.contract_id = ? order by 1", [_contract_of(warehouse, "Globex Corporation")]
    ).fetchall()
    assert rows == [("PLAT-ONBOARD", 500_000, 477_941, "catalog"),
                    ("PLAT-SEAT", 3_000_000, 2_867_647, "catalog"),
                    ("PS-DAY", 1_600_000, 1_529_412, "catalog")]


def test_the_close_summary_reductions_are_the_months_contra_revenue(warehouse):
    rows = dict(((e, p), r) for e, p, r in warehouse.execute(
        "select legal_entity, period, reductions_functional_minor from marts.fct_close_summary"
    ).fetchall())
    # Initech: one seat-month of February (12 seats x 80.00 x 90% / 12 = 72.00) refunded on
    # 03-18, February fully served: all of it contra revenue (Refunds)
    assert rows[("UK01", "2026-03")] == 7_200
    # Fabrikam's April invoice (8 x 80.00 = 640.00 before VAT) written off on 06-15, April fully
    # recognized: 640.00 is a credit loss (CreditLossExpense, the default presentation, ASC
    # 326-20), not a reduction of revenue; its VAT relief is not revenue either
    assert rows[("UK01", "2026-06")] == 0
    losses = warehouse.execute(
        "select period, sum(debit) - sum(credit) from finance.journal_lines "
        "where legal_entity = 'UK01' and account = 'CreditLossExpense' group by 1").fetchall()
    assert losses == [("2026-06", 64_000)]
    # Globex's service credit of 1,156.25 on the March seat line, issued on 03-05: 4 of 31 days
    # served, 1,156.25 x 4 / 31 = 149.19 contra revenue (the rest comes off March's schedule);
    # April's credit note was issued and voided in April: nothing
    assert rows[("US01", "2026-03")] == 14_919
    assert rows[("US01", "2026-04")] == 0
    assert sum(v for (e, _), v in rows.items() if e == "US01") == 14_919


def test_a_cancelled_prepaid_year_is_refunded_through_the_refund_liability_once(warehouse):
    # Stark: 10 seats x 100.00 x 12 = 12,000.00 + 7.25% CA tax billed 2026-01-01 and paid; by
    # day, January 31/365 x 12,000.00 = 1,019.18, February 920.55, March 1,019.18. Cancelled from
    # 04-01 (CPQ delta -9,000.00 for nine months): the price is 3,000.00, so April catches up
    # 3,000.00 - 2,958.91 = 41.09 and the 9,000.00 billed for April..December is owed back.
    contract = _contract_of(warehouse, "Stark Industries")
    revenue = dict(warehouse.execute(
        "select period, sum(credit) - sum(debit) from finance.journal_lines "
        "where contract_id = ? and account = 'Revenue' group by 1", [contract]).fetchall())
    assert revenue == {"2026-01": 101_918, "2026-02": 92_055, "2026-03": 101_918,
                       "2026-04": 4_109}
    by_source = warehouse.execute(
        "select source_type, account, sum(debit), sum(credit) from finance.journal_lines "
        "where contract_id = ? and source_type in ('contract_position', 'credit_note', 'refund') "
        "group by 1, 2 order by 1, 2", [contract]).fetchall()
    assert by_source == [
        # the modification: DeferredRevenue -> RefundLiability 9,000.00
        ("contract_position", "DeferredRevenue", 900_000, 0),
        ("contract_position", "RefundLiability", 0, 900_000),
        # the order-change credit note settles it with its tax (9,000.00 x 7.25% = 652.50)
        ("credit_note", "AccountsReceivable", 0, 965_250),
        ("credit_note", "RefundLiability", 900_000, 0),
        ("credit_note", "TaxLiability", 65_250, 0),
        # the refund it names moves cash only
        ("refund", "AccountsReceivable", 965_250, 0),
        ("refund", "Cash", 0, 965_250),
    ]
    positions = warehouse.execute(
        "select period, deferred_revenue, refund_liability from finance.contract_positions "
        "where revenue_contract_id = ? and period >= '2026-03' order by 1", [contract]).fetchall()
    assert positions == [("2026-03", 904_109, 0), ("2026-04", 0, 0), ("2026-05", 0, 0),
                         ("2026-06", 0, 0)]


def test_usage_priced_per_1000_calls_is_rated_as_stripe_invoices_it_and_ties_to_the_meter(
        warehouse):
    # EUR usage is priced at 20.00 per 1,000 calls, rounded up (transform_quantity); USD at
    # 0.02 a call. Stripe's meter, the invoice and q2c's rating agree on every usage line.
    rows = warehouse.execute("""
        select currency_code, meter_quantity::bigint, source_quantity::bigint,
               q2c_quantity::bigint, source_amount_minor, q2c_amount_minor, tieout_status
        from marts.fct_usage_source_tieout order by invoice_line_id
    """).fetchall()
    assert {r[0] for r in rows} == {"EUR", "USD"} and len(rows) == 8
    for currency, meter, invoiced, rated, billed, amount, status in rows:
        packages = -(-invoiced // 1000)  # whole packages of 1,000, the last one rounded up
        expected = packages * 2000 if currency == "EUR" else invoiced * 2
        assert (meter, rated, billed, amount, status) == (
            invoiced, invoiced, expected, expected, "tied"), (currency, invoiced)
    eur = [r for r in rows if r[0] == "EUR"]
    # Mueller's April and May: 54,708 calls = 55 packages = 1,100.00; 50,709 = 51 = 1,020.00
    assert sorted((r[2], r[4]) for r in eur) == [(50_709, 102_000), (54_708, 110_000)]
    # nothing left for a true-up: the events of each billed period add up to its line
    true_ups = warehouse.execute(
        "select count(*) from finance.revenue_schedule where source_type = 'usage_true_up' "
        "and amount <> 0").fetchone()[0]
    assert true_ups == 0


def test_the_draft_renewal_is_pending_never_an_invoice_an_exception_or_a_failure(warehouse):
    # Contoso's July renewal was a draft at the extraction (00:30, finalizing 01:00)
    pending = warehouse.execute("""
        select customer_name, status, total, currency, created_at, finalizes_at, source_id
        from canonical.pending_invoices
    """).fetchall()
    assert [row[:4] for row in pending] == [
        ("Contoso Retail", "awaiting_finalization", 150_000, "USD")]
    draft = pending[0][6]
    assert str(pending[0][4]) == "2026-07-01 00:00:00"
    assert str(pending[0][5]) == "2026-07-01 01:00:00"
    for table in ("invoices", "invoice_lines"):
        assert warehouse.execute(f"select count(*) from canonical.{table} where source_id = ? "
                                 "or invoice_id = ?", [draft, f"stripe:{draft}"]).fetchone() \
            == (0,), table
    assert warehouse.execute("select count(*) from canonical.quarantine where payload like ?",
                             [f'%"id":"{draft}"%']).fetchone() == (0,)
    audit = dict(warehouse.execute(
        "select source_table, pending from canonical.load_audit where pending > 0").fetchall())
    assert audit == {"invoices": 1, "invoice_lines": 1}
    status, message = warehouse.execute("""
        select s.status, s.message from finance.contract_posting_status s
        join canonical.pending_invoices p on p.contract_id = s.contract_id
    """).fetchone()
    assert status == "posted"
    assert message == f"Stripe invoice {draft} awaiting finalization"


def test_the_ui_states_the_usage_tie_out_and_the_drafts_in_words(closed_warehouse):
    _, result, _ = closed_warehouse
    (usage,) = [e for e in result.get_asset_check_evaluations()
                if e.check_name == "usage_ties_to_stripe"]
    assert usage.passed
    assert (usage.metadata["usage_lines"].value, usage.metadata["tied"].value) == (8, 8)
    assert usage.metadata["units_invoiced"].value == 415_319
    pending = next(m for m in result.asset_materializations_for_node("canonical_tables")
                   if m.asset_key.path == ["canonical", "pending_invoices"])
    assert pending.metadata["awaiting_finalization"].value == 1
    assert "| Contoso Retail | US01 | USD 1500.00 | 2026-07-01 00:00 | 2026-07-01 01:00 |" \
        in pending.metadata["invoices"].value


def test_every_contract_ties_to_what_salesforce_states_the_deal_is_worth(warehouse):
    statuses = dict(warehouse.execute(
        "select tieout_status, count(*) from marts.fct_contract_source_tieout group by 1"
    ).fetchall())
    assert statuses == {"tied": 17}  # every contract, Pied Piper's (not billed) included
    # Initech: 12 seats at GBP 80.00 a month for 12 months, 10% off = 10,368.00 both in the
    # opportunity Salesforce states and in the lines q2c holds
    assert warehouse.execute("""
        select t.source_original_minor, t.canonical_original_minor
        from marts.fct_contract_source_tieout t
        join canonical.contracts c using (contract_id)
        join canonical.customers u using (customer_id)
        where u.name = 'Initech Ltd' and c.version = 1""").fetchone() == (1_036_800, 1_036_800)


def test_the_close_publishes_what_analysts_read_beside_the_warehouse(closed_warehouse):
    path, result, _ = closed_warehouse
    published = next(m for m in result.asset_materializations_for_node("publish__analytics"))
    analytics = path.with_name("analytics.duckdb")
    assert published.metadata["path"].value == str(analytics)
    with duckdb.connect(str(analytics), read_only=True) as conn, \
            duckdb.connect(str(path), read_only=True) as source:
        for table in ("marts.fct_close_summary", "marts.fct_exceptions", "canonical.quarantine",
                      "canonical.pending_invoices", "finance.journal_lines"):
            assert conn.execute(f"select count(*) from {table}").fetchone() == source.execute(
                f"select count(*) from {table}").fetchone(), table
        assert conn.execute("select run_id from publish.published").fetchone() == (
            result.run_id,)


def test_every_table_asset_shows_its_columns_with_their_types(closed_warehouse):
    """The UI's column schema of every table the close wrote (raw, canonical, finance, ledger
    and each dbt model), read from DuckDB, with dbt's column descriptions kept."""
    path, result, _ = closed_warehouse
    shown, tables = {}, 0
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        key = materialization.asset_key.to_user_string()
        if materialization.partition is not None or key.split("/")[0] not in {
                "raw", "canonical", "finance", "ledger", "staging", "intermediate", "marts"}:
            continue  # a day a close marks, a close pack, the analytics copy
        tables += 1
        schema = materialization.metadata.get("dagster/column_schema")
        shown[key] = {c.name: (c.type, c.description) for c in schema.schema.columns} \
            if schema is not None else {}
    assert tables > 60 and [k for k, columns in shown.items() if not columns] == []
    with duckdb.connect(str(path), read_only=True) as conn:
        [(invoice_columns,)] = conn.execute(
            "select count(*) from information_schema.columns where table_schema = 'canonical' "
            "and table_name = 'invoices'").fetchall()
    assert len(shown["canonical/invoices"]) == invoice_columns
    assert shown["canonical/invoices"]["finalized_at"][0].startswith("timestamp")
    assert shown["finance/journal_lines"]["debit"][0] == "bigint"
    assert "minor units of the row's currency" in shown["finance/journal_lines"]["debit"][1]
    assert "functional currency" in shown["finance/journal_lines"]["debit_functional"][1]
    assert shown["marts/fct_contract_position_reconciliation"]["positions_period"] == (
        "varchar", "The month whose positions are compared: the period itself, or the "
        "positions' last month (the as-of month) for a ledger month after it.")
