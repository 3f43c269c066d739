"""simple-salesforce against the Salesforce fake over HTTP: logins, paging, Bulk 2.0, incremental
windows, deletes, session expiry, limit and server-error bursts, orgs without CPQ or currencies."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from simple_salesforce.exceptions import SalesforceAuthenticationFailed

from q2c_pipeline.sources.retry import RetriesExhausted
from q2c_pipeline.sources.salesforce import org_currency
from q2c_pipeline.sources.salesforce_client import (
    AuthMode,
    IncompleteExtraction,
    SalesforceApiBudgetExhausted,
    SalesforceExtractor,
    SalesforceObjectUnavailable,
    parse_user_info,
)
from q2c_pipeline_tests.fakes.salesforce_fake import SalesforceFakeOrg
from q2c_pipeline_tests.sources_live.conftest import password_config

CONTRACT_FIELDS = ["ContractNumber", "Account.Name", "ContractTerm", "CurrencyIsoCode",
                   "SBQQ__RenewalTerm__c", "StartDate"]
ALL_CONTRACTS = ["800000000000005AAA", "800000000000001AAA", "800000000000002AAA",
                 "800000000000003AAA", "800000000000004AAA"]  # by (SystemModstamp, Id)


def _query_calls(org: SalesforceFakeOrg) -> list[str]:
    return [path for method, path in org.request_log if "/query" in path]


def test_rest_extraction_pages_through_every_contract_in_rest_shape(sf_server):
    extractor = SalesforceExtractor(password_config(), sf_server.session())

    result = extractor.extract("Contract", CONTRACT_FIELDS)

    assert [r["Id"] for r in result.records] == ALL_CONTRACTS
    assert result.reported_total == 5 and result.path == "rest"
    # 1 COUNT() + first page + 2 nextRecordsUrl pages of 2 rows each
    assert len(_query_calls(sf_server.org)) == 4
    assert len(result.request_ids) == 1
    first = result.records[1]
    assert first["attributes"] == {
        "type": "Contract", "url": "/services/data/v59.0/sobjects/Contract/800000000000001AAA"}
    assert first["Account"]["Name"] == "Acme"
    assert first["Account"]["attributes"]["type"] == "Account"
    assert first["ContractTerm"] == 12
    assert first["SBQQ__RenewalTerm__c"] == Decimal("12.0")
    assert first["SystemModstamp"] == "2026-01-05T10:00:00.000+0000"
    assert result.new_high_water_mark == datetime(2026, 1, 6, 8, 0)


def test_deleted_contract_arrives_flagged_and_listed(sf_server):
    extractor = SalesforceExtractor(password_config(), sf_server.session())

    result = extractor.extract("Contract", CONTRACT_FIELDS)

    assert result.deleted_ids == ["800000000000005AAA"]
    assert result.records[0]["IsDeleted"] is True


def test_incremental_window_refetches_rows_stamped_exactly_at_the_mark(sf_server):
    extractor = SalesforceExtractor(password_config(), sf_server.session())

    result = extractor.extract("Contract", CONTRACT_FIELDS,
                               high_water_mark=datetime(2026, 1, 5, 10, 15))

    # contracts 2 and 3 share the boundary stamp 10:15:00 and must not be lost
    assert [r["Id"] for r in result.records] == [
        "800000000000002AAA", "800000000000003AAA", "800000000000004AAA"]
    assert result.reported_total == 3
    assert result.new_high_water_mark == datetime(2026, 1, 6, 8, 0)


def test_empty_incremental_window_keeps_the_previous_mark(sf_server):
    extractor = SalesforceExtractor(password_config(), sf_server.session())
    mark = datetime(2026, 2, 1)

    result = extractor.extract("Contract", CONTRACT_FIELDS, high_water_mark=mark)

    assert result.records == [] and result.new_high_water_mark == mark


@pytest.mark.parametrize(
    ("auth_mode", "settings"),
    [
        (AuthMode.CLIENT_CREDENTIALS, {"consumer_key": "3MVG9fake.consumer.key",
                                       "consumer_secret": "fake-consumer-secret",
                                       "domain": "acme.my"}),
        (AuthMode.JWT, {"consumer_key": "3MVG9fake.consumer.key", "domain": "login"}),
    ],
)
def test_oauth_logins_reach_the_org(sf_server, rsa_key_pair, auth_mode, settings):
    if auth_mode is AuthMode.JWT:
        settings = {**settings, "private_key": rsa_key_pair[0]}
    config = password_config(auth_mode=auth_mode, password=None, security_token=None, **settings)

    result = SalesforceExtractor(config, sf_server.session()).extract("Account", ["Name"])

    assert [r["Name"] for r in result.records] == ["Acme", "Globex"]


def test_jwt_signed_with_another_key_is_refused(make_sf_server):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    server = make_sf_server()
    config = password_config(auth_mode=AuthMode.JWT, consumer_key="3MVG9fake.consumer.key",
                             private_key=other)

    with pytest.raises(SalesforceAuthenticationFailed):
        SalesforceExtractor(config, server.session())


def test_wrong_password_fails_loudly_without_retries(sf_server):
    with pytest.raises(SalesforceAuthenticationFailed):
        SalesforceExtractor(password_config(password="wrong"), sf_server.session())
    assert sf_server.org.logins == 0


def test_large_window_goes_through_bulk_with_locators_and_matches_rest(sf_server):
    rest = SalesforceExtractor(password_config(), sf_server.session()).extract(
        "Contract", CONTRACT_FIELDS)
    bulk_config = password_config(bulk_threshold=4, bulk_page_size=2)

    bulk = SalesforceExtractor(bulk_config, sf_server.session()).extract(
        "Contract", CONTRACT_FIELDS)

    assert bulk.path == "bulk" and bulk.request_ids == ["750R00000000001AAA"]
    results_calls = [p for m, p in sf_server.org.request_log if p.endswith("/results")]
    assert len(results_calls) == 3  # 5 rows, 2 per page
    assert bulk.records == rest.records  # CSV converted back to the REST JSON shape


def test_window_at_the_threshold_stays_on_rest(sf_server):
    result = SalesforceExtractor(password_config(bulk_threshold=5), sf_server.session()).extract(
        "Contract", CONTRACT_FIELDS)

    assert result.path == "rest"


def test_session_expiring_in_the_middle_of_paging_is_renewed(sf_server):
    extractor = SalesforceExtractor(password_config(), sf_server.session())
    # global, Contract and Account describes, COUNT(), page 1 | page 2 answers 401
    sf_server.org.expire_session_after(5)

    result = extractor.extract("Contract", CONTRACT_FIELDS)

    assert [r["Id"] for r in result.records] == ALL_CONTRACTS
    assert sf_server.org.logins == 2


def test_bulk_job_after_session_expiry_logs_in_again_and_reruns(sf_server):
    config = password_config(bulk_threshold=1, bulk_page_size=2)
    extractor = SalesforceExtractor(config, sf_server.session())
    # global, Contract and Account describes, COUNT(), job 1 created | its first poll gets 401
    sf_server.org.expire_session_after(5)

    result = extractor.extract("Contract", CONTRACT_FIELDS)

    assert [r["Id"] for r in result.records] == ALL_CONTRACTS
    assert sf_server.org.logins == 2
    assert result.request_ids == ["750R00000000002AAA"]  # the rerun produced the rows


def test_burst_of_request_limit_errors_is_retried_with_exponential_backoff(sf_server):
    delays: list[float] = []
    extractor = SalesforceExtractor(password_config(backoff_base=1.0), sf_server.session(),
                                    sleep=delays.append)
    sf_server.org.inject_faults("403", 3, after=3)  # three describes pass, COUNT() gets 403 x3

    result = extractor.extract("Contract", CONTRACT_FIELDS)

    assert len(result.records) == 5
    assert delays == [1.0, 2.0, 4.0]


@pytest.mark.parametrize("kind", ["500", "503"])
def test_server_error_bursts_in_the_middle_of_paging_are_retried(sf_server, kind):
    extractor = SalesforceExtractor(password_config(), sf_server.session())
    sf_server.org.inject_faults(kind, 2, after=5)  # 3 describes, COUNT(), page 1 | page 2 x2

    result = extractor.extract("Contract", CONTRACT_FIELDS)

    assert [r["Id"] for r in result.records] == ALL_CONTRACTS


def test_persistent_server_errors_fail_loudly_after_bounded_retries(sf_server):
    extractor = SalesforceExtractor(password_config(max_retries=2), sf_server.session())
    calls_before = sf_server.org.data_calls
    sf_server.org.inject_faults("500", 10, after=2)

    with pytest.raises(RetriesExhausted):
        extractor.extract("Contract", CONTRACT_FIELDS)
    # global and Contract describes, then the Account describe tried 1 + 2 times
    assert sf_server.org.data_calls - calls_before == 5


def test_org_without_cpq_skips_cpq_objects_and_fields(make_sf_server):
    server = make_sf_server(cpq_installed=False, page_size=2)
    extractor = SalesforceExtractor(password_config(), server.session())

    subscriptions = extractor.extract("SBQQ__Subscription__c", ["SBQQ__Quantity__c"])
    contracts = extractor.extract("Contract", CONTRACT_FIELDS)

    assert subscriptions.available is False and subscriptions.records == []
    assert "SBQQ__RenewalTerm__c" not in contracts.fields
    assert "SBQQ__RenewalTerm__c" not in contracts.records[0]
    assert len(contracts.records) == 5


def test_org_without_multi_currency_does_not_select_currency_iso_code(make_sf_server):
    server = make_sf_server(multi_currency=False)
    extractor = SalesforceExtractor(password_config(), server.session())

    result = extractor.extract("Contract", CONTRACT_FIELDS)

    assert "CurrencyIsoCode" not in result.fields
    assert all("CurrencyIsoCode" not in record for record in result.records)


def test_missing_standard_field_is_an_error_not_a_silent_drop(sf_server):
    extractor = SalesforceExtractor(password_config(), sf_server.session())

    with pytest.raises(SalesforceObjectUnavailable, match="Contract.Pricebook2Id"):
        extractor.extract("Contract", ["Pricebook2Id"])


def test_cpq_subscriptions_extract_with_their_contract_parent(sf_server):
    extractor = SalesforceExtractor(password_config(), sf_server.session())

    result = extractor.extract("SBQQ__Subscription__c", [
        "SBQQ__Contract__r.ContractNumber", "SBQQ__Quantity__c", "SBQQ__RevisedSubscription__c"])

    assert [r["SBQQ__Quantity__c"] for r in result.records] == [Decimal("10.0"), Decimal("-2.0")]
    assert result.records[0]["SBQQ__Contract__c"] == "800000000000001AAA"
    assert result.records[0]["SBQQ__Contract__r"]["ContractNumber"] == "00000101"


def test_api_usage_under_the_floor_pauses_extraction(make_sf_server):
    server = make_sf_server(api_limit=10)
    extractor = SalesforceExtractor(password_config(limit_floor_pct=50.0), server.session())

    with pytest.raises(SalesforceApiBudgetExhausted, match="api usage 6/10"):
        extractor.extract("Contract", CONTRACT_FIELDS)
        extractor.extract("Account", ["Name"])


def test_fewer_rows_than_reported_fails_loudly(sf_server, monkeypatch):
    org = sf_server.org
    original = org.query_page

    def drop_one_row(soql, **kwargs):
        body = original(soql, **kwargs)
        if "COUNT()" not in soql:
            body["records"] = body["records"][1:]
        return body

    monkeypatch.setattr(org, "query_page", drop_one_row)
    extractor = SalesforceExtractor(password_config(query_batch_size=2000), sf_server.session())

    with pytest.raises(IncompleteExtraction, match="reported 2 rows, received 1"):
        extractor.extract("Account", ["Name"])


def test_getuserinfo_states_a_multi_currency_org_and_a_single_currency_orgs_currency(
        make_sf_server, rsa_key_pair):
    multi = make_sf_server(page_size=2)
    single = make_sf_server(page_size=2, multi_currency=False, default_currency="GBP",
                            time_zone="Europe/London")
    multi_info = SalesforceExtractor(password_config(), multi.session()).user_info()
    assert (multi_info["organizationMultiCurrency"], multi_info["orgDefaultCurrencyIsoCode"],
            multi_info["userTimeZone"]) == (True, None, "America/Los_Angeles")
    # any auth mode: the call runs on the session, not on the login response
    config = password_config(auth_mode=AuthMode.JWT, consumer_key="3MVG9fake.consumer.key",
                             private_key=rsa_key_pair[0], password=None, security_token=None)
    single_info = SalesforceExtractor(config, single.session()).user_info()
    assert (single_info["organizationMultiCurrency"], single_info["orgDefaultCurrencyIsoCode"],
            single_info["userTimeZone"]) == (False, "GBP", "Europe/London")
    assert org_currency([single_info]) == "GBP" and org_currency([multi_info]) is None


def test_simple_salesforces_own_login_response_carries_the_same_user_info():
    # simple-salesforce's tests/__init__.py login success (enterprise namespace), verbatim
    text = (Path(__file__).parents[1] / "fixtures" / "salesforce"
            / "ssf_login_response_success.xml").read_text()
    info = parse_user_info(text)
    assert (info["organizationId"], info["organizationMultiCurrency"],
            info["orgDefaultCurrencyIsoCode"], info["userDefaultCurrencyIsoCode"],
            info["userTimeZone"]) == ("00Di0000000icUBEAY", False, "USD", None,
                                      "America/Los_Angeles")
    assert org_currency([info]) == "USD"


def test_bulk_queries_carry_no_order_by_and_the_rows_are_sorted_after_they_arrive(sf_server):
    # why: ORDER BY disables PK chunking on Bulk 2.0 and risks time-outs on large objects
    bulk = SalesforceExtractor(password_config(bulk_threshold=1, bulk_page_size=2),
                               sf_server.session()).extract("Contract", CONTRACT_FIELDS)
    (soql,) = sf_server.org.bulk_queries
    assert "ORDER BY" not in soql.upper()
    assert [r["Id"] for r in bulk.records] == ALL_CONTRACTS  # by (SystemModstamp, Id)


def _commit_late(org, record_id: str, stamp: str, **fields) -> None:
    """A change whose SystemModstamp is before the last window's end but which committed after
    that window was read (a long transaction)."""
    with org.lock:
        record = next(r for r in org.records["Contract"] if r["Id"] == record_id)
        record.update(fields, SystemModstamp=stamp)


@pytest.mark.parametrize(("overlap", "caught"), [(300, True), (0, False)])
def test_each_window_rereads_an_overlap_before_the_mark_and_catches_a_late_commit(
        sf_server, overlap, caught):
    config = password_config(overlap_seconds=overlap)
    first = SalesforceExtractor(config, sf_server.session()).extract("Contract", CONTRACT_FIELDS)
    mark = first.new_high_water_mark
    assert mark == datetime(2026, 1, 6, 8, 0)
    # contract 2 changed at 07:59:59, committed after the first window was read
    _commit_late(sf_server.org, "800000000000002AAA", "2026-01-06T07:59:59.000+0000",
                 ContractTerm=36)
    second = SalesforceExtractor(config, sf_server.session()).extract(
        "Contract", CONTRACT_FIELDS, high_water_mark=mark)
    terms = {r["Id"]: r["ContractTerm"] for r in second.records}
    assert (terms.get("800000000000002AAA") == 36) is caught
    assert second.new_high_water_mark == mark  # the overlap never moves the mark back


@pytest.mark.parametrize("fault", ["cut", "truncated", "locator"])
def test_a_cut_body_truncated_json_or_an_expired_locator_is_retried_to_the_same_rows(
        sf_server, fault):
    extractor = SalesforceExtractor(password_config(), sf_server.session())
    # global, Contract and Account describes, COUNT(), page 1 | the second page breaks
    sf_server.org.inject_faults(fault, 1, after=5)
    result = extractor.extract("Contract", CONTRACT_FIELDS)
    assert [r["Id"] for r in result.records] == ALL_CONTRACTS
    assert result.reported_total == 5


@pytest.mark.parametrize("fault", ["cut", "truncated", "locator"])
def test_the_same_fault_without_retries_fails_the_window_loudly(sf_server, fault):
    # the fault above is real: with no retries left it fails the extraction, landing nothing
    extractor = SalesforceExtractor(password_config(max_retries=0), sf_server.session())
    sf_server.org.inject_faults(fault, 1, after=5)
    with pytest.raises(Exception) as failure:
        extractor.extract("Contract", CONTRACT_FIELDS)
    assert not isinstance(failure.value, AssertionError)


def test_a_lasting_soap_fault_on_getuserinfo_fails_at_once_naming_it(sf_server):
    sf_server.org.user_info_fault = "API_DISABLED_FOR_ORG"
    extractor = SalesforceExtractor(password_config(), sf_server.session())
    with pytest.raises(SalesforceObjectUnavailable, match="API_DISABLED_FOR_ORG"):
        extractor.user_info()
    assert sf_server.org.user_info_calls == 1  # not retried: a fault is not a transient 500
