"""The sample company: deterministic, wire-shaped, linked across systems, bad records planted."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pandera.errors
import pytest

from q2c_pipeline.schemas import CANONICAL_TABLES
from q2c_pipeline.sources import billing, erp, salesforce, usage
from q2c_pipeline.sources.sample_company import (
    COMPANY_STORY,
    ERP_TABLES,
    SALESFORCE_OBJECTS,
    STRIPE_RESOURCES,
    generate_company,
)
from q2c_pipeline.sources.snapshot import SnapshotSource
from q2c_pipeline.sources.wire import PAYLOAD_COLUMN, checksum_salesforce_id

KEY_PREFIXES = {"Account": "001", "Product2": "01t", "Opportunity": "006",
                "OpportunityLineItem": "00k", "Contract": "800", "SBQQ__Subscription__c": "a0X"}


@pytest.fixture(scope="module")
def company_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("company")
    generate_company(root, seed=7, scale=1)
    return root


@pytest.fixture(scope="module")
def source(company_dir) -> SnapshotSource:
    return SnapshotSource(company_dir)


def _by_name(records: list[dict], name: str, key: str = "Name") -> dict:
    return next(record for record in records if record[key] == name)


def _usage_events(counts: dict[str, int]) -> int:
    return sum(n for name, n in counts.items() if name.startswith("usage/"))


def _unix(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def test_same_seed_and_scale_give_byte_identical_files(company_dir, tmp_path):
    summary = generate_company(tmp_path, seed=7, scale=1)

    first = sorted(p.relative_to(company_dir) for p in company_dir.rglob("*") if p.is_file())
    second = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert first == second
    for relative in first:
        assert (company_dir / relative).read_bytes() == (tmp_path / relative).read_bytes(), relative
    assert summary == SnapshotSource(tmp_path).manifest()["counts"]


def test_scale_two_has_more_customers_invoices_and_usage(source, tmp_path):
    bigger = generate_company(tmp_path, seed=7, scale=2)
    smaller = source.manifest()["counts"]

    for name in ["salesforce/Account.json", "stripe/invoices.json", "erp/customers.csv"]:
        assert bigger[name] > smaller[name], name
    assert _usage_events(bigger) > _usage_events(smaller)


def test_every_file_is_written_and_the_manifest_is_pinned_to_as_of(source, company_dir):
    manifest = source.manifest()

    assert (manifest["seed"], manifest["scale"], manifest["as_of"]) == (7, 1, "2026-06-30")
    assert manifest["extracted_at"] == "2026-07-01T00:30:00Z"
    assert manifest["stripe_api_version"] == billing.STRIPE_API_VERSION
    for name in SALESFORCE_OBJECTS:
        assert (company_dir / "salesforce" / f"{name}.json").is_file()
    for name in STRIPE_RESOURCES:
        assert (company_dir / "stripe" / f"{name}.json").is_file()
    for name in ERP_TABLES:
        assert not source.erp_table(name).empty, name
    assert 12 <= len(source.salesforce_records("Account")) <= 20
    assert "Northwind Analytics" in COMPANY_STORY


def test_salesforce_ids_have_key_prefixes_and_valid_checksums(source):
    for object_name, prefix in KEY_PREFIXES.items():
        for record in source.salesforce_records(object_name):
            record_id = record["Id"]
            assert len(record_id) == 18 and record_id.startswith(prefix)
            assert checksum_salesforce_id(record_id[:15]) == record_id
            assert record["attributes"]["type"] == object_name
            assert record["SystemModstamp"].endswith(".000+0000")


def test_usage_has_a_few_thousand_events_over_many_daily_files(source):
    days = source.usage_days()
    total = sum(len(source.usage_events(day)) for day in days)

    assert days[0] == "2026-04-01" and days[-1] == "2026-06-30" and len(days) == 91
    assert 2000 <= total <= 6000
    frame = source.usage_events(days[0])
    assert str(frame["timestamp"].dt.tz) == "UTC"
    assert frame["quantity"].dtype == "int64"


def test_bad_record_a_subscription_for_a_product_missing_from_the_erp_catalog(source):
    catalog = set(source.erp_table("products")["product_code"])
    subscriptions = source.salesforce_records("SBQQ__Subscription__c")
    unknown = [s for s in subscriptions if s["SBQQ__ProductCode__c"] not in catalog]

    assert [s["SBQQ__ProductCode__c"] for s in unknown] == ["LEGACY-SUPPORT"]
    account = _by_name(source.salesforce_records("Account"), "Umbrella Supplies")
    assert unknown[0]["SBQQ__Account__c"] == account["Id"]
    assert any(p["ProductCode"] == "LEGACY-SUPPORT" for p in source.salesforce_records("Product2"))


def test_bad_record_b_account_with_contract_and_invoices_but_no_erp_customer(source):
    account = _by_name(source.salesforce_records("Account"), "Shadow Labs Inc")
    erp_accounts = set(source.erp_table("customers")["sf_account_id"])
    invoices = [i for i in source.billing_objects("invoices")
                if i["customer"] == account["Stripe_Customer_Id__c"]]

    assert account["Id"] not in erp_accounts
    assert any(c["AccountId"] == account["Id"] for c in source.salesforce_records("Contract"))
    assert len(invoices) >= 3
    assert len(erp_accounts) == len(source.salesforce_records("Account")) - 1


def test_bad_record_c_one_invoice_currency_differs_from_its_contract(source):
    contract_currency = {c["Id"]: c["CurrencyIsoCode"].lower()
                         for c in source.salesforce_records("Contract")}
    mismatched = [i for i in source.billing_objects("invoices")
                  if i["currency"] != contract_currency[i["metadata"]["sf_contract_id"]]]

    assert len(mismatched) == 1
    assert (mismatched[0]["customer_name"], mismatched[0]["currency"]) == (
        "Britannia Tea Co", "usd")


def test_bad_record_d_an_invoice_id_appears_twice_with_different_content(source):
    invoices = source.billing_objects("invoices")
    ids = pd.Series([i["id"] for i in invoices])
    duplicated = ids[ids.duplicated()].tolist()

    assert len(duplicated) == 1
    copies = [i for i in invoices if i["id"] == duplicated[0]]
    assert copies[0]["customer_name"] == "Hooli Holdings"
    assert copies[0]["total"] != copies[1]["total"]


def test_bad_record_e_negative_quantity_on_a_row_that_is_not_an_amendment(source):
    rows = [s for s in source.salesforce_records("SBQQ__Subscription__c")
            if s["SBQQ__Quantity__c"] < 0 and s["SBQQ__RevisedSubscription__c"] is None]

    assert len(rows) == 1 and rows[0]["SBQQ__Quantity__c"] == -2.0
    account = _by_name(source.salesforce_records("Account"), "Vandelay Industries")
    assert rows[0]["SBQQ__Account__c"] == account["Id"]


def test_cross_system_links_resolve(source):
    accounts = {a["Id"]: a for a in source.salesforce_records("Account")}
    contracts = {c["Id"] for c in source.salesforce_records("Contract")}
    subscription_rows = {s["Id"] for s in source.salesforce_records("SBQQ__Subscription__c")}
    customers = {c["id"]: c for c in source.billing_objects("customers")}

    unbilled = [a["Name"] for a in accounts.values() if a["Stripe_Customer_Id__c"] is None]
    assert unbilled == ["Pied Piper Inc"]  # activated, never set up in Stripe
    for account in accounts.values():
        if account["Stripe_Customer_Id__c"] is None:
            continue
        customer = customers[account["Stripe_Customer_Id__c"]]
        assert customer["metadata"]["sf_account_id"] == account["Id"]
    for subscription in source.billing_objects("subscriptions"):
        assert subscription["metadata"]["sf_contract_id"] in contracts
        for item in subscription["items"]["data"]:
            assert item["metadata"]["sf_subscription_id"] in subscription_rows
    for invoice in source.billing_objects("invoices"):
        assert invoice["metadata"]["sf_contract_id"] in contracts
        assert invoice["customer"] in customers
        for line in invoice["lines"]["data"]:
            assert line["metadata"]["sf_subscription_id"] in subscription_rows
    invoice_ids = {i["id"] for i in source.billing_objects("invoices")}
    for payment in source.billing_objects("invoice_payments"):
        assert payment["invoice"] in invoice_ids
    for event in source.usage_events("2026-05-15").to_dict("records"):
        assert event["sf_subscription_id"] in subscription_rows
        assert event["stripe_customer_id"] in customers


def test_late_onboarding_invoice_is_finalized_in_the_closed_period(source):
    periods = source.erp_table("accounting_periods")
    closed = periods[periods["status"] == "closed"]
    late = [i for i in source.billing_objects("invoices")
            if (i["status_transitions"]["finalized_at"] or 2**40) < _unix("2026-01-01T00:00:00")]

    assert sorted(closed["period"]) == ["2025-12", "2025-12"]
    assert set(closed["closed_at"]) == {"2026-01-05T00:00:00Z"}
    assert [(i["customer_name"], i["billing_reason"]) for i in late] == [
        ("Northwind Analytics", "manual")]
    assert late[0]["status_transitions"]["finalized_at"] == _unix("2025-12-30T10:00:00")


def test_seat_upgrade_has_a_cpq_delta_row_and_stripe_proration_lines(source):
    account = _by_name(source.salesforce_records("Account"), "Contoso Retail")
    rows = [s for s in source.salesforce_records("SBQQ__Subscription__c")
            if s["SBQQ__Account__c"] == account["Id"]]
    delta = next(s for s in rows if s["SBQQ__RevisedSubscription__c"])
    # 5 seats from 2026-03-16 to 2026-12-31: 9 months + 16/31 of March at 100.00 = 951.61 each.
    assert (delta["SBQQ__Quantity__c"], delta["SBQQ__NetPrice__c"]) == (5.0, 951.61)
    assert (delta["SBQQ__StartDate__c"], delta["SBQQ__EndDate__c"]) == ("2026-03-16", "2026-12-31")

    invoices = [i for i in source.billing_objects("invoices")
                if i["customer"] == account["Stripe_Customer_Id__c"]]
    april = next(i for i in invoices if i["period_start"] == _unix("2026-04-01T00:00:00"))
    prorations = [line for line in april["lines"]["data"]
                  if line["parent"]["subscription_item_details"]["proration"]]
    # unused 10 seats x 10000 x 16/31 = 51612.9 -> 51613; remaining 15 x 10000 x 16/31 = 77419.35
    assert [line["amount"] for line in prorations] == [-51613, 77419]
    assert {(line["period"]["start"], line["period"]["end"]) for line in prorations} == {
        (_unix("2026-03-16T00:00:00"), _unix("2026-04-01T00:00:00"))}
    may = next(i for i in invoices if i["period_start"] == _unix("2026-05-01T00:00:00"))
    assert may["lines"]["data"][0]["quantity"] == 15


def test_cancellation_is_a_negative_delta_and_a_canceled_subscription(source):
    account = _by_name(source.salesforce_records("Account"), "Fabrikam Media")
    delta = next(s for s in source.salesforce_records("SBQQ__Subscription__c")
                 if s["SBQQ__Account__c"] == account["Id"] and s["SBQQ__RevisedSubscription__c"])
    subscription = next(s for s in source.billing_objects("subscriptions")
                        if s["customer"] == account["Stripe_Customer_Id__c"])

    assert (delta["SBQQ__Quantity__c"], delta["SBQQ__TerminatedDate__c"]) == (-8.0, "2026-05-01")
    assert delta["SBQQ__NetPrice__c"] == 720.0  # 9 remaining months x 80.00
    assert subscription["status"] == "canceled"
    assert subscription["ended_at"] == _unix("2026-05-01T00:00:00")


def test_usage_invoice_line_bills_exactly_the_metered_events_of_its_period(source):
    account = _by_name(source.salesforce_records("Account"), "Northwind Analytics")
    april = pd.concat([source.usage_events(day) for day in source.usage_days()
                       if day.startswith("2026-04")])
    april = april[april["stripe_customer_id"] == account["Stripe_Customer_Id__c"]]
    may_invoice = next(i for i in source.billing_objects("invoices")
                       if i["customer"] == account["Stripe_Customer_Id__c"]
                       and i["period_start"] == _unix("2026-05-01T00:00:00"))
    usage_line = next(line for line in may_invoice["lines"]["data"]
                      if "API call" in line["description"])

    assert usage_line["quantity"] == int(april["quantity"].sum())
    assert usage_line["amount"] == 2 * usage_line["quantity"]
    assert usage_line["period"]["start"] == _unix("2026-04-01T00:00:00")


def test_settlements_include_open_invoices_a_refund_and_issued_and_void_credit_notes(source):
    invoices = source.billing_objects("invoices")
    statuses = pd.Series([i["status"] for i in invoices]).value_counts()
    notes = source.billing_objects("credit_notes")

    assert statuses["paid"] > 0.8 * len(invoices)
    assert statuses["open"] >= 1 and statuses["uncollectible"] == 1
    assert sorted(n["status"] for n in notes) == ["issued", "issued", "void"]
    issued = next(n for n in notes if n["reason"] == "product_unsatisfactory"
                  and n["status"] == "issued")
    # half of Globex's March seat line (25 x 92.50 = 2312.50) + 6.25% TX tax on 1156.25
    assert (issued["subtotal"], issued["total"]) == (115625, 115625 + 7227)
    refunds = {r["id"]: r for r in source.billing_objects("refunds")}
    [seat_month] = [r for r in refunds.values() if r["metadata"].get("invoice_id")]
    assert seat_month["amount"] == 8640  # one Initech seat-month, 72.00 net + 20% VAT
    assert seat_month["metadata"]["invoice_id"] in {i["id"] for i in invoices}
    # Stark cancels its prepaid year from April: 9 unused months x 10 seats x 100.00 = 9,000.00
    # + 7.25% CA tax 652.50, credited after payment and refunded (the note names its refund)
    [cancel] = [n for n in notes if n["reason"] == "order_change"]
    assert (cancel["type"], cancel["subtotal"], cancel["total"]) == (
        "post_payment", 900_000, 965_250)
    [link] = cancel["refunds"]
    assert refunds[link["refund"]]["amount"] == link["amount_refunded"] == 965_250


def test_intercompany_deal_is_sold_by_us01_and_invoiced_in_usd_by_uk01(source):
    account = _by_name(source.salesforce_records("Account"), "Wayne Enterprises")
    contracts = source.salesforce_records("Contract")
    contract = next(c for c in contracts if c["AccountId"] == account["Id"])
    master = source.erp_table("customers").set_index("sf_account_id").loc[account["Id"]]
    invoices = [i for i in source.billing_objects("invoices")
                if i["customer"] == account["Stripe_Customer_Id__c"]]

    assert (contract["Q2C_Legal_Entity__c"], contract["CurrencyIsoCode"]) == ("US01", "USD")
    assert [c["Q2C_Legal_Entity__c"] for c in contracts if c is not contract] == [None] * 19
    assert (master["legal_entity"], master["currency"], master["tax_region"]) == (
        "UK01", "USD", "GB-VAT20")
    assert [i["period_start"] for i in invoices] == sorted(
        (_unix(f"2026-0{month}-01T00:00:00") for month in range(2, 7)), reverse=True)
    assert {(i["currency"], i["status"]) for i in invoices} == {("usd", "paid")}
    # 6 seats x 100.00 net + 20% VAT included = 720.00 gross, of which 120.00 VAT
    assert {(i["total"], i["total_taxes"][0]["amount"]) for i in invoices} == {(72000, 12000)}

    mapped = _map_snapshot(source)
    contract_rows = mapped["contracts"].query("source_id == @contract['Id']")
    invoice_rows = mapped["invoices"].query("contract_id == @contract_rows.contract_id.iloc[0]")
    assert set(contract_rows["legal_entity"]) == {"US01"}
    assert set(invoice_rows["legal_entity"]) == {"UK01"} and len(invoice_rows) == 5
    with_customer = mapped["contracts"].merge(mapped["customers"], on="customer_id",
                                              suffixes=("", "_customer"))
    differing = with_customer[
        with_customer["legal_entity"] != with_customer["legal_entity_customer"]]
    assert list(differing["source_id"]) == [contract["Id"]]


def _map_snapshot(source: SnapshotSource) -> dict[str, pd.DataFrame]:
    sf, stripe = source.salesforce_records, source.billing_objects
    out = {
        "legal_entities": erp.map_legal_entities(source.erp_table("legal_entities")),
        "chart_of_accounts": erp.map_chart_of_accounts(source.erp_table("chart_of_accounts")),
        "accounting_periods": erp.map_accounting_periods(source.erp_table("accounting_periods")),
        "tax_codes": erp.map_tax_codes(source.erp_table("tax_codes")),
        "fx_rates": erp.map_fx_rates(source.erp_table("fx_rates")),
        "products": erp.map_products(source.erp_table("products")),
    }
    out["customers"] = salesforce.map_customers(sf("Account"), source.erp_table("customers"))
    out["contracts"] = salesforce.map_contracts(
        sf("Contract"), sf("SBQQ__Subscription__c"), out["customers"])
    out["contract_lines"] = salesforce.map_contract_lines(
        sf("SBQQ__Subscription__c"), sf("Contract"), out["products"], product2=sf("Product2"))
    invoices, _drafts = billing.split_drafts(stripe("invoices"))
    out["invoices"] = billing.map_invoices(invoices, out["customers"])
    out["invoice_lines"] = billing.map_invoice_lines(invoices, stripe("products"))
    out["credit_notes"] = billing.map_credit_notes(
        stripe("credit_notes"), invoices, out["customers"])
    out["payments"] = billing.map_payments(stripe("invoice_payments"), invoices, out["customers"])
    out["refunds"] = billing.map_refunds(stripe("refunds"), stripe("invoice_payments"), invoices)
    out["invoice_events"] = billing.map_invoice_events(invoices)
    events = pd.concat([source.usage_events(day) for day in source.usage_days()],
                       ignore_index=True)
    out["usage"] = usage.map_usage(
        events, billing.map_usage_prices(stripe("prices"), stripe("products"),
                                         stripe("subscriptions")), out["customers"],
        out["contract_lines"], out["invoice_lines"])
    return out


def test_whole_snapshot_maps_and_only_the_planted_bad_records_fail_validation(source):
    mapped = _map_snapshot(source)
    failing: dict[str, set] = {}
    for table, frame in mapped.items():
        model = CANONICAL_TABLES[table][0]
        required = [c for c, col in model.to_schema().columns.items() if col.required]
        # a mapper may carry private columns for validation: why a usage event has no price,
        # why an invoice or credit note is not in the pinned API version's shape
        private = [c for c in frame.columns if c.startswith("_") and c != PAYLOAD_COLUMN]
        # ...and the optional columns its source states (what Stripe says was overpaid)
        optional = [c for c, col in model.to_schema().columns.items()
                    if not col.required and c in frame.columns]
        assert list(frame.columns) == [*required, *optional, *private, PAYLOAD_COLUMN], table
        try:
            model.validate(frame.drop(columns=[*private, PAYLOAD_COLUMN]), lazy=True)
        except pandera.errors.SchemaErrors as error:
            rows = error.failure_cases["index"].dropna().astype(int)
            failing[table] = set(frame.loc[rows, "source_id"])

    customers = mapped["customers"].set_index("source_id")
    shadow = customers.index[customers["name"] == "Shadow Labs Inc"][0]
    negative = mapped["contract_lines"].query("quantity < 0 and revises_line_id.isna()")
    duplicate = mapped["invoices"]["source_id"][mapped["invoices"]["invoice_id"].duplicated()]
    assert failing.pop("customers") == {shadow}
    assert failing.pop("contract_lines") == set(negative["source_id"])
    assert failing.pop("invoices") == set(duplicate)
    assert len(failing.pop("invoice_lines")) >= 1  # the duplicate invoice's repeated lines
    assert failing == {}
    # rows in = rows out, plus the one draft set aside as pending
    assert len(mapped["invoices"]) + 1 == len(source.billing_objects("invoices"))
    assert len(mapped["contract_lines"]) == len(
        source.salesforce_records("SBQQ__Subscription__c"))
    assert mapped["usage"]["invoice_line_id"].notna().sum() > 0


def test_snapshot_source_gives_empty_results_for_missing_files(tmp_path):
    empty = SnapshotSource(tmp_path / "nothing-here")

    assert empty.salesforce_records("Account") == []
    assert empty.billing_objects("invoices") == []
    assert empty.usage_days() == []
    assert empty.usage_events("2026-01-01").empty
    assert empty.erp_table("customers").empty
    assert empty.manifest() == {}


def test_snapshot_erp_tables_are_all_text(source):
    customers = source.erp_table("customers")

    assert set(customers.dtypes.astype(str)) == {"object"}
    assert json.loads(json.dumps(source.salesforce_records("Contract")[0]))["ContractTerm"] == 12


def test_contosos_july_renewal_is_a_draft_stripe_finalizes_after_the_extraction(source):
    manifest = source.manifest()
    drafts = [i for i in source.billing_objects("invoices") if i["status"] == "draft"]
    assert [(i["customer_name"], i["billing_reason"], i["number"]) for i in drafts] == [
        ("Contoso Retail", "subscription_cycle", None)]
    draft = drafts[0]
    # drafted at midnight 1 July, finalizing at 01:00; the extraction ran at 00:30
    assert draft["created"] == _unix("2026-07-01T00:00:00")
    assert draft["automatically_finalizes_at"] == _unix("2026-07-01T01:00:00")
    assert manifest["extracted_at"] == "2026-07-01T00:30:00Z"
    assert draft["status_transitions"]["finalized_at"] is None
    # July's 15 seats at 100.00, Oregon: no sales tax; nothing paid against a draft
    assert (draft["total"], draft["amount_paid"]) == (150_000, 0)
    assert not [p for p in source.billing_objects("invoice_payments")
                if p["invoice"] == draft["id"]]
