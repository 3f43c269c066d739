"""A tiny hand-written warehouse for the dbt tests: canonical and finance tables in DuckDB.

Three legal entities (US01 in USD, EU01 in EUR, UK01 in GBP), two currencies in EU01 (EUR and
USD), an invoice with exclusive tax, one with inclusive tax, recognition through deferred and
through unbilled revenue, payments (one a one-time charge without invoice), a credit note and three
quarantined records. UK01 holds a USD contract that exercises the rest of the contract position:
revenue ahead of billing into ContractAsset (one entry dated in the closed 2025-12, posted into
2026-01) and UnbilledAccountsReceivable, their month-end remeasurement into GBP and its day-1
reversal, an invoice, a cancellation that reclassifies deferred revenue to RefundLiability, and a
refund that settles it. finance.contract_positions holds the revenue layer's positions, consistent
with the ledger. Money is integer minor units.
"""

from __future__ import annotations

import json

import duckdb

DEBIT_NORMAL_ACCOUNTS = (
    "AccountsReceivable", "UnbilledAccountsReceivable", "ContractAsset", "Cash",
    "IntercompanyReceivable", "CreditNotes", "Refunds", "Voids", "BadDebt", "CreditLossExpense",
    "FxLoss",
)

CANONICAL_DDL = """
create schema canonical;
create schema finance;
create schema ledger;
create table ledger.erp_outbox (
    journal_key varchar, journal_id varchar, legal_entity varchar, period varchar,
    entry_date date, status varchar, reason varchar);
create table ledger.decisions (
    decision_seq bigint, decision_id varchar, decided_at timestamp, actor varchar,
    role varchar, action varchar, legal_entity varchar, period varchar, exception_id varchar,
    source_table varchar, record_id varchar, rule varchar, owner varchar, reason varchar,
    detail varchar);
create table ledger.close_runs (recorded_at timestamp, run_id varchar, as_of varchar);
create table canonical.legal_entities (
    legal_entity varchar, functional_currency varchar, country varchar, calendar varchar);
create table canonical.chart_of_accounts (
    legal_entity varchar, account varchar, gl_account varchar, gl_name varchar,
    department varchar);
create table canonical.accounting_periods (
    legal_entity varchar, period varchar, status varchar, closed_at timestamp);
create table canonical.tax_codes (
    tax_code varchar, country varchar, rate_bps bigint, is_inclusive boolean);
create table canonical.fx_rates (
    rate_date timestamp, from_currency varchar, to_currency varchar, rate varchar);
create table canonical.customers (
    customer_id varchar, name varchar, legal_entity varchar, currency varchar,
    parent_customer_id varchar, country varchar, tax_region varchar, erp_customer_id varchar,
    billing_customer_id varchar, source_system varchar, source_id varchar,
    correlation_id varchar);
create table canonical.products (
    product_code varchar, revenue_pattern varchar, name varchar, family varchar,
    ssp_amount bigint, ssp_currency varchar);
create table canonical.contracts (
    contract_id varchar, customer_id varchar, legal_entity varchar, currency varchar,
    signed_date timestamp, transaction_price bigint, version bigint,
    amends_contract_id varchar, status varchar, source_system varchar, source_id varchar,
    correlation_id varchar, effective_date timestamp);
create table canonical.contract_lines (
    contract_line_id varchar, contract_id varchar, product_code varchar, quantity double,
    amount bigint, ssp_amount bigint, service_start timestamp, service_end timestamp,
    revenue_pattern varchar, revises_line_id varchar, effective_date timestamp,
    allocation_group varchar, source_system varchar, source_id varchar,
    correlation_id varchar, modification_treatment varchar);
create table canonical.invoices (
    invoice_id varchar, customer_id varchar, currency varchar, finalized_at timestamp,
    contract_id varchar, legal_entity varchar, due_date timestamp, billing_system varchar,
    status varchar, source_system varchar, source_id varchar, correlation_id varchar);
create table canonical.invoice_lines (
    invoice_line_id varchar, invoice_id varchar, amount bigint, contract_line_id varchar,
    product_code varchar, quantity double, tax_amount bigint, tax_inclusive boolean,
    service_start timestamp, service_end timestamp, is_proration boolean,
    created_at timestamp, source_system varchar, source_id varchar, correlation_id varchar);
create table canonical.credit_notes (
    credit_note_id varchar, issued_at timestamp, amount bigint, currency varchar,
    invoice_id varchar, customer_id varchar, invoice_line_id varchar, tax_amount bigint,
    reason varchar, voided_at timestamp, source_system varchar, source_id varchar,
    correlation_id varchar);
create table canonical.payments (
    payment_id varchar, paid_at timestamp, amount bigint, currency varchar,
    invoice_id varchar, customer_id varchar, product_code varchar, source_system varchar,
    source_id varchar, correlation_id varchar);
create table canonical.refunds (
    refund_id varchar, invoice_id varchar, refunded_at timestamp, amount bigint,
    currency varchar, payment_id varchar, source_system varchar, source_id varchar,
    correlation_id varchar);
create table canonical.invoice_events (
    invoice_id varchar, occurred_at timestamp, event varchar, source_system varchar,
    source_id varchar, correlation_id varchar);
create table canonical.usage (
    usage_id varchar, occurred_at timestamp, quantity double, amount bigint,
    currency varchar, contract_line_id varchar, customer_id varchar, product_code varchar,
    invoice_line_id varchar, source_system varchar, source_id varchar,
    correlation_id varchar);
create table canonical.quarantine (
    source_system varchar, source_table varchar, record_id varchar, field varchar,
    rule varchar, reason varchar, owner varchar, correlation_id varchar,
    legal_entity varchar, customer_id varchar, payload varchar, effective_date varchar,
    exception_id varchar);
create table finance.allocation (
    contract_id varchar, contract_line_id varchar, ssp_amount bigint,
    transaction_price bigint, allocated_amount bigint, currency varchar,
    legal_entity varchar, schedule_version bigint);
create table finance.revenue_schedule (
    source_type varchar, source_id varchar, contract_id varchar, legal_entity varchar,
    period varchar, amount bigint, currency varchar, amount_functional bigint,
    schedule_version bigint, customer_id varchar, correlation_id varchar,
    treatment varchar);
create table finance.journal_lines (
    journal_id varchar, journal_key varchar, line_number bigint, legal_entity varchar,
    period varchar, entry_date timestamp, account varchar, debit bigint, credit bigint,
    currency varchar, debit_functional bigint, credit_functional bigint,
    source_type varchar, source_id varchar, correlation_id varchar, memo varchar,
    functional_currency varchar, source_line_id varchar, original_date timestamp,
    contract_id varchar, customer_id varchar);
create table finance.account_balances (
    legal_entity varchar, period varchar, account varchar, currency varchar,
    movement bigint, closing_balance bigint, movement_functional bigint,
    closing_balance_functional bigint);
create table finance.contract_positions (
    revenue_contract_id varchar, legal_entity varchar, period varchar, currency varchar,
    deferred_revenue bigint, contract_asset bigint, unbilled_receivable bigint,
    refund_liability bigint, net_contract_position bigint);
"""

