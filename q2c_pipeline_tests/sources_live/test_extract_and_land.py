"""Extraction windows landed into raw tables, and posting statuses written back to Contract."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from q2c_pipeline.sources.landing import land_records, latest_records
from q2c_pipeline.sources.salesforce_client import (
    ContractStatusWriteError,
    SalesforceExtractor,
    write_contract_statuses,
)
from q2c_pipeline_tests.fakes.salesforce_fake import rest_datetime
from q2c_pipeline_tests.sources_live.conftest import password_config

FIELDS = ["ContractNumber", "Status", "ContractTerm", "CurrencyIsoCode"]


def _land(conn, result, extracted_at):
    return land_records(conn, "salesforce_contracts", result.records, id_field="Id",
                        modstamp_field="SystemModstamp", extracted_at=extracted_at,
                        request_id="run", deleted_ids=result.deleted_ids)


def test_incremental_run_lands_only_the_rows_that_changed(sf_server):
    conn = duckdb.connect(":memory:")
    extractor = SalesforceExtractor(password_config(), sf_server.session())
    full = extractor.extract("Contract", FIELDS)
    assert _land(conn, full, datetime(2026, 1, 7)).inserted == 5
    contract_1 = next(r for r in sf_server.org.records["Contract"]
                      if r["Id"] == "800000000000001AAA")
    contract_1.update(Status="Expired", SystemModstamp=rest_datetime("2026-01-08T12:00:00Z"))

    window = extractor.extract("Contract", FIELDS, high_water_mark=full.new_high_water_mark)
    landed = _land(conn, window, datetime(2026, 1, 9))

    # contract 4 sits exactly on the previous mark and is read again, unchanged; contract 1 moved
    assert [r["Id"] for r in window.records] == ["800000000000004AAA", "800000000000001AAA"]
    assert (landed.inserted, landed.unchanged) == (1, 1)
    assert window.new_high_water_mark == datetime(2026, 1, 8, 12, 0)
    latest = {r["Id"]: r["Status"] for r in latest_records(conn, "salesforce_contracts")}
    assert latest == {"800000000000001AAA": "Expired", "800000000000002AAA": "Activated",
                      "800000000000003AAA": "Activated", "800000000000004AAA": "Activated"}


def test_rest_and_bulk_extracts_land_as_the_same_versions(sf_server):
    conn = duckdb.connect(":memory:")
    rest = SalesforceExtractor(password_config(), sf_server.session()).extract("Contract", FIELDS)
    bulk = SalesforceExtractor(password_config(bulk_threshold=1), sf_server.session()).extract(
        "Contract", FIELDS)

    first, second = _land(conn, rest, datetime(2026, 1, 7)), _land(conn, bulk, datetime(2026, 1, 8))

    assert bulk.path == "bulk"
    assert (first.inserted, second.inserted, second.unchanged) == (5, 0, 5)


def test_posting_statuses_are_written_once_and_only_when_changed(sf_server):
    extractor = SalesforceExtractor(password_config(), sf_server.session())
    statuses = [
        {"contract_id": "sf:800000000000001AAA", "status": "Posted", "message": None},
        {"contract_id": "800000000000002AAA", "status": "Failed", "message": "x" * 300},
    ]

    first = write_contract_statuses(extractor.sf, statuses)
    patches_after_first = [p for m, p in sf_server.org.request_log if m == "PATCH"]
    second = write_contract_statuses(extractor.sf, statuses)
    third = write_contract_statuses(
        extractor.sf, [{**statuses[0], "status": "Reversed"}, statuses[1]])

    assert (first.updated, first.unchanged) == (2, 0)
    assert (second.updated, second.unchanged) == (0, 2)
    assert (third.updated, third.unchanged) == (1, 1)
    assert len(patches_after_first) == 1
    assert len([p for m, p in sf_server.org.request_log if m == "PATCH"]) == 2
    contracts = {r["Id"]: r for r in sf_server.org.records["Contract"]}
    assert contracts["800000000000001AAA"]["Q2C_Posting_Status__c"] == "Reversed"
    assert contracts["800000000000002AAA"]["Q2C_Posting_Message__c"] == "x" * 255


def test_rejected_status_updates_fail_loudly(sf_server):
    extractor = SalesforceExtractor(password_config(), sf_server.session())

    with pytest.raises(ContractStatusWriteError) as raised:
        write_contract_statuses(extractor.sf, [
            {"contract_id": "800000000000009AAA", "status": "Posted", "message": None}])
    assert raised.value.failures[0]["id"] == "800000000000009AAA"


def test_status_ids_that_are_not_salesforce_ids_are_refused(sf_server):
    extractor = SalesforceExtractor(password_config(), sf_server.session())

    with pytest.raises(ValueError, match="not a Salesforce id"):
        write_contract_statuses(extractor.sf, [
            {"contract_id": "800' OR Id != '", "status": "Posted", "message": None}])


def test_the_id_comparison_lands_what_the_windows_missed_and_tombstones_what_is_gone(sf_server):
    from q2c_pipeline.sources.extract import compare_salesforce_ids
    from q2c_pipeline.sources.registry import SourceObject

    contract = SourceObject("salesforce", "Contract", "salesforce_contracts", ("Id",),
                            "SystemModstamp", tuple(FIELDS))
    conn = duckdb.connect(":memory:")
    extractor = SalesforceExtractor(password_config(), sf_server.session())
    _land(conn, extractor.extract("Contract", FIELDS), datetime(2026, 1, 7))
    org = sf_server.org
    with org.lock:
        records = org.records["Contract"]
        # 1: changed with a stamp older than anything a window would re-read (a restore)
        first = next(r for r in records if r["Id"] == "800000000000001AAA")
        first.update(Status="Expired", SystemModstamp=rest_datetime("2026-01-05T10:00:01Z"))
        # 2: hard-deleted (gone from the recycle bin too)
        records.remove(next(r for r in records if r["Id"] == "800000000000002AAA"))
        # 6: created long ago, never seen by a window (a bulk import with an old stamp)
        records.append({**first, "Id": "800000000000006AAA", "ContractNumber": "00000106",
                        "Status": "Activated",
                        "SystemModstamp": rest_datetime("2025-12-01T09:00:00Z")})
        # 7: never landed, and in the recycle bin: it lands as deleted, not as a live contract
        records.append({**first, "Id": "800000000000007AAA", "ContractNumber": "00000107",
                        "IsDeleted": True,
                        "SystemModstamp": rest_datetime("2025-12-02T09:00:00Z")})
    found = compare_salesforce_ids(conn, extractor, contract, extracted_at=datetime(2026, 1, 9),
                                   request_id="compare")
    assert (found.checked, found.missing, found.stale, found.vanished) == (6, 2, 1, 1)
    latest = {r["Id"]: r["Status"] for r in latest_records(conn, "salesforce_contracts")}
    assert latest == {"800000000000001AAA": "Expired", "800000000000003AAA": "Activated",
                      "800000000000004AAA": "Activated", "800000000000006AAA": "Activated"}
    # a second comparison finds nothing left to do
    again = compare_salesforce_ids(conn, extractor, contract, extracted_at=datetime(2026, 1, 10),
                                   request_id="compare")
    assert (again.missing, again.stale, again.vanished, again.landing.inserted) == (0, 0, 0, 0)
