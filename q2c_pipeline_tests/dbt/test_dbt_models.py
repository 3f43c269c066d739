"""dbt_models built against a tiny hand-written warehouse; every expected number is by hand.

The warehouse (warehouse_rows.py): US01 (USD) bills 12,000.00 + 8% tax up front, recognizes
1,000.00 in January and February, charges 50.00 paid without an invoice in February, credits
1,200.00 + 96.00 tax in February (100.00 of it already recognized), is paid in March. EU01 (EUR)
recognizes 500.00 unbilled in February, then invoices 1,500.00 with 250.00 tax included (clearing
the 500.00, deferring 750.00), recognizes 250.00 in March, and bills and recognizes 100.00 USD at
0.92 (92.00 EUR) in March. UK01 (GBP) holds a USD contract booked at 0.80: 200.00 recognized into
ContractAsset on 2025-12-31 (closed; posted 2026-01-01) and 300.00 into Unbilled in January, both
remeasured at 0.78 at the January end (FX loss 10.00 GBP, reversed February 1st); invoiced 600.00
in February (clearing the 300.00 unbilled, deferring 300.00), 100.00 of deferred revenue
reclassified to RefundLiability by a cancellation; in March a 120.00 refund settles the 100.00
refund liability and takes 20.00 off deferred revenue, and 100.00 is recognized.
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
    assert statuses["assert_contract_positions_tie_to_ledger"] == "pass"
    assert statuses["fct_close_summary"] == "success"
    assert statuses["fct_contract_positions"] == "success"
    assert statuses["fct_contract_position_reconciliation"] == "success"


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
        ("INV-4", "UK01", "USD", "2026-02", 60_000, 60_000, 0, "matched"),
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
        # revenue ahead of billing: 20,000 contract asset + 30,000 unbilled, P = -50,000
        ("UK01", "USD", "2026-01", 0, 0, 50_000, 0, 0, -50_000, -50_000, 0, True),
        # invoice 60,000 (clears 30,000 unbilled, defers 30,000); the reclass of 10,000 deferred
        # to the refund liability stays inside P: other 0
        ("UK01", "USD", "2026-02", -50_000, 60_000, 0, 0, 0, 10_000, 10_000, 0, True),
        # the refund's 2,000 off deferred revenue is a reduction (its 10,000 on the refund
        # liability is a settlement, asserted below): 10,000 - 10,000 - 2,000 - 10,000
        ("UK01", "USD", "2026-03", 10_000, 0, 10_000, 2_000, 0, -12_000, -12_000, 0, True),
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


def test_rollforward_shows_settlements_fx_and_the_ledger_closing_of_each_position_account(
    built_warehouse,
):
    path, _ = built_warehouse
    rows = query(path, """
        select legal_entity, currency_code, period, settlements_minor, fx_minor,
               deferred_revenue_closing_minor, refund_liability_closing_minor,
               contract_asset_closing_minor, unbilled_receivable_closing_minor,
               ledger_closing_minor
        from marts.fct_deferred_revenue_rollforward
        order by legal_entity, currency_code, period
    """)
    assert rows == [
        # EU01 EUR: unbilled 50,000 - 50,000 = 0 after the invoice; deferred 75,000, then 50,000
        ("EU01", "EUR", "2026-02", 0, 0, 75_000, 0, 0, 0, 75_000),
        ("EU01", "EUR", "2026-03", 0, 0, 50_000, 0, 0, 0, 50_000),
        # 10,000 billed - 10,000 recognized
        ("EU01", "USD", "2026-03", 0, 0, 0, 0, 0, 0, 0),
        # ledger: contract asset 20,000 (posted 2026-01), unbilled 30,000; 0 - 20,000 - 30,000.
        # The remeasurement lines carry no USD amount: fx 0 in transaction currency
        ("UK01", "USD", "2026-01", 0, 0, 0, 0, 20_000, 30_000, -50_000),
        # deferred 30,000 - 10,000 reclassed = 20,000; refund liability 10,000; unbilled
        # 30,000 - 30,000 = 0; contract asset carried (no USD movement): 20,000 + 10,000 - 20,000
        ("UK01", "USD", "2026-02", 0, 0, 20_000, 10_000, 20_000, 0, 10_000),
        # refund: 10,000 off the refund liability (settlement), 2,000 off deferred revenue;
        # deferred 20,000 - 2,000 - 10,000 recognized = 8,000; 8,000 + 0 - 20,000 - 0
        ("UK01", "USD", "2026-03", 10_000, 0, 8_000, 0, 20_000, 0, -12_000),
        ("US01", "USD", "2026-01", 0, 0, 1_100_000, 0, 0, 0, 1_100_000),
        ("US01", "USD", "2026-02", 0, 0, 890_000, 0, 0, 0, 890_000),
        ("US01", "USD", "2026-03", 0, 0, 890_000, 0, 0, 0, 890_000),
    ]


def test_rollforward_of_the_gbp_entity_in_functional_currency_carries_the_remeasurement(
    built_warehouse,
):
    path, _ = built_warehouse
    rows = query(path, """
        select period, opening_functional_minor, billings_functional_minor,
               revenue_functional_minor, reductions_functional_minor,
               settlements_functional_minor, fx_functional_minor,
               other_movements_functional_minor, closing_functional_minor,
               deferred_revenue_closing_functional_minor,
               refund_liability_closing_functional_minor,
               contract_asset_closing_functional_minor,
               unbilled_receivable_closing_functional_minor,
               ledger_closing_functional_minor, is_tied
        from marts.fct_deferred_revenue_rollforward
        where legal_entity = 'UK01' order by period
    """)
    assert rows == [
        # revenue 16,000 + 24,000 at 0.80; remeasurement at 0.78 credits unbilled 600 and
        # contract asset 400: fx +1,000. closing 0 - 40,000 + 1,000 = -39,000
        # = 0 + 0 - (16,000 - 400) - (24,000 - 600)
        ("2026-01", 0, 0, 40_000, 0, 0, 1_000, 0, -39_000, 0, 0, 15_600, 23_400, -39_000, True),
        # reversal on February 1st: fx -1,000; invoice 24,000 unbilled + 24,000 deferred = 48,000;
        # reclass 8,000 deferred -> refund liability: other 0.
        # -39,000 + 48,000 - 1,000 = 8,000 = (24,000 - 8,000) + 8,000 - 16,000 - 0
        ("2026-02", -39_000, 48_000, 0, 0, 0, -1_000, 0, 8_000, 16_000, 8_000, 16_000, 0,
         8_000, True),
        # refund: settlement 8,000, reduction 1,600; revenue 8,000.
        # 8,000 - 8,000 - 1,600 - 8,000 = -9,600 = (16,000 - 1,600 - 8,000) + 0 - 16,000
        ("2026-03", 8_000, 0, 8_000, 1_600, 8_000, 0, 0, -9_600, 6_400, 0, 16_000, 0, -9_600,
         True),
    ]


def test_refund_lines_on_the_refund_liability_are_settlements_and_reclasses_are_other(
    built_warehouse,
):
    path, _ = built_warehouse
    rows = query(path, """
        select journal_id, account, position_movement_minor, position_movement_functional_minor,
               position_bucket
        from intermediate.int_contract_position_lines_bucketed
        where legal_entity = 'UK01' and journal_id in ('J-RFD-1', 'J-POS-D', 'J-FX-D1')
        order by journal_id, line_number
    """)
    assert rows == [
        # remeasurement: functional only, credits raise P
        ("J-FX-D1", "UnbilledAccountsReceivable", 0, 600, "fx"),
        ("J-FX-D1", "ContractAsset", 0, 400, "fx"),
        ("J-POS-D", "DeferredRevenue", -10_000, -8_000, "other"),
        ("J-POS-D", "RefundLiability", 10_000, 8_000, "other"),
        # the same refund: paying back the refund liability is a settlement, the rest a
        # reduction (the Cash line is not on the position)
        ("J-RFD-1", "RefundLiability", -10_000, -8_000, "settlements"),
        ("J-RFD-1", "DeferredRevenue", -2_000, -1_600, "reductions"),
    ]


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
        # no billing in January: revenue 16,000 (dated 2025-12, posted 2026-01) + 24,000
        ("UK01", "2026-01", "GBP", 0, 40_000, -39_000, None, None, None),
        ("UK01", "2026-02", "GBP", 48_000, 0, 8_000, None, None, None),
        ("UK01", "2026-03", "GBP", 0, 8_000, -9_600, 0, 0, 0),
        ("UNASSIGNED", "2026-03", None, 0, 0, 0, 1, 0, 0),
        ("US01", "2026-01", "USD", 1_200_000, 100_000, 1_100_000, None, None, None),
        ("US01", "2026-02", "USD", 5_000, 105_000, 890_000, None, None, None),
        ("US01", "2026-03", "USD", 0, 0, 890_000, 0, 0, 1),
    ]


def test_close_summary_states_reductions_and_each_contract_position_account_in_functional(
    built_warehouse,
):
    path, _ = built_warehouse
    rows = query(path, """
        select legal_entity, period, reductions_functional_minor,
               position_reductions_functional_minor, contract_liability_functional_minor,
               contract_asset_functional_minor,
               unbilled_receivable_functional_minor, refund_liability_functional_minor,
               deferred_balance_functional_minor
        from marts.fct_close_summary order by legal_entity, period
    """)
    assert rows == [
        ("EU01", "2026-02", 0, 0, 75_000, 0, 0, 0, 75_000),
        # 50,000 EUR + 0 from the USD deferred revenue (10,000 billed, 10,000 recognized)
        ("EU01", "2026-03", 0, 0, 50_000, 0, 0, 0, 50_000),
        # at the January closing rate: contract asset 16,000 - 400, unbilled 24,000 - 600
        ("UK01", "2026-01", 0, 0, 0, 15_600, 23_400, 0, -39_000),
        # deferred 24,000 - 8,000 reclassed; contract asset back to 16,000 after the reversal;
        # 16,000 + 8,000 - 16,000 - 0 = 8,000
        ("UK01", "2026-02", 0, 0, 16_000, 16_000, 0, 8_000, 8_000),
        # the refund: 1,600 off deferred revenue (16,000 - 1,600 - 8,000 = 6,400), no contra
        # line; the 8,000 settling the refund liability is not a reduction. 6,400 - 16,000
        ("UK01", "2026-03", 0, 1_600, 6_400, 16_000, 0, 0, -9_600),
        ("UNASSIGNED", "2026-03", 0, 0, 0, 0, 0, 0, 0),
        ("US01", "2026-01", 0, 0, 1_100_000, 0, 0, 0, 1_100_000),
        # the credit note: its recognized 10,000 is contra revenue (CreditNotes), its deferred
        # share 110,000 comes out of the position
        ("US01", "2026-02", 10_000, 110_000, 890_000, 0, 0, 0, 890_000),
        ("US01", "2026-03", 0, 0, 890_000, 0, 0, 0, 890_000),
    ]


def test_contract_positions_mart_carries_the_revenue_layer_positions_per_contract(
    built_warehouse,
):
    path, _ = built_warehouse
    rows = query(path, """
        select revenue_contract_id, period, currency_code, functional_currency_code,
               deferred_revenue_minor, contract_asset_minor, unbilled_receivable_minor,
               refund_liability_minor, net_contract_position_minor
        from marts.fct_contract_positions where legal_entity = 'UK01'
    """)
    assert rows == [
        ("sf:800D", "2025-12", "USD", "GBP", 0, 20_000, 0, 0, -20_000),
        ("sf:800D", "2026-01", "USD", "GBP", 0, 20_000, 30_000, 0, -20_000),
        ("sf:800D", "2026-02", "USD", "GBP", 20_000, 20_000, 0, 10_000, 0),
        ("sf:800D", "2026-03", "USD", "GBP", 8_000, 20_000, 0, 0, -12_000),
    ]
    assert query(path, "select count(*) from marts.fct_contract_positions") == [(11,)]


def test_contract_positions_tie_to_the_ledger_in_every_month_the_ledger_holds(built_warehouse):
    path, _ = built_warehouse
    rows = query(path, """
        select legal_entity, currency_code, period, contract_count,
               positions_deferred_revenue_minor, ledger_deferred_revenue_minor,
               positions_contract_asset_minor, ledger_contract_asset_minor,
               positions_unbilled_receivable_minor, ledger_unbilled_receivable_minor,
               positions_refund_liability_minor, ledger_refund_liability_minor,
               posted_later_line_count, comparison_status
        from marts.fct_contract_position_reconciliation
        order by legal_entity, currency_code, period
    """)
    assert rows == [
        ("EU01", "EUR", "2026-02", 1, 75_000, 75_000, 0, 0, 0, 0, 0, 0, 0, "tied"),
        ("EU01", "EUR", "2026-03", 1, 50_000, 50_000, 0, 0, 0, 0, 0, 0, 0, "tied"),
        ("EU01", "USD", "2026-03", 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, "tied"),
        # the closed 2025-12 is not in UK01's ledger (its one line posted into 2026-01): the
        # 20,000 contract asset is compared in 2026-01, which holds it
        ("UK01", "USD", "2025-12", 1, 0, None, 20_000, None, 0, None, 0, None, 1,
         "outside_ledger_periods"),
        ("UK01", "USD", "2026-01", 1, 0, 0, 20_000, 20_000, 30_000, 30_000, 0, 0, 0, "tied"),
        ("UK01", "USD", "2026-02", 1, 20_000, 20_000, 20_000, 20_000, 0, 0, 10_000, 10_000, 0,
         "tied"),
        # contract asset: no March balance row, the ledger's February 20,000 is carried
        ("UK01", "USD", "2026-03", 1, 8_000, 8_000, 20_000, 20_000, 0, 0, 0, 0, 0, "tied"),
        ("US01", "USD", "2026-01", 1, 1_100_000, 1_100_000, 0, 0, 0, 0, 0, 0, 0, "tied"),
        # sf:800A and the one-time charge PAY-3 (0)
        ("US01", "USD", "2026-02", 2, 890_000, 890_000, 0, 0, 0, 0, 0, 0, 0, "tied"),
        ("US01", "USD", "2026-03", 1, 890_000, 890_000, 0, 0, 0, 0, 0, 0, 0, "tied"),
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
    assert query(path, """
        select journal_id, account, gl_account, normal_balance
        from marts.fct_journal_lines
        where journal_id in ('J-POS-D', 'J-REV-D0') order by journal_id, line_number
    """) == [
        ("J-POS-D", "DeferredRevenue", "805", "credit"),
        ("J-POS-D", "RefundLiability", "808", "credit"),
        ("J-REV-D0", "ContractAsset", "807", "debit"),
        ("J-REV-D0", "Revenue", "804", "credit"),
    ]
    # 31 lines of US01 and EU01, 22 of UK01
    assert query(path, "select count(*) from marts.fct_journal_lines") == [(53,)]


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
        ("sf:001D", "UK01", "USD", "GBP"),
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
             "fct_close_summary", "fct_exceptions", "fct_journal_lines", "fct_contract_positions",
             "fct_contract_position_reconciliation"]
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


def failed_tests(result) -> dict[str, int]:
    return {
        str(run.node.name): run.failures
        for run in result.result.results
        if str(run.status) == "fail"
    }


def test_a_contract_position_off_the_ledger_fails_the_tie_test_but_a_closed_month_does_not(
    tmp_path,
):
    path = tmp_path / "warehouse.duckdb"
    load_warehouse(str(path))
    with duckdb.connect(str(path)) as con:
        # why: the revenue layer says 490.00 EUR deferred at the March end; the ledger has 500.00
        con.execute("""
            update finance.contract_positions
            set deferred_revenue = 49000, net_contract_position = 49000
            where revenue_contract_id = 'sf:800B' and period = '2026-03'
        """)
        # why: a position in a currency the ledger never posted for the entity (compared with 0)
        con.execute("""
            insert into finance.contract_positions
            values ('sf:800X', 'US01', '2026-03', 'EUR', 0, 0, 0, 7000, 0)
        """)
        # why: the closed 2025-12 is before UK01's ledger: whatever it says is not compared
        con.execute("""
            update finance.contract_positions
            set contract_asset = 99999, net_contract_position = -99999
            where revenue_contract_id = 'sf:800D' and period = '2025-12'
        """)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("Q2C_DUCKDB_PATH", str(path))
        result = invoke_dbt(["build"], tmp_path)

    assert not result.success
    assert failed_tests(result) == {"assert_contract_positions_tie_to_ledger": 2}
    statuses = statuses_by_node(result)
    assert statuses["assert_rollforward_ties_to_ledger"] == "pass"  # the ledger is unchanged
    assert query(path, """
        select legal_entity, currency_code, period, deferred_revenue_difference_minor,
               refund_liability_difference_minor, comparison_status
        from marts.fct_contract_position_reconciliation
        where comparison_status <> 'tied' order by legal_entity, currency_code, period
    """) == [
        # 49,000 - 50,000
        ("EU01", "EUR", "2026-03", -1_000, 0, "break"),
        ("UK01", "USD", "2025-12", None, None, "outside_ledger_periods"),
        # 7,000 - 0: US01's ledger has no EUR at all
        ("US01", "EUR", "2026-03", 0, 7_000, "break"),
    ]


def test_a_month_whose_activity_the_ledger_posted_later_is_compared_where_it_was_posted(
    tmp_path,
):
    path = tmp_path / "warehouse.duckdb"
    load_warehouse(str(path))
    with duckdb.connect(str(path)) as con:
        # why: the refund is dated 2026-02-27 in a February already closed, so the ledger posted
        # it on 2026-03-05 into March; the revenue layer states it in February, as dated:
        # deferred 20,000 - 2,000 = 18,000, refund liability 0, net 18,000 - 20,000
        con.execute("""
            update canonical.accounting_periods set status = 'closed'
            where legal_entity = 'UK01' and period = '2026-02'
        """)
        con.execute(
            "update finance.journal_lines set original_date = '2026-02-27'"
            " where journal_id = 'J-RFD-1'"
        )
        con.execute("""
            update finance.contract_positions
            set deferred_revenue = 18000, refund_liability = 0, net_contract_position = -2000
            where revenue_contract_id = 'sf:800D' and period = '2026-02'
        """)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("Q2C_DUCKDB_PATH", str(path))
        result = invoke_dbt(["build"], tmp_path)

    assert result.success, failed_tests(result)
    assert query(path, """
        select period, positions_deferred_revenue_minor, ledger_deferred_revenue_minor,
               positions_refund_liability_minor, ledger_refund_liability_minor,
               posted_later_line_count, comparison_status
        from marts.fct_contract_position_reconciliation
        where legal_entity = 'UK01' order by period
    """) == [
        ("2025-12", 0, None, 0, None, 1, "outside_ledger_periods"),
        ("2026-01", 0, 0, 0, 0, 0, "tied"),
        # the refund's RefundLiability and DeferredRevenue lines are dated in February, posted in
        # March: February's ledger closing cannot hold them, so February is not compared
        ("2026-02", 18_000, 20_000, 0, 10_000, 2, "posted_in_later_period"),
        ("2026-03", 8_000, 8_000, 0, 0, 0, "tied"),
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
            "fct_revenue_schedule", "dim_customers", "fct_contract_positions",
            "fct_contract_position_reconciliation"} <= models
    schemas = {node["schema"] for node in manifest["nodes"].values()
               if node["resource_type"] == "model"}
    assert schemas == {"staging", "intermediate", "marts"}


def test_every_invoice_ties_to_what_stripe_itself_states(built_warehouse):
    path, result = built_warehouse
    assert statuses_by_node(result)["assert_invoices_tie_to_source"] == "pass"
    # source / canonical / ledger, by hand from warehouse_rows: INV-1 12,000.00 + 960.00 tax
    # exclusive = 12,960.00 billed and booked, 11,664.00 paid by PAY-1
    assert query(path, """
        select invoice_id, source_subtotal_minor, canonical_subtotal_minor, source_tax_minor,
               canonical_tax_minor, source_total_minor, canonical_total_minor, ledger_total_minor,
               source_paid_minor, canonical_paid_minor, ledger_paid_minor, tieout_status
        from marts.fct_invoice_source_tieout order by invoice_id
    """) == [
        ("INV-1", 1_200_000, 1_200_000, 96_000, 96_000, 1_296_000, 1_296_000, 1_296_000,
         1_166_400, 1_166_400, 1_166_400, "tied"),
        ("INV-2", 150_000, 150_000, 25_000, 25_000, 150_000, 150_000, 150_000, 150_000, 150_000,
         150_000, "tied"),
        ("INV-3", 10_000, 10_000, 0, 0, 10_000, 10_000, 10_000, 0, 0, 0, "tied"),
        ("INV-4", 60_000, 60_000, 0, 0, 60_000, 60_000, 60_000, 60_000, 60_000, 60_000, "tied"),
    ]


def test_an_invoice_the_source_states_differently_fails_the_source_tie_test(tmp_path):
    # why: Stripe says INV-1 carried a 120.00 coupon (total 12,840.00) that q2c's lines do not
    # show -- q2c agrees with itself (AR reconciliation still matched) but not with the source
    path = tmp_path / "warehouse.duckdb"
    load_warehouse(str(path))
    with duckdb.connect(str(path)) as con:
        payload = json.loads(con.execute(
            "select payload from raw.stripe_invoices where record_id = 'in_1'").fetchone()[0])
        payload["total_discount_amounts"] = [{"amount": 12_000, "discount": "di_1"}]
        payload["total"] = 1_296_000 - 12_000
        con.execute("insert into raw.stripe_invoices values ('in_1', ?, 'hash:in_1b', null, "
                    "false, '2026-04-02', null)", [json.dumps(payload)])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("Q2C_DUCKDB_PATH", str(path))
        result = invoke_dbt(["build", "--select", "+fct_invoice_source_tieout+",
                             "+fct_invoice_ar_reconciliation"], tmp_path)
    assert failed_tests(result) == {"assert_invoices_tie_to_source": 1}
    assert query(path, """
        select invoice_id, source_discount_minor, canonical_discount_minor, source_total_minor,
               canonical_total_minor, tieout_status
        from marts.fct_invoice_source_tieout where tieout_status <> 'tied'
    """) == [("INV-1", 12_000, 0, 1_284_000, 1_296_000, "discount_differs")]
    assert query(path, "select reconciliation_status from marts.fct_invoice_ar_reconciliation "
                       "where invoice_id = 'INV-1'") == [("matched",)]


def test_a_customer_balance_applied_in_stripe_only_fails_the_source_tie_test(tmp_path):
    # why: Stripe applied 30.00 of the customer's credit balance to the open INV-3 (100.00):
    # amount_remaining 70.00, while q2c still holds 100.00 open -- every total ties, only what
    # is owed differs
    path = tmp_path / "warehouse.duckdb"
    load_warehouse(str(path))
    with duckdb.connect(str(path)) as con:
        payload = json.loads(con.execute(
            "select payload from raw.stripe_invoices where record_id = 'in_3'").fetchone()[0])
        payload.update(amount_remaining=7_000, starting_balance=-3_000, amount_due=7_000)
        con.execute("update raw.stripe_invoices set payload = ? where record_id = 'in_3'",
                    [json.dumps(payload)])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("Q2C_DUCKDB_PATH", str(path))
        result = invoke_dbt(["build", "--select", "+fct_invoice_source_tieout+"], tmp_path)
    assert failed_tests(result) == {"assert_invoices_tie_to_source": 1}
    assert query(path, """
        select invoice_id, source_remaining_minor, canonical_remaining_minor, tieout_status
        from marts.fct_invoice_source_tieout where tieout_status <> 'tied'
    """) == [("INV-3", 7_000, 10_000, "remaining_differs")]


def test_every_usage_line_ties_to_the_meter_and_to_what_stripe_invoiced(built_warehouse):
    path, result = built_warehouse
    assert statuses_by_node(result)["assert_usage_ties_to_source"] == "pass"
    # by hand from warehouse_rows: meter 3,000 + 2,000 = 5,000 = invoiced 5,000 = q2c's two
    # events; 100.00 invoiced = 60.00 + 40.00 rated
    assert query(path, """
        select invoice_line_id, meter_quantity::bigint, source_quantity::bigint,
               q2c_quantity::bigint, source_amount_minor, q2c_amount_minor, q2c_events,
               tieout_status
        from marts.fct_usage_source_tieout
    """) == [("IL-3", 5_000, 5_000, 5_000, 10_000, 10_000, 2, "tied")]


@pytest.mark.parametrize(("alter", "expected"), [
    # Stripe's meter counted 100 calls more on 20 March than the invoice bills
    ("update raw.stripe_billing_meter_event_summaries set payload = json_merge_patch(payload, "
     "'{\"aggregated_value\": 2100}') where record_id = 'mtrusum_0320'",
     ("meter_differs", 5_100, 5_000, 10_000)),
    # q2c's usage file lost 500 calls of the 20 March event
    ("update canonical.usage set quantity = 1500, amount = 3000 where usage_id = 'usage:mev_2'",
     ("quantity_differs", 5_000, 4_500, 9_000)),
    # same calls, rated at another price (a package size read wrong)
    ("update canonical.usage set amount = 2000 where usage_id = 'usage:mev_2'",
     ("amount_differs", 5_000, 5_000, 8_000)),
])
def test_usage_the_meter_or_the_invoice_states_differently_fails_the_usage_tie_test(
        tmp_path, alter, expected):
    path = tmp_path / "warehouse.duckdb"
    load_warehouse(str(path))
    with duckdb.connect(str(path)) as con:
        con.execute(alter)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("Q2C_DUCKDB_PATH", str(path))
        result = invoke_dbt(["build", "--select", "+fct_usage_source_tieout+"], tmp_path)
    assert failed_tests(result) == {"assert_usage_ties_to_source": 1}
    assert query(path, """
        select tieout_status, meter_quantity::bigint, q2c_quantity::bigint, q2c_amount_minor
        from marts.fct_usage_source_tieout
    """) == [expected]


def _contract_warehouse(tmp_path, amount: str, amendment: str | None = None):
    """800A with a 12,000.00 seat line (and, when given, a 1,000.00 upsell delta), and the
    opportunities Salesforce holds for it."""
    path = tmp_path / "warehouse.duckdb"
    load_warehouse(str(path))
    with duckdb.connect(str(path)) as con:
        con.execute("insert into canonical.contract_lines values ('sf:a0X1', 'sf:800A', "
                    "'PLAT-SEAT', 10, 1200000, null, '2026-01-01', '2027-01-01', 'ratable', "
                    "null, null, null, 'salesforce', 'a0X1', 'sf:800A', null)")
        con.execute("insert into canonical.contract_lines values ('sf:a0X2', 'sf:800A', "
                    "'PLAT-SEAT', 1, 100000, null, '2026-07-01', '2027-01-01', 'ratable', "
                    "'sf:a0X1', '2026-07-01', null, 'salesforce', 'a0X2', 'sf:800A', null)")
        rows = [("800A", {"Id": "800A", "SBQQ__Opportunity__c": "006A"}, "salesforce_contracts"),
                ("006A", {"Id": "006A", "Type": "New Business", "Amount": amount,
                          "CurrencyIsoCode": "USD", "IsWon": True}, "salesforce_opportunities")]
        if amendment is not None:
            rows.append(("006B", {"Id": "006B", "Type": "Amendment", "Amount": amendment,
                                  "SBQQ__AmendedContract__c": "800A", "CurrencyIsoCode": "USD"},
                         "salesforce_opportunities"))
        for record_id, payload, table in rows:
            con.execute(f"insert into raw.{table} values (?, ?, ?, null, false, '2026-01-02', "
                        "null)", [record_id, json.dumps(payload), f"hash:{record_id}"])
    return path


@pytest.mark.parametrize(("amount", "amendment", "expected"), [
    # by hand: 10 seats x 1,200.00 = 12,000.00 original; +1 seat for half a year = 1,000.00
    (12000.00, 1000.00, ("tied", 1_200_000, 1_200_000, 100_000, 100_000)),
    # sales edited the deal to 12,500.00 after it was contracted: q2c holds 12,000.00
    (12500.00, 1000.00, ("original_differs", 1_250_000, 1_200_000, 100_000, 100_000)),
    # the amendment opportunity says 1,200.00 but the delta line is 1,000.00
    (12000.00, 1200.00, ("amendments_differs", 1_200_000, 1_200_000, 120_000, 100_000)),
    # Salesforce states no Amount for the deal: not "tied" by a null comparison
    (None, 1000.00, ("no_amount", None, 1_200_000, 100_000, 100_000)),
])
def test_contracts_tie_to_what_salesforce_states_the_deal_is_worth(
        tmp_path, amount, amendment, expected):
    path = _contract_warehouse(tmp_path, amount, amendment)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("Q2C_DUCKDB_PATH", str(path))
        result = invoke_dbt(["build", "--select", "+fct_contract_source_tieout+"], tmp_path)
    tied = expected[0] == "tied"
    assert failed_tests(result) == ({} if tied else {"assert_contracts_tie_to_salesforce": 1})
    rows = query(path, """
        select contract_id, tieout_status, source_original_minor, canonical_original_minor,
               source_amendments_minor, canonical_amendments_minor
        from marts.fct_contract_source_tieout order by contract_id""")
    assert rows[0] == ("sf:800A", *expected)
    # the contracts Salesforce names no opportunity for are shown, not compared
    assert {r[1] for r in rows[1:]} == {"no_opportunity"}
