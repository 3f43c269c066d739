"""Validation splits candidates into accepted rows and a quarantine, losing nothing."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
import pytest

from q2c_pipeline.schemas import CANONICAL_TABLES
from q2c_pipeline.schemas.validation import validate_canonical
from q2c_pipeline_tests.fixtures.canonical_rows import canonical_company


@pytest.mark.parametrize("table", sorted(CANONICAL_TABLES))
def test_each_schema_accepts_the_fixture_company(table):
    model, _ = CANONICAL_TABLES[table]
    frame = canonical_company()[table]
    columns = [c for c in model.to_schema().columns if c in frame]
    validated = model.validate(frame[columns])
    assert len(validated) == len(frame)


# table -> (column to break, bad value, failing column pandera must name)
BREAKS = {
    "legal_entities": ("functional_currency", "usd", "functional_currency"),
    "chart_of_accounts": ("gl_account", None, "gl_account"),
    "accounting_periods": ("period", "2026-13", "period"),
    "tax_codes": ("rate_bps", 20_000, "rate_bps"),
    "fx_rates": ("rate", "1,25", "rate"),
    "products": ("revenue_pattern", "monthly", "revenue_pattern"),
    "customers": ("currency", "US", "currency"),
    "contracts": ("version", 0, "version"),
    "contract_lines": ("revenue_pattern", "weekly", "revenue_pattern"),
    "invoices": ("status", "draft", "status"),
    "invoice_lines": ("tax_amount", -1, "tax_amount"),
    "credit_notes": ("amount", 0, "amount"),
    "payments": ("amount", -5, "amount"),
    "refunds": ("currency", "usd", "currency"),
    "invoice_events": ("event", "paid", "event"),
    "usage": ("quantity", -1.0, "quantity"),
}


@pytest.mark.parametrize("table", sorted(CANONICAL_TABLES))
def test_each_schema_rejects_a_broken_frame_naming_the_column(table):
    model, _ = CANONICAL_TABLES[table]
    column, value, failing = BREAKS[table]
    frame = canonical_company()[table]
    frame = frame[[c for c in model.to_schema().columns if c in frame]].copy()
    frame[column] = frame[column].astype(object)
    frame.loc[0, column] = value
    with pytest.raises(pa.errors.SchemaErrors) as err:
        model.validate(frame, lazy=True)
    assert failing in set(err.value.failure_cases["column"].dropna())


def test_clean_company_passes_whole_with_an_empty_quarantine():
    result = validate_canonical(canonical_company())
    assert result.quarantine.empty
    for table, counts in result.counts().items():
        assert counts["rows_in"] == counts["accepted"], table


def _quarantined(result, table):
    q = result.quarantine
    return q[q["source_table"] == table]


def test_unknown_product_code_holds_the_whole_contract_and_its_billing():
    company = canonical_company()
    company["contract_lines"].loc[1, "product_code"] = "LEGACY-XYZ"
    result = validate_canonical(company)
    lines = _quarantined(result, "contract_lines").set_index("record_id")
    assert lines.loc["sf:a0A000000000002AAA", "rule"] == "unknown_product_code"
    assert lines.loc["sf:a0A000000000002AAA", "field"] == "product_code"
    assert lines.loc["sf:a0A000000000002AAA", "owner"] == "sales_ops"
    assert "LEGACY-XYZ" in lines.loc["sf:a0A000000000002AAA", "reason"]
    # the sibling line and the contract are held, and so is everything billed against it
    assert lines.loc["sf:a0A000000000001AAA", "rule"] == "held_by_upstream"
    assert set(_quarantined(result, "contracts")["rule"]) == {"held_by_upstream"}
    assert set(_quarantined(result, "invoices")["rule"]) == {"held_by_upstream"}
    assert len(_quarantined(result, "payments")) == 1
    assert result.accepted["contracts"].empty
    for table, counts in result.counts().items():
        assert counts["rows_in"] == counts["accepted"] + counts["quarantined"], table


def test_customer_without_legal_entity_is_quarantined_for_controllership():
    company = canonical_company()
    company["customers"].loc[0, "legal_entity"] = ""
    result = validate_canonical(company)
    row = _quarantined(result, "customers").iloc[0]
    assert (row["rule"], row["field"], row["owner"]) == (
        "missing_legal_entity_mapping", "legal_entity", "controllership"
    )
    assert '"customer_id"' in row["payload"]
    assert result.accepted["invoices"].empty  # its invoice is held, not posted


def test_invoice_currency_differing_from_contract_is_quarantined_for_billing_ops():
    company = canonical_company()
    company["invoices"].loc[0, "currency"] = "EUR"
    result = validate_canonical(company)
    row = _quarantined(result, "invoices").iloc[0]
    assert (row["rule"], row["field"], row["owner"]) == (
        "currency_mismatch", "currency", "billing_ops"
    )
    assert "'EUR'" in row["reason"] and "'USD'" in row["reason"]
    assert result.accepted["contracts"].shape[0] == 1  # the contract itself still posts


def test_duplicated_invoice_id_quarantines_every_copy():
    company = canonical_company()
    dup = company["invoices"].iloc[[0]].copy()
    dup["due_date"] = pd.Timestamp("2026-02-28")
    company["invoices"] = pd.concat([company["invoices"], dup], ignore_index=True)
    result = validate_canonical(company)
    rows = _quarantined(result, "invoices")
    assert list(rows["rule"]) == ["duplicate_id", "duplicate_id"]
    assert result.counts()["invoices"] == {"rows_in": 2, "accepted": 0, "quarantined": 2}


def test_negative_quantity_on_a_non_amendment_line_is_quarantined():
    company = canonical_company()
    company["contract_lines"].loc[0, "quantity"] = -2.0
    result = validate_canonical(company)
    row = _quarantined(result, "contract_lines").set_index("record_id").loc["sf:a0A000000000001AAA"]
    assert (row["rule"], row["field"]) == ("negative_quantity", "quantity")


def test_negative_quantity_on_an_amendment_delta_is_accepted():
    company = canonical_company()
    lines = company["contract_lines"]
    delta = lines.iloc[[0]].copy()
    delta["contract_line_id"] = "sf:a0A000000000003AAA"
    delta["quantity"] = -2.0
    delta["amount"] = -120000
    delta["revises_line_id"] = "sf:a0A000000000001AAA"
    delta["effective_date"] = pd.Timestamp("2026-07-01")
    company["contract_lines"] = pd.concat([lines, delta], ignore_index=True)
    result = validate_canonical(company)
    assert result.quarantine.empty


def test_timestamp_columns_come_from_the_pandera_models():
    from q2c_pipeline.schemas import timestamp_columns

    assert timestamp_columns("contract_lines") == ["service_start", "service_end", "effective_date"]
    assert timestamp_columns("customers") == []


def test_an_invoice_posts_whole_a_bad_line_holds_it_its_other_lines_and_its_payments():
    # why: with one line quarantined, the invoice and its payment still posted: AR of one line
    # against the whole payment, the customer's receivable negative, every check green
    company = canonical_company()
    lines = company["invoice_lines"]
    invoice = lines["invoice_id"].iloc[0]
    first = lines.index[lines["invoice_id"] == invoice][0]
    lines.loc[first, "tax_amount"] = -1
    result = validate_canonical(company)
    q = result.quarantine
    held = q[q["rule"] == "held_by_upstream"]
    assert invoice not in set(result.accepted["invoices"]["invoice_id"])
    assert set(held.loc[held["source_table"] == "invoices", "record_id"]) == {invoice}
    paid = set(company["payments"].loc[company["payments"]["invoice_id"] == invoice,
                                       "payment_id"])
    assert paid and paid <= set(held.loc[held["source_table"] == "payments", "record_id"])
    assert not set(result.accepted["payments"]["invoice_id"].dropna()) & {invoice}
    for table, counts in result.counts().items():
        assert counts["rows_in"] == counts["accepted"] + counts["quarantined"], table


def test_a_line_with_an_unreadable_date_holds_its_contract_as_invalid_format():
    company = canonical_company()
    lines = company["contract_lines"].assign(_date_problem=None)
    lines.loc[0, "_date_problem"] = "field 'SBQQ__EndDate__c' value '03/31/2026' is not an ISO"
    company["contract_lines"] = lines
    result = validate_canonical(company)
    q = result.quarantine
    root = q[(q["source_table"] == "contract_lines") & (q["rule"] == "invalid_format")]
    assert len(root) == 1 and "03/31/2026" in root["reason"].iloc[0]
    assert "YYYY-MM-DD" in root["reason"].iloc[0] and root["owner"].iloc[0] == "sales_ops"
    contract = lines.loc[0, "contract_id"]
    assert contract not in set(result.accepted["contracts"]["contract_id"])


def test_a_contract_in_a_currency_with_no_fx_rate_is_held_for_controllership_not_a_crash():
    # why: one contract in KWD for a GBP entity stopped the whole close (no FX rate KWD->GBP)
    from datetime import date

    from q2c_pipeline.core.policy import Policy
    from q2c_pipeline.engine import run_engine

    company = canonical_company()
    contracts = company["contracts"]
    contracts.loc[0, "currency"] = "KWD"
    result = validate_canonical(company)
    q = result.quarantine
    root = q[q["rule"] == "missing_fx_rate"]
    assert list(root["source_table"]) == ["contracts"]
    assert root["owner"].iloc[0] == "controllership"
    assert "no FX rate KWD->" in root["reason"].iloc[0] and "fx_rates" in root["reason"].iloc[0]
    run_engine(result.accepted, Policy(), date(2026, 12, 31))  # the rest books


def test_refunds_adding_up_to_more_than_their_payment_are_held_for_billing_ops():
    # why: a refund ten times its payment passed silently and changed the numbers
    company = canonical_company()
    refunds, payments = company["refunds"], company["payments"]
    refund = refunds.index[refunds["payment_id"].notna()][0]
    paid = int(payments.set_index("payment_id").loc[refunds.loc[refund, "payment_id"],
                                                      "amount"])
    refunds.loc[refund, "amount"] = 10 * paid
    q = validate_canonical(company).quarantine.set_index("record_id")
    refund_row = q.loc[refunds.loc[refund, "refund_id"]]
    assert (refund_row["rule"], refund_row["owner"]) == ("refund_exceeds_payment", "billing_ops")
    assert f"add up to {10 * paid}, more than it paid ({paid}" in refund_row["reason"]