# chart of accounts order: GL number = entity prefix + index (appended accounts keep the others')
ACCOUNTS = (
    "AccountsReceivable", "UnbilledAccountsReceivable", "Cash", "CreditNotes", "Revenue",
    "DeferredRevenue", "TaxLiability", "ContractAsset", "RefundLiability", "FxLoss",
)

# (journal_id, legal_entity, period, entry_date, source_type, source_id, currency,
#  functional_currency, correlation_id, [(account, debit, credit, debit_func, credit_func)])
JOURNALS = [
    # US01: a 12,000.00 USD annual subscription billed up front with 8% tax on top.
    ("J-INV-1", "US01", "2026-01", "2026-01-01", "invoice", "INV-1", "USD", "USD", "sf:800A", [
        ("AccountsReceivable", 1_296_000, 0, 1_296_000, 0),
        ("DeferredRevenue", 0, 1_200_000, 0, 1_200_000),
        ("TaxLiability", 0, 96_000, 0, 96_000),
    ]),
    ("J-REV-1", "US01", "2026-01", "2026-01-31", "revenue", "CL-1", "USD", "USD", "sf:800A", [
        ("DeferredRevenue", 100_000, 0, 100_000, 0),
        ("Revenue", 0, 100_000, 0, 100_000),
    ]),
    ("J-REV-2", "US01", "2026-02", "2026-02-28", "revenue", "CL-1", "USD", "USD", "sf:800A", [
        ("DeferredRevenue", 100_000, 0, 100_000, 0),
        ("Revenue", 0, 100_000, 0, 100_000),
    ]),
    # A 1,200.00 + 96.00 tax credit note: 100.00 already recognized goes to contra revenue.
    ("J-CN-1", "US01", "2026-02", "2026-02-15", "credit_note", "CN-1", "USD", "USD", "sf:800A", [
        ("CreditNotes", 10_000, 0, 10_000, 0),
        ("DeferredRevenue", 110_000, 0, 110_000, 0),
        ("TaxLiability", 9_600, 0, 9_600, 0),
        ("AccountsReceivable", 0, 129_600, 0, 129_600),
    ]),
    # A one-time charge of 50.00 paid without an invoice: billed through cash, recognized at once.
    ("J-PAY-3", "US01", "2026-02", "2026-02-20", "payment", "PAY-3", "USD", "USD", "PAY-3", [
        ("Cash", 5_000, 0, 5_000, 0),
        ("DeferredRevenue", 0, 5_000, 0, 5_000),
    ]),
    ("J-REV-7", "US01", "2026-02", "2026-02-20", "revenue", "PAY-3", "USD", "USD", "PAY-3", [
        ("DeferredRevenue", 5_000, 0, 5_000, 0),
        ("Revenue", 0, 5_000, 0, 5_000),
    ]),
    ("J-PAY-1", "US01", "2026-03", "2026-03-10", "payment", "PAY-1", "USD", "USD", "sf:800A", [
        ("Cash", 1_166_400, 0, 1_166_400, 0),
        ("AccountsReceivable", 0, 1_166_400, 0, 1_166_400),
    ]),
    # EU01: 500.00 EUR recognized in February before it is billed (through unbilled AR) ...
    ("J-REV-4", "EU01", "2026-02", "2026-02-28", "revenue", "CL-2", "EUR", "EUR", "sf:800B", [
        ("UnbilledAccountsReceivable", 50_000, 0, 50_000, 0),
        ("Revenue", 0, 50_000, 0, 50_000),
    ]),
    # ... then an invoice of 1,500.00 EUR, 250.00 tax included: clears unbilled, defers 750.00.
    ("J-INV-2", "EU01", "2026-02", "2026-02-28", "invoice", "INV-2", "EUR", "EUR", "sf:800B", [
        ("AccountsReceivable", 150_000, 0, 150_000, 0),
        ("UnbilledAccountsReceivable", 0, 50_000, 0, 50_000),
        ("DeferredRevenue", 0, 75_000, 0, 75_000),
        ("TaxLiability", 0, 25_000, 0, 25_000),
    ]),
    ("J-REV-6", "EU01", "2026-03", "2026-03-31", "revenue", "CL-2", "EUR", "EUR", "sf:800B", [
        ("DeferredRevenue", 25_000, 0, 25_000, 0),
        ("Revenue", 0, 25_000, 0, 25_000),
    ]),
    ("J-PAY-2", "EU01", "2026-03", "2026-03-12", "payment", "PAY-2", "EUR", "EUR", "sf:800B", [
        ("Cash", 150_000, 0, 150_000, 0),
        ("AccountsReceivable", 0, 150_000, 0, 150_000),
    ]),
    # EU01 also bills in USD: 100.00 USD at 0.92 = 92.00 EUR, recognized at once.
    ("J-INV-3", "EU01", "2026-03", "2026-03-05", "invoice", "INV-3", "USD", "EUR", "INV-3", [
        ("AccountsReceivable", 10_000, 0, 9_200, 0),
        ("DeferredRevenue", 0, 10_000, 0, 9_200),
    ]),
    ("J-REV-5", "EU01", "2026-03", "2026-03-05", "revenue", "IL-3", "USD", "EUR", "INV-3", [
        ("DeferredRevenue", 10_000, 0, 9_200, 0),
        ("Revenue", 0, 10_000, 0, 9_200),
    ]),
    # UK01 (GBP) contract sf:800D in USD, booked at 0.80 GBP per USD except where noted.
    # 200.00 USD recognized on 2025-12-31 ahead of a right to bill (a delivered item the discount
    # was allocated away from: contract asset); 2025-12 is closed, so it posts on 2026-01-01.
    ("J-REV-D0", "UK01", "2026-01", "2026-01-01", "revenue", "CL-4", "USD", "GBP", "sf:800D", [
        ("ContractAsset", 20_000, 0, 16_000, 0),
        ("Revenue", 0, 20_000, 0, 16_000),
    ]),
    # 300.00 USD of service delivered in January and billable, not yet invoiced.
    ("J-REV-D1", "UK01", "2026-01", "2026-01-31", "revenue", "CL-5", "USD", "GBP", "sf:800D", [
        ("UnbilledAccountsReceivable", 30_000, 0, 24_000, 0),
        ("Revenue", 0, 30_000, 0, 24_000),
    ]),
    # Month-end remeasurement at 0.78: unbilled 24,000 -> 23,400, contract asset 16,000 ->
    # 15,600 GBP (functional amounts only) ...
    ("J-FX-D1", "UK01", "2026-01", "2026-01-31", "fx_remeasurement", "UK01:2026-01", "USD",
     "GBP", "UK01:2026-01", [
        ("FxLoss", 0, 0, 1_000, 0),
        ("UnbilledAccountsReceivable", 0, 0, 0, 600),
        ("ContractAsset", 0, 0, 0, 400),
    ]),
    # ... reversed on the first day of February.
    ("J-FX-D1R", "UK01", "2026-02", "2026-02-01", "fx_remeasurement", "UK01:2026-01", "USD",
     "GBP", "UK01:2026-01", [
        ("UnbilledAccountsReceivable", 0, 0, 600, 0),
        ("ContractAsset", 0, 0, 400, 0),
        ("FxLoss", 0, 0, 0, 1_000),
    ]),
    # Invoice of 600.00 USD, no tax: clears the 300.00 unbilled, defers 300.00.
    ("J-INV-4", "UK01", "2026-02", "2026-02-10", "invoice", "INV-4", "USD", "GBP", "sf:800D", [
        ("AccountsReceivable", 60_000, 0, 48_000, 0),
        ("UnbilledAccountsReceivable", 0, 30_000, 0, 24_000),
        ("DeferredRevenue", 0, 30_000, 0, 24_000),
    ]),
    # A cancellation leaves 100.00 USD billed beyond what the contract is now worth: reclassified
    # from deferred revenue to the refund liability (ASC 606-10-32-10).
    ("J-POS-D", "UK01", "2026-02", "2026-02-20", "contract_position", "sf:800D", "USD", "GBP",
     "sf:800D", [
        ("DeferredRevenue", 10_000, 0, 8_000, 0),
        ("RefundLiability", 0, 10_000, 0, 8_000),
    ]),
    ("J-PAY-4", "UK01", "2026-02", "2026-02-25", "payment", "PAY-4", "USD", "GBP", "sf:800D", [
        ("Cash", 60_000, 0, 48_000, 0),
        ("AccountsReceivable", 0, 60_000, 0, 48_000),
    ]),
    # A 120.00 USD refund: 100.00 settles the refund liability, 20.00 is a price concession that
    # comes off the deferred revenue.
    ("J-RFD-1", "UK01", "2026-03", "2026-03-05", "refund", "RFD-1", "USD", "GBP", "sf:800D", [
        ("RefundLiability", 10_000, 0, 8_000, 0),
        ("DeferredRevenue", 2_000, 0, 1_600, 0),
        ("Cash", 0, 12_000, 0, 9_600),
    ]),
    ("J-REV-D2", "UK01", "2026-03", "2026-03-31", "revenue", "CL-5", "USD", "GBP", "sf:800D", [
        ("DeferredRevenue", 10_000, 0, 8_000, 0),
        ("Revenue", 0, 10_000, 0, 8_000),
    ]),
]

