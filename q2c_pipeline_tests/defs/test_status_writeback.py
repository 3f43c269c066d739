"""Posting status flows back to Salesforce Contracts: posted, pending, or failed with the
quarantine rule; written in bulk, idempotently, and only stored locally in snapshot mode."""

from __future__ import annotations

import shutil

import dagster as dg
import duckdb
import pandas as pd
import pytest

from q2c_pipeline.defs.canonical import canonical_tables
from q2c_pipeline.defs.extraction import contract_posting_status
from q2c_pipeline.defs.revenue import revenue_and_ledger
from q2c_pipeline.sources.extract import build_contract_posting_statuses
from q2c_pipeline_tests.defs.test_live_sources import (
    RAW_ASSETS,
    Fakes,
    live_folder,
    snapshot_resources,
)

CLOSE_CONFIG = {"ops": {"revenue_and_ledger": {"config": {"as_of": "2026-06-30"}}}}
BAD_CONTRACT = "800Hp000007qBvkIAE"  # its line carries an unknown product code


def test_statuses_are_failed_then_posted_then_pending():
    contracts = pd.DataFrame({"contract_id": ["sf:800A", "sf:800B", "sf:800B", "sf:800C"]})
    journal_lines = pd.DataFrame({"contract_id": ["sf:800A", "sf:800A", "sf:800B", None]})
    quarantine = pd.DataFrame({
        "source_table": ["contract_lines", "contracts", "contract_lines", "customers"],
        "record_id": ["sf:a0X1", "sf:800D|1", "sf:a0X2", "sf:001E"],
        "rule": ["negative_quantity", "held_by_upstream", "held_by_upstream",
                 "missing_legal_entity_mapping"],
        "reason": ["negative_quantity: line a0X1", "held_by_upstream: contract 800D",
                   "held_by_upstream: line a0X2", "missing_legal_entity_mapping: 001E"],
        "correlation_id": ["sf:800B", "sf:800D", "sf:800D", "sf:001E"],
    })

    statuses = build_contract_posting_statuses(contracts, journal_lines, quarantine)

    assert statuses.to_dict("records") == [
        {"contract_id": "sf:800A", "salesforce_id": "800A", "status": "posted", "message": None},
        # journaled, but one of its lines is held: the contract did not post completely
        {"contract_id": "sf:800B", "salesforce_id": "800B", "status": "failed",
         "message": "failed: quarantined negative_quantity; negative_quantity: line a0X1"},
        {"contract_id": "sf:800C", "salesforce_id": "800C", "status": "pending",
         "message": "accepted; no journal lines yet"},
        # only held rows: the first (by table, record) names what holds it
        {"contract_id": "sf:800D", "salesforce_id": "800D", "status": "failed",
         "message": "failed: quarantined held_by_upstream; held_by_upstream: line a0X2"},
    ]


@pytest.fixture(scope="module")
def closed(sample_company, tmp_path_factory):
    """Raw, canonical and finance built once from the snapshot; each test copies the file."""
    root = tmp_path_factory.mktemp("status")
    company = live_folder(sample_company, root / "company")
    warehouse = root / "closed.duckdb"
    result = dg.materialize([*RAW_ASSETS, canonical_tables, revenue_and_ledger],
                            resources=snapshot_resources(company, warehouse),
                            run_config=CLOSE_CONFIG)
    assert result.success
    return company, warehouse


def stored_statuses(path) -> dict[str, tuple[str, str | None]]:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return {r[0]: (r[1], r[2]) for r in conn.execute(
            "select salesforce_id, status, message from finance.contract_posting_status"
        ).fetchall()}
    finally:
        conn.close()


def test_snapshot_mode_stores_statuses_without_calling_salesforce(closed, tmp_path):
    company, closed_path = closed
    warehouse = tmp_path / "w.duckdb"
    shutil.copy(closed_path, warehouse)

    result = dg.materialize([contract_posting_status],
                            resources=snapshot_resources(company, warehouse))

    assert result.success
    statuses = stored_statuses(warehouse)
    assert len(statuses) == 20
    counts = pd.Series([s for s, _ in statuses.values()]).value_counts().to_dict()
    assert counts == {"posted": 16, "failed": 4}  # Pied Piper's contract posts (not billed)
    assert statuses[BAD_CONTRACT][1].startswith("failed: quarantined unknown_product_code; ")


def test_status_write_back_is_bulk_and_idempotent_against_the_fake(closed, tmp_path):
    company, closed_path = closed
    warehouse = tmp_path / "w.duckdb"
    shutil.copy(closed_path, warehouse)
    fakes = Fakes(company)
    try:
        resources = fakes.resources(warehouse)
        first = dg.materialize([contract_posting_status], resources=resources)
        patches_after_first = [p for m, p in fakes.org.request_log if m == "PATCH"]
        second = dg.materialize([contract_posting_status], resources=resources)
        patches_after_second = [p for m, p in fakes.org.request_log if m == "PATCH"]
        contracts = {r["Id"]: r for r in fakes.org.records["Contract"]}
    finally:
        fakes.stop()

    def metadata(result):
        [event] = result.get_asset_materialization_events()
        return {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}

    assert metadata(first)["updated_in_salesforce"] == 20
    assert metadata(second)["updated_in_salesforce"] == 0
    assert metadata(second)["unchanged"] == 20
    assert len(patches_after_first) == 1  # 18 contracts in one sObject-collection call
    assert patches_after_second == patches_after_first  # the second run wrote nothing
    bad = contracts[BAD_CONTRACT]
    assert bad["Q2C_Posting_Status__c"] == "failed"
    assert bad["Q2C_Posting_Message__c"].startswith("failed: quarantined unknown_product_code")
    for salesforce_id, (status, message) in stored_statuses(warehouse).items():
        assert contracts[salesforce_id]["Q2C_Posting_Status__c"] == status
        assert contracts[salesforce_id]["Q2C_Posting_Message__c"] == message
