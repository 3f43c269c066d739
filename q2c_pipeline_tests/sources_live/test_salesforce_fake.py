"""The Salesforce fake's restricted SOQL and its error answers, as the real client sees them."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from q2c_pipeline.sources.salesforce_client import build_salesforce
from q2c_pipeline_tests.fakes.soql import BoolOp, Comparison, SoqlError, parse_soql
from q2c_pipeline_tests.sources_live.conftest import password_config


def test_and_binds_tighter_than_or():
    query = parse_soql("SELECT Id FROM Contract WHERE A = 1 OR B = 2 AND C = 3 ORDER BY Id DESC")

    assert query.where == BoolOp("OR", (
        Comparison("A", "=", Decimal(1)),
        BoolOp("AND", (Comparison("B", "=", Decimal(2)), Comparison("C", "=", Decimal(3)))),
    ))
    assert query.order_by[0].descending and query.order_by[0].nulls_last


def test_literals_parse_to_typed_values():
    query = parse_soql(
        "SELECT Id FROM X WHERE S >= 2024-04-01T10:15:00+02:00 AND D < 2024-03-31 "
        "AND N IN ('a', 'it\\'s') AND B = false AND Z != null LIMIT 5")

    values = [part.value for part in query.where.parts]
    assert values == [datetime(2024, 4, 1, 8, 15, tzinfo=timezone.utc), date(2024, 3, 31),
                      ("a", "it's"), False, None]
    assert query.limit == 5


@pytest.mark.parametrize("soql", [
    "SELECT FROM Contract", "SELECT Id FROM Contract GROUP BY Id",
    "SELECT Id FROM Contract WHERE Status LIKE 'A%'", "SELECT a.b.c FROM Contract",
])
def test_unsupported_soql_is_rejected(soql):
    with pytest.raises(SoqlError):
        parse_soql(soql)


@pytest.fixture
def sf(sf_server):
    return build_salesforce(password_config(), sf_server.session())


def test_where_order_and_limit_select_the_expected_rows(sf):
    rows = sf.query_all(
        "SELECT Id, ContractTerm FROM Contract WHERE (ContractTerm > 12 OR CurrencyIsoCode = "
        "'EUR') AND SystemModstamp >= 2026-01-05T00:00:00Z ORDER BY ContractTerm DESC, Id LIMIT 5"
    )["records"]

    assert [(r["Id"], r["ContractTerm"]) for r in rows] == [
        ("800000000000004AAA", 24), ("800000000000003AAA", 12)]


def test_query_hides_deleted_rows_that_query_all_returns(sf):
    live = sf.query("SELECT COUNT() FROM Contract")
    everything = sf.query("SELECT COUNT() FROM Contract", include_deleted=True)

    assert (live["totalSize"], everything["totalSize"]) == (4, 5)


@pytest.mark.parametrize(("soql", "code"), [
    ("SELECT Bogus__c FROM Contract", "INVALID_FIELD"),
    ("SELECT Id FROM Nope__c", "INVALID_TYPE"),
    ("SELECT Id FROM Contract WHERE", "MALFORMED_QUERY"),
])
def test_bad_queries_answer_400_with_the_salesforce_error_code(sf, soql, code):
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.query(soql)
    assert raised.value.content[0]["errorCode"] == code


def test_a_stale_query_locator_is_refused(sf):
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.query_more("/services/data/v59.0/query/01gD99999999999999-2", identifier_is_url=True)
    assert raised.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_limit_info_header_is_parsed_by_the_client(sf):
    sf.query("SELECT COUNT() FROM Account")
    sf.query("SELECT COUNT() FROM Account")

    assert sf.api_usage["api-usage"].used == 2
    assert sf.api_usage["api-usage"].total == 15000