# Journals posted into a later period than they are dated: journal_id -> original_date.
ORIGINAL_DATES = {"J-REV-D0": "2025-12-31"}

# The revenue layer's closing positions (finance.contract_positions), per contract and month:
# (revenue_contract_id, legal_entity, period, currency, deferred_revenue, contract_asset,
#  unbilled_receivable, refund_liability, net_contract_position = deferred - contract asset).
# Summed per entity, currency and month they equal the ledger's closing balances above.
CONTRACT_POSITIONS = [
    # 1,200,000 billed - 100,000 recognized
    ("sf:800A", "US01", "2026-01", "USD", 1_100_000, 0, 0, 0, 1_100_000),
    # - 100,000 recognized - 110,000 credited (the deferred share of the credit note)
    ("sf:800A", "US01", "2026-02", "USD", 890_000, 0, 0, 0, 890_000),
    ("sf:800A", "US01", "2026-03", "USD", 890_000, 0, 0, 0, 890_000),
    # the one-time charge: billed and recognized the same day
    ("PAY-3", "US01", "2026-02", "USD", 0, 0, 0, 0, 0),
    # 50,000 unbilled cleared by the invoice, which defers 75,000; then 25,000 recognized
    ("sf:800B", "EU01", "2026-02", "EUR", 75_000, 0, 0, 0, 75_000),
    ("sf:800B", "EU01", "2026-03", "EUR", 50_000, 0, 0, 0, 50_000),
    ("INV-3", "EU01", "2026-03", "USD", 0, 0, 0, 0, 0),
    # as dated: the contract asset exists at the end of the closed 2025-12
    ("sf:800D", "UK01", "2025-12", "USD", 0, 20_000, 0, 0, -20_000),
    ("sf:800D", "UK01", "2026-01", "USD", 0, 20_000, 30_000, 0, -20_000),
    # invoice: unbilled 30,000 -> 0, deferred 30,000; cancellation: 10,000 to refund liability
    ("sf:800D", "UK01", "2026-02", "USD", 20_000, 20_000, 0, 10_000, 0),
    # refund: refund liability 10,000 -> 0, deferred - 2,000; recognized - 10,000
    ("sf:800D", "UK01", "2026-03", "USD", 8_000, 20_000, 0, 0, -12_000),
]


