"""An entity's accounting dates are its local dates (legal_entities.timezone; empty = UTC).

The same Stripe-billed year, once for a UTC entity and once for a Los Angeles one. Stripe sends
instants: the invoice finalized at 03:00 UTC on 1 February is 19:00 on 31 January in Los
Angeles (PST, UTC-8), the payment at 02:00 UTC on 1 April is 19:00 on 31 March (PDT, UTC-7).
The service year is a date range and is the same in both; only the bookings move.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from q2c_pipeline.engine import run_engine
from q2c_pipeline.interchange import read_interchange
from q2c_pipeline.sources.salesforce import local_date


def _folder(tmp_path, timezone: str):
    folder = tmp_path / (timezone.replace("/", "_") or "utc")
    folder.mkdir()
    (folder / "legal_entities.csv").write_text(
        f"legal_entity,functional_currency,timezone\nUS01,USD,{timezone}\n")
    (folder / "customers.csv").write_text(
        "customer_id,name,legal_entity,currency\nstripe:cus_1,Customer,US01,USD\n")
    (folder / "invoices.csv").write_text(
        "invoice_id,customer_id,currency,finalized_at,legal_entity\n"
        "stripe:in_1,stripe:cus_1,USD,2026-02-01T03:00:00Z,US01\n")
    (folder / "invoice_lines.csv").write_text(
        "invoice_line_id,invoice_id,amount,tax_amount,tax_inclusive,service_start,service_end\n"
        "stripe:il_1,stripe:in_1,365.00,0,false,2026-01-01,2027-01-01\n")
    (folder / "payments.csv").write_text(
        "payment_id,paid_at,amount,currency,invoice_id\n"
        "stripe:py_1,2026-04-01T02:00:00Z,365.00,USD,stripe:in_1\n")
    return folder


def _by_period(result, account: str) -> dict[str, int]:
    lines = result.journal_lines[result.journal_lines["account"] == account]
    net = (lines["debit"] - lines["credit"]).groupby(lines["period"]).sum()
    return {period: int(value) for period, value in net.items() if value}


def _run(tmp_path, timezone: str):
    tables, policy = read_interchange(_folder(tmp_path, timezone))
    return run_engine(tables, policy, date(2026, 12, 31))


def test_a_los_angeles_entity_books_the_invoice_and_the_cash_on_its_own_dates(tmp_path):
    utc = _run(tmp_path, "")
    la = _run(tmp_path, "America/Los_Angeles")
    # the receivable: billed 365.00, collected 365.00
    assert _by_period(utc, "AccountsReceivable") == {"2026-02": 36_500, "2026-04": -36_500}
    assert _by_period(la, "AccountsReceivable") == {"2026-01": 36_500, "2026-03": -36_500}
    assert _by_period(la, "Cash") == {"2026-03": 36_500}
    # the service year is the same 365 days at 1.00 a day in both; what moves is when January's
    # 31.00 is booked: in January where the invoice is a January one, with February's 28.00 in
    # February's close where it is not (59.00)
    utc_revenue, la_revenue = _by_period(utc, "Revenue"), _by_period(la, "Revenue")
    assert (la_revenue["2026-01"], la_revenue["2026-02"]) == (-3_100, -2_800)
    assert "2026-01" not in utc_revenue and utc_revenue["2026-02"] == -5_900
    assert sum(la_revenue.values()) == sum(utc_revenue.values()) == -36_500
    assert {p: v for p, v in la_revenue.items() if p >= "2026-03"} == {
        p: v for p, v in utc_revenue.items() if p >= "2026-03"}


def test_an_unknown_time_zone_is_refused_naming_the_entity(tmp_path):
    import pytest

    from q2c_pipeline.interchange import InterchangeError

    with pytest.raises(InterchangeError) as refused:
        _run(tmp_path, "America/Los Angeles")
    text = str(refused.value)
    assert "legal_entities" in text and "timezone" in text


def test_a_contract_activated_late_evening_pacific_is_signed_that_day_not_the_next():
    # 31 December 18:00 PST = 1 January 02:00 UTC
    moment = pd.Timestamp("2027-01-01T02:00:00")
    assert local_date(moment, "America/Los_Angeles") == pd.Timestamp("2026-12-31")
    assert local_date(moment, None) == pd.Timestamp("2027-01-01")


def test_the_salesforce_mapper_signs_a_late_evening_activation_on_the_entitys_day():
    from q2c_pipeline.sources.salesforce import contract_zones, map_contracts

    contract = {"Id": "800Hp00000LATEPIAA", "AccountId": "001Hp00000LATEPIAA",
                "ActivatedDate": "2027-01-01T02:00:00.000+0000", "StartDate": "2027-01-01",
                "CurrencyIsoCode": "USD", "Status": "Activated"}
    customers = pd.DataFrame({"customer_id": ["sf:001Hp00000LATEPIAA"],
                              "legal_entity": ["US01"]})
    entities = pd.DataFrame({"legal_entity": ["US01", "UK01"],
                             "timezone": ["America/Los_Angeles", None]})
    zones = contract_zones([contract], customers, entities)
    assert zones == {"800Hp00000LATEPIAA": "America/Los_Angeles"}
    local = map_contracts([contract], customers=customers, zones=zones)
    utc = map_contracts([contract], customers=customers)
    assert str(local["signed_date"].iloc[0].date()) == "2026-12-31"
    assert str(utc["signed_date"].iloc[0].date()) == "2027-01-01"
