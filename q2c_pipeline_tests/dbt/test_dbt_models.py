"""dbt_models built against a tiny hand-written warehouse; every expected number is by hand.

The warehouse (warehouse_rows.py): US01 (USD) bills 12,000.00 + 8% tax up front, recognizes
1,000.00 in January and February, charges 50.00 paid without an invoice in February, credits
1,200.00 + 96.00 tax in February (100.00 of it already recognized), is paid in March. EU01 (EUR)
recognizes 500.00 unbilled in February, then invoices 1,500.00 with 250.00 tax included (clearing
the 500.00, deferring 750.00), recognizes 250.00 in March, and bills and recognizes 100.00 USD at
0.92 (92.00 EUR) in March.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from dbt.cli.main import dbtRunner

from q2c_pipeline_tests.dbt.warehouse_rows import load_warehouse, write_account_balances

DBT_DIR = Path(__file__).resolve().parents[2] / "dbt_models"


def invoke_dbt(args: list[str], work_dir: Path):
    """Run dbt in-process with target and logs under work_dir, never inside the repository."""
    return dbtRunner().invoke([
        *args,
        "--project-dir", str(DBT_DIR),
        "--profiles-dir", str(DBT_DIR),
        "--target-path", str(work_dir / "target"),
        "--log-path", str(work_dir / "logs"),
        "--quiet",
    ])


def statuses_by_node(result) -> dict[str, str]:
    return {str(run.node.name): str(run.status) for run in result.result.results}


def query(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path)) as con:
        return con.execute(sql).fetchall()


@pytest.fixture(scope="module")
def built_warehouse(tmp_path_factory):
    """The consistent warehouse after one `dbt build`: (duckdb path, dbt result)."""
    work_dir = tmp_path_factory.mktemp("dbt_build")
    path = work_dir / "warehouse.duckdb"
    load_warehouse(str(path))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("Q2C_DUCKDB_PATH", str(path))
        result = invoke_dbt(["build"], work_dir)
    return path, result


def test_dbt_build_passes_every_model_and_test_on_a_consistent_ledger(built_warehouse):
    _, result = built_warehouse
    statuses = statuses_by_node(result)
    assert result.success, {name: s for name, s in statuses.items() if s not in ("success", "pass")}
    assert statuses["assert_journals_balance_per_entity_and_currency"] == "pass"
    assert statuses["assert_rollforward_ties_to_ledger"] == "pass"
    assert statuses["assert_invoices_reconcile_to_ar"] == "pass"
    assert statuses["fct_close_summary"] == "success"


def test_invoice_reconciliation_adds_exclusive_tax_and_keeps_inclusive_tax_inside(built_warehouse):
    path, _ = built_warehouse
    rows = query(path, """
        select invoice_id, legal_entity, currency_code, period, billed_total_minor,
               ar_debit_minor, difference_minor, reconciliation_status
        from marts.fct_invoice_ar_reconciliation order by invoice_id
    """)
    assert rows == [
        # 1,200,000 + 96,000 exclusive tax
        ("INV-1", "US01", "USD", "2026-01", 1_296_000, 1_296_000, 0, "matched"),
        # tax inclusive: the line amount is the total; entity comes from the customer
        ("INV-2", "EU01", "EUR", "2026-02", 150_000, 150_000, 0, "matched"),
        ("INV-3", "EU01", "USD", "2026-03", 10_000, 10_000, 0, "matched"),
    ]


def test_rollforward_moves_the_net_contract_position_period_by_period(built_warehouse):
    path, _ = built_warehouse
    rows = query(path, """
        select legal_entity, currency_code, period, opening_minor, billings_minor, revenue_minor,
               reductions_minor, other_movements_minor, closing_minor, ledger_closing_minor,
               difference_minor, is_tied
        from marts.fct_deferred_revenue_rollforward
        order by legal_entity, currency_code, period
    """)
    assert rows == [
        # unbilled 50,000 recognized, then billed 125,000 pre-tax clearing it: 125,000 - 50,000
        ("EU01", "EUR", "2026-02", 0, 125_000, 50_000, 0, 0, 75_000, 75_000, 0, True),
        ("EU01", "EUR", "2026-03", 75_000, 0, 25_000, 0, 0, 50_000, 50_000, 0, True),
        ("EU01", "USD", "2026-03", 0, 10_000, 10_000, 0, 0, 0, 0, 0, True),
        ("US01", "USD", "2026-01", 0, 1_200_000, 100_000, 0, 0, 1_100_000, 1_100_000, 0, True),
        # the credit note takes only its deferred 110,000 out; the 10,000 recognized is contra
        # the one-time charge paid without invoice is billed and recognized in the same month
        ("US01", "USD", "2026-02", 1_100_000, 5_000, 105_000, 110_000, 0, 890_000, 890_000, 0,
         True),
        # no March movement and no March balance row: the ledger balance is carried forward
        ("US01", "USD", "2026-03", 890_000, 0, 0, 0, 0, 890_000, 890_000, 0, True),
    ]


def test_rollforward_states_usd_billings_of_the_euro_entity_in_functional_currency(
    built_warehouse,
):
    path, _ = built_warehouse
    rows = query(path, """
        select functional_currency_code, opening_functional_minor, billings_functional_minor,
               revenue_functional_minor, closing_functional_minor,
               ledger_closing_functional_minor
        from marts.fct_deferred_revenue_rollforward
        where legal_entity = 'EU01' and currency_code = 'USD'
    """)
    assert rows == [("EUR", 0, 9_200, 9_200, 0, 0)]


def test_close_summary_sums_currencies_in_functional_and_puts_open_exceptions_on_latest_period(
    built_warehouse,
):
    path, _ = built_warehouse
    rows = query(path, """
        select legal_entity, period, functional_currency_code, billings_functional_minor,
               revenue_functional_minor, deferred_balance_functional_minor,
               open_exceptions_sales_ops, open_exceptions_billing_ops,
               open_exceptions_controllership
        from marts.fct_close_summary order by legal_entity, period
    """)
    assert rows == [
        ("EU01", "2026-02", "EUR", 125_000, 50_000, 75_000, None, None, None),
        # 92.00 EUR of USD billings; revenue 25,000 EUR + 9,200 EUR from USD
        ("EU01", "2026-03", "EUR", 9_200, 34_200, 50_000, 0, 1, 0),
        ("UNASSIGNED", "2026-03", None, 0, 0, 0, 1, 0, 0),
        ("US01", "2026-01", "USD", 1_200_000, 100_000, 1_100_000, None, None, None),
        ("US01", "2026-02", "USD", 5_000, 105_000, 890_000, None, None, None),
        ("US01", "2026-03", "USD", 0, 0, 890_000, 0, 0, 1),
    ]


def test_exceptions_are_attributed_by_customer_contract_or_left_unassigned(built_warehouse):
    path, _ = built_warehouse
    rows = query(path, """
        select record_id, rule, owner, legal_entity, attribution_basis
        from marts.fct_exceptions order by record_id
    """)
    assert rows == [
        # the correlation id names contract sf:800A (US01), although the payload is not JSON
        ("sf:800Z", "unknown_customer", "sales_ops", "UNASSIGNED", "unassigned"),
        ("sf:802Q", "unparseable_record", "controllership", "US01", "contract"),
        # Stripe customer cus_B1 is Beta GmbH's billing_customer_id stripe:cus_B1
        ("stripe:in_Q", "negative_tax_amount", "billing_ops", "EU01", "customer"),
    ]


def test_journal_lines_mart_maps_each_logical_account_to_the_entity_gl_account(built_warehouse):
    path, _ = built_warehouse
    rows = query(path, """
        select legal_entity, account, gl_account, normal_balance, debit_minor,
               debit_functional_minor
        from marts.fct_journal_lines where journal_id = 'J-INV-3' order by line_number
    """)
    assert rows == [
        ("EU01", "AccountsReceivable", "700", "debit", 10_000, 9_200),
        ("EU01", "DeferredRevenue", "705", "credit", 0, 0),
    ]
    assert query(path, "select count(*) from marts.fct_journal_lines") == [(31,)]


def test_revenue_schedule_and_customers_marts_carry_functional_currency(built_warehouse):
    path, _ = built_warehouse
    assert query(path, """
        select source_id, period, amount_minor, amount_functional_minor, functional_currency_code
        from marts.fct_revenue_schedule where legal_entity = 'EU01' order by source_id, period
    """) == [
        ("CL-2", "2026-02", 50_000, 50_000, "EUR"),
        ("CL-2", "2026-03", 25_000, 25_000, "EUR"),
        ("IL-3", "2026-03", 10_000, 9_200, "EUR"),
    ]
    assert query(path, """
        select customer_id, legal_entity, currency_code, functional_currency_code
        from marts.dim_customers order by customer_id
    """) == [
        ("sf:001A", "US01", "USD", "USD"),
        ("sf:001B", "EU01", "EUR", "EUR"),
        ("sf:001C", "EU01", "USD", "EUR"),
    ]


def test_mart_money_columns_are_integer_minor_units_never_floats(built_warehouse):
    path, _ = built_warehouse
    types = query(path, """
        select table_name, column_name, data_type from information_schema.columns
        where table_schema = 'marts' and column_name like '%\\_minor' escape '\\'
    """)
    assert len(types) >= 20
    assert {data_type for _, _, data_type in types} == {"BIGINT"}


def test_rebuilding_the_marts_gives_identical_tables(built_warehouse, tmp_path):
    path, _ = built_warehouse
    marts = ["fct_invoice_ar_reconciliation", "fct_deferred_revenue_rollforward",
             "fct_close_summary", "fct_exceptions", "fct_journal_lines"]
    before = {mart: query(path, f"select * from marts.{mart}") for mart in marts}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("Q2C_DUCKDB_PATH", str(path))
        result = invoke_dbt(["run", "--select", "marts"], tmp_path)
    assert result.success
    assert {mart: query(path, f"select * from marts.{mart}") for mart in marts} == before


def test_unbalanced_journal_fails_the_balance_test_and_holds_back_the_marts(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    load_warehouse(str(path))
    with duckdb.connect(str(path)) as con:
        # why: an extra 5.00 receivable on INV-2's journal with no credit leg
        con.execute("""
            insert into finance.journal_lines
            select * replace (5 as line_number, 'AccountsReceivable' as account, 500 as debit,
                              0 as credit, 500 as debit_functional, 0 as credit_functional)
            from finance.journal_lines where journal_id = 'J-INV-2' and line_number = 1
        """)
        write_account_balances(con)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("Q2C_DUCKDB_PATH", str(path))
        result = invoke_dbt(["build"], tmp_path)

    assert not result.success
    failures = {
        str(run.node.name): run.failures
        for run in result.result.results
        if str(run.status) == "fail"
    }
    # one transaction-currency and one functional-currency imbalance on J-INV-2
    assert failures == {"assert_journals_balance_per_entity_and_currency": 2}
    statuses = statuses_by_node(result)
    # the test gates everything built on the journal lines: no mart from an unbalanced ledger
    assert statuses["fct_invoice_ar_reconciliation"] == "skipped"
    assert statuses["fct_deferred_revenue_rollforward"] == "skipped"
    assert statuses["fct_close_summary"] == "skipped"


def test_billing_and_ar_breaks_fail_the_reconciliation_test_with_their_status(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    load_warehouse(str(path))
    with duckdb.connect(str(path)) as con:
        # why: INV-2 booked 5.00 too much receivable, balanced against tax (journal still balances)
        con.execute("""
            update finance.journal_lines
            set debit = debit + 500, debit_functional = debit_functional + 500
            where journal_id = 'J-INV-2' and account = 'AccountsReceivable'
        """)
        con.execute("""
            update finance.journal_lines
            set credit = credit + 500, credit_functional = credit_functional + 500
            where journal_id = 'J-INV-2' and account = 'TaxLiability'
        """)
        # why: a billed invoice the ledger never booked
        con.execute("""
            insert into canonical.invoices
            select * replace ('INV-5' as invoice_id) from canonical.invoices
            where invoice_id = 'INV-1'
        """)
        con.execute("""
            insert into canonical.invoice_lines
            select * replace ('IL-5' as invoice_line_id, 'INV-5' as invoice_id, 3000 as amount,
                              0 as tax_amount)
            from canonical.invoice_lines where invoice_line_id = 'IL-1'
        """)
        # why: the ledger booked an invoice billing does not know (balanced, off the position)
        con.execute("""
            insert into finance.journal_lines
            select * replace ('J-INV-X' as journal_id, 'key:J-INV-X' as journal_key,
                              'INV-X' as source_id)
            from finance.journal_lines
            where journal_id = 'J-INV-1' and account in ('AccountsReceivable', 'TaxLiability')
        """)
        con.execute("""
            update finance.journal_lines
            set debit = 700, debit_functional = 700, credit = 0, credit_functional = 0
            where journal_id = 'J-INV-X' and account = 'AccountsReceivable'
        """)
        con.execute("""
            update finance.journal_lines
            set credit = 700, credit_functional = 700, debit = 0, debit_functional = 0
            where journal_id = 'J-INV-X' and account = 'TaxLiability'
        """)
        write_account_balances(con)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("Q2C_DUCKDB_PATH", str(path))
        result = invoke_dbt(["build", "--select", "+fct_invoice_ar_reconciliation+"], tmp_path)

    assert not result.success
    failures = {
        str(run.node.name): run.failures
        for run in result.result.results
        if str(run.status) == "fail"
    }
    assert failures == {"assert_invoices_reconcile_to_ar": 3}
    assert query(path, """
        select invoice_id, legal_entity, billed_total_minor, ar_debit_minor, difference_minor,
               reconciliation_status
        from marts.fct_invoice_ar_reconciliation
        where reconciliation_status <> 'matched' order by invoice_id
    """) == [
        ("INV-2", "EU01", 150_000, 150_500, -500, "amount_mismatch"),
        ("INV-5", "US01", 3_000, 0, 3_000, "missing_in_ledger"),
        ("INV-X", "US01", 0, 700, -700, "missing_in_billing"),
    ]


def test_dbt_parse_writes_the_manifest_dagster_dbt_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("Q2C_DUCKDB_PATH", str(tmp_path / "unused.duckdb"))
    result = invoke_dbt(["parse"], tmp_path)
    assert result.success
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    models = {node["name"] for node in manifest["nodes"].values()
              if node["resource_type"] == "model"}
    assert {"fct_invoice_ar_reconciliation", "fct_deferred_revenue_rollforward",
            "fct_close_summary", "fct_exceptions", "fct_journal_lines",
            "fct_revenue_schedule", "dim_customers"} <= models
    schemas = {node["schema"] for node in manifest["nodes"].values()
               if node["resource_type"] == "model"}
    assert schemas == {"staging", "intermediate", "marts"}