def journal_line_rows(journals=JOURNALS) -> list[tuple]:
    """Flatten JOURNALS into finance.journal_lines rows (column order of CANONICAL_DDL)."""
    rows = []
    for (journal_id, entity, period, entry_date, source_type, source_id, currency, functional,
         correlation_id, lines) in journals:
        original_date = ORIGINAL_DATES.get(journal_id, entry_date)
        for number, (account, debit, credit, debit_f, credit_f) in enumerate(lines, start=1):
            rows.append((
                journal_id, f"key:{journal_id}", number, entity, period, entry_date, account,
                debit, credit, currency, debit_f, credit_f, source_type, source_id,
                correlation_id, f"{source_type} {source_id}", functional, None, original_date,
                None, None,
            ))
    return rows


def load_warehouse(path: str) -> None:
    """Create the canonical and finance schemas in a new DuckDB file and fill them."""
    with duckdb.connect(path) as con:
        con.execute(CANONICAL_DDL)
        con.executemany(
            "insert into canonical.legal_entities values (?, ?, ?, ?)",
            [("US01", "USD", "US", None), ("EU01", "EUR", "IE", None),
             ("UK01", "GBP", "GB", None)],
        )
        con.executemany(
            "insert into canonical.chart_of_accounts values (?, ?, ?, ?, ?)",
            [
                (entity, account, f"{prefix}{index:02d}", account, None)
                for entity, prefix in (("US01", "4"), ("EU01", "7"), ("UK01", "8"))
                for index, account in enumerate(ACCOUNTS)
            ],
        )
        con.executemany(
            "insert into canonical.accounting_periods values (?, ?, ?, ?)",
            [(entity, period, "open", None)
             for entity in ("US01", "EU01", "UK01")
             for period in ("2026-01", "2026-02", "2026-03")]
            + [("UK01", "2025-12", "closed", "2026-01-05")],
        )
        con.executemany(
            "insert into canonical.fx_rates values (?, ?, ?, ?)",
            [("2026-01-01", "USD", "EUR", "0.92"), ("2025-12-01", "USD", "GBP", "0.80"),
             ("2026-01-31", "USD", "GBP", "0.78"), ("2026-02-01", "USD", "GBP", "0.80")],
        )
        con.executemany(
            "insert into canonical.customers values (?, ?, ?, ?, null, null, null, null, ?, ?, ?,"
            " ?)",
            [
                ("sf:001A", "Acme Inc", "US01", "USD", "stripe:cus_A1", "salesforce", "001A",
                 "sf:001A"),
                ("sf:001B", "Beta GmbH", "EU01", "EUR", "stripe:cus_B1", "salesforce", "001B",
                 "sf:001B"),
                ("sf:001C", "Gamma Ltd", "EU01", "USD", None, "salesforce", "001C", "sf:001C"),
                ("sf:001D", "Delta Ltd", "UK01", "USD", None, "salesforce", "001D", "sf:001D"),
            ],
        )
        con.executemany(
            "insert into canonical.contracts values (?, ?, ?, ?, ?, null, 1, null, 'Activated',"
            " 'salesforce', ?, ?, null)",
            [
                ("sf:800A", "sf:001A", "US01", "USD", "2026-01-01", "800A", "sf:800A"),
                ("sf:800B", "sf:001B", "EU01", "EUR", "2026-02-01", "800B", "sf:800B"),
                ("sf:800D", "sf:001D", "UK01", "USD", "2025-12-01", "800D", "sf:800D"),
            ],
        )
        con.executemany(
            "insert into canonical.invoices values (?, ?, ?, ?, ?, ?, null, 'stripe', ?,"
            " 'stripe', ?, ?)",
            [
                ("INV-1", "sf:001A", "USD", "2026-01-01", "sf:800A", "US01", "paid", "in_1",
                 "sf:800A"),
                # no legal_entity on the invoice: it comes from the customer
                ("INV-2", "sf:001B", "EUR", "2026-02-28 09:30:00", "sf:800B", None, "paid",
                 "in_2", "sf:800B"),
                ("INV-3", "sf:001C", "USD", "2026-03-05", None, "EU01", "open", "in_3", "INV-3"),
                ("INV-4", "sf:001D", "USD", "2026-02-10", "sf:800D", "UK01", "paid", "in_4",
                 "sf:800D"),
            ],
        )
        con.executemany(
            "insert into canonical.invoice_lines values (?, ?, ?, ?, null, 1, ?, ?, null, null,"
            " false, null, 'stripe', ?, ?)",
            [
                ("IL-1", "INV-1", 1_200_000, "CL-1", 96_000, False, "il_1", "sf:800A"),
                ("IL-2", "INV-2", 150_000, "CL-2", 25_000, True, "il_2", "sf:800B"),
                ("IL-3", "INV-3", 10_000, None, 0, False, "il_3", "INV-3"),
                ("IL-4", "INV-4", 60_000, "CL-5", 0, False, "il_4", "sf:800D"),
            ],
        )
        con.execute(
            "insert into canonical.credit_notes values ('CN-1', '2026-02-15', 120000, 'USD',"
            " 'INV-1', 'sf:001A', null, 9600, 'discount', null, 'stripe', 'cn_1', 'sf:800A')"
        )
        con.execute(
            "insert into canonical.payments values ('PAY-1', '2026-03-10', 1166400, 'USD',"
            " 'INV-1', 'sf:001A', null, 'stripe', 'py_1', 'sf:800A'),"
            " ('PAY-2', '2026-03-12', 150000, 'EUR', 'INV-2', 'sf:001B', null, 'stripe', 'py_2',"
            " 'sf:800B'),"
            " ('PAY-3', '2026-02-20', 5000, 'USD', null, 'sf:001A', null, 'stripe', 'py_3',"
            " 'PAY-3'),"
            " ('PAY-4', '2026-02-25', 60000, 'USD', 'INV-4', 'sf:001D', null, 'stripe', 'py_4',"
            " 'sf:800D')"
        )
        con.execute(
            "insert into canonical.refunds values ('RFD-1', 'INV-4', '2026-03-05', 12000, 'USD',"
            " 'PAY-4', 'stripe', 're_1', 'sf:800D')"
        )
        con.executemany(
            "insert into canonical.quarantine (source_system, source_table, record_id, field, "
            "rule, reason, owner, correlation_id, payload, exception_id) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?, md5(? || ?))",
            [
                # attributed through the Stripe customer id -> Beta GmbH -> EU01
                ("stripe", "invoices", "stripe:in_Q", "tax_amount", "negative_tax_amount",
                 "invoice stripe:in_Q: tax_amount -5 < 0", "billing_ops", None,
                 '{"id": "in_Q", "customer": "cus_B1", "tax": -5}', "stripe:in_Q", "tax"),
                # the account is unknown: nobody to attribute it to
                ("salesforce", "contracts", "sf:800Z", "AccountId", "unknown_customer",
                 "contract sf:800Z: AccountId 001ZZZ not found", "sales_ops", "sf:800Z",
                 '{"Id": "800Z", "AccountId": "001ZZZ"}', "sf:800Z", "contract"),
                # payload is not JSON; the correlation id names contract sf:800A -> US01
                ("salesforce", "contract_lines", "sf:802Q", "payload", "unparseable_record",
                 "contract line sf:802Q: payload is not JSON", "controllership", "sf:800A",
                 "<not json>", "sf:802Q", "line"),
            ],
        )
        con.executemany(
            "insert into finance.revenue_schedule values (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?,"
            " 'ratable')",
            [
                ("contract_line", "CL-1", "sf:800A", "US01", "2026-01", 100_000, "USD", 100_000,
                 "sf:001A", "sf:800A"),
                ("contract_line", "CL-1", "sf:800A", "US01", "2026-02", 100_000, "USD", 100_000,
                 "sf:001A", "sf:800A"),
                ("payment", "PAY-3", None, "US01", "2026-02", 5_000, "USD", 5_000,
                 "sf:001A", "PAY-3"),
                ("contract_line", "CL-2", "sf:800B", "EU01", "2026-02", 50_000, "EUR", 50_000,
                 "sf:001B", "sf:800B"),
                ("contract_line", "CL-2", "sf:800B", "EU01", "2026-03", 25_000, "EUR", 25_000,
                 "sf:001B", "sf:800B"),
                ("invoice_line", "IL-3", None, "EU01", "2026-03", 10_000, "USD", 9_200,
                 "sf:001C", "INV-3"),
                ("contract_line", "CL-4", "sf:800D", "UK01", "2025-12", 20_000, "USD", 16_000,
                 "sf:001D", "sf:800D"),
                ("contract_line", "CL-5", "sf:800D", "UK01", "2026-01", 30_000, "USD", 24_000,
                 "sf:001D", "sf:800D"),
                ("contract_line", "CL-5", "sf:800D", "UK01", "2026-03", 10_000, "USD", 8_000,
                 "sf:001D", "sf:800D"),
            ],
        )
        con.executemany(
            "insert into finance.journal_lines values"
            " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            journal_line_rows(),
        )
        write_account_balances(con)
        con.executemany(
            "insert into finance.contract_positions values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            CONTRACT_POSITIONS,
        )
        # discounts taken off lines (none in this warehouse)
        for table in ("invoice_lines", "credit_notes"):
            con.execute(f"alter table canonical.{table} add column discount_amount bigint "
                        "default 0")
        # what Stripe itself said of each invoice (raw landing, payload as received)
        con.execute("create schema raw")
        con.execute("""
            create table raw.stripe_invoices (
                record_id varchar, payload varchar, content_hash varchar,
                source_modstamp timestamp, is_deleted boolean, extracted_at timestamp,
                request_id varchar)
        """)
        con.executemany(
            "insert into raw.stripe_invoices values (?, ?, ?, null, false, '2026-04-01', null)",
            [(record_id, json.dumps(payload, sort_keys=True), f"hash:{record_id}")
             for record_id, payload in STRIPE_INVOICES],
        )
        # INV-3 bills metered API calls: Stripe's price, its meter's daily counts, q2c's rating
        # (and Salesforce's own opportunities, of which this warehouse holds none)
        for table, rows in (("stripe_prices", [USAGE_PRICE]),
                            ("stripe_billing_meter_event_summaries", METER_SUMMARIES),
                            ("salesforce_opportunities", []), ("salesforce_contracts", [])):
            con.execute(f"create table raw.{table} as select * from raw.stripe_invoices "
                        "where false")
            if not rows:
                continue
            con.executemany(
                f"insert into raw.{table} values (?, ?, ?, null, false, '2026-04-01', null)",
                [(row["id"], json.dumps(row, sort_keys=True), f"hash:{row['id']}")
                 for row in rows])
        con.executemany(
            "insert into canonical.usage values (?, ?, ?, ?, 'USD', null, 'sf:001C', "
            "'API-CALLS', 'IL-3', 'usage', ?, 'INV-3')",
            [(f"usage:{event}", when, quantity, amount, event)
             for event, when, quantity, amount in USAGE_EVENTS],
        )


def _stripe_invoice(invoice_id: str, currency: str, subtotal: int, tax: int, total: int,
                    paid: int, status: str, inclusive: bool = False) -> tuple[str, dict]:
    behavior = "inclusive" if inclusive else "exclusive"
    return invoice_id, {
        "id": invoice_id, "object": "invoice", "currency": currency, "status": status,
        "subtotal": subtotal, "total_discount_amounts": [],
        "total_taxes": [{"amount": tax, "tax_behavior": behavior}] if tax else [],
        "total": total, "amount_paid": paid, "amount_remaining": 0 if paid else total,
    }


# Stripe's own totals of the four invoices: INV-1 12,000.00 + 960.00 tax, paid 11,664.00 (after
# its 1,296.00 credit note); INV-2 1,500.00 with 250.00 tax inside; INV-3 100.00 open; INV-4
# 600.00 paid.
STRIPE_INVOICES = [
    _stripe_invoice("in_1", "usd", 1_200_000, 96_000, 1_296_000, 1_166_400, "paid"),
    _stripe_invoice("in_2", "eur", 150_000, 25_000, 150_000, 150_000, "paid", inclusive=True),
    ("in_3", {**_stripe_invoice("in_3", "usd", 10_000, 0, 10_000, 0, "open")[1],
              "customer": "cus_C", "lines": {"object": "list", "has_more": False, "data": [{
                  "id": "il_3", "object": "line_item", "amount": 10_000, "quantity": 5_000,
                  "period": {"start": 1772323200, "end": 1775001600},  # March 2026
                  "pricing": {"type": "price_details",
                              "price_details": {"price": "price_api", "product": "prod_api"}},
              }]}}),
    _stripe_invoice("in_4", "usd", 60_000, 0, 60_000, 60_000, "paid"),
]


# INV-3's line bills 5,000 API calls at USD 0.02 = 100.00. Stripe's meter counted 3,000 on
# 3 March and 2,000 on 20 March; q2c rated two events of those sizes at 60.00 and 40.00.
USAGE_PRICE = {"id": "price_api", "object": "price", "currency": "usd", "product": "prod_api",
               "billing_scheme": "per_unit", "unit_amount": 2, "unit_amount_decimal": "2",
               "recurring": {"usage_type": "metered", "interval": "month", "interval_count": 1,
                             "meter": "mtr_api"}}
METER_SUMMARIES = [
    {"id": f"mtrusum_{day}", "object": "billing.meter_event_summary", "meter": "mtr_api",
     "customer": "cus_C", "aggregated_value": value, "start_time": start,
     "end_time": start + 86_400}
    for day, start, value in (("0303", 1772496000, 3_000), ("0320", 1773964800, 2_000))
]
USAGE_EVENTS = [("mev_1", "2026-03-03 10:00:00", 3_000.0, 6_000),
                ("mev_2", "2026-03-20 16:00:00", 2_000.0, 4_000)]


def write_account_balances(con: duckdb.DuckDBPyConnection) -> None:
    """Rebuild finance.account_balances from the journal lines as the ledger engine does.

    One row per entity, period, account and currency with movement (signed by the account's
    normal balance); periods without movement have no row, so dbt must carry balances forward.
    """
    debit_normal = ", ".join(f"'{account}'" for account in DEBIT_NORMAL_ACCOUNTS)
    con.execute("delete from finance.account_balances")
    con.execute(f"""
        insert into finance.account_balances
        with movements as (
            select
                legal_entity, period, account, currency,
                sum(case when account in ({debit_normal}) then debit - credit
                    else credit - debit end) as movement,
                sum(case when account in ({debit_normal})
                    then debit_functional - credit_functional
                    else credit_functional - debit_functional end) as movement_functional
            from finance.journal_lines
            group by legal_entity, period, account, currency
        )
        select
            legal_entity, period, account, currency, movement,
            sum(movement) over balance_to_date,
            movement_functional,
            sum(movement_functional) over balance_to_date
        from movements
        window balance_to_date as (
            partition by legal_entity, account, currency order by period
        )
    """)
