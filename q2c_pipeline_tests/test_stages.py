"""Replay: a record held in the quarantine is released, and posts, once its source is fixed.

Runs the stages as plain functions (no Dagster) over the sample company, then lands the fix the
ERP team would make (the missing customer-master row of Shadow Labs) and runs again.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest

from q2c_pipeline.core.policy import Policy
from q2c_pipeline.sources.registry import ERP_TABLES
from q2c_pipeline.sources.snapshot import SnapshotSource
from q2c_pipeline.stages import (
    build_canonical,
    build_finance,
    land_snapshot,
    land_source_objects,
    snapshot_records,
)
from q2c_pipeline.warehouse import connect

AS_OF = date(2026, 6, 30)


def _land_snapshot(conn, source: SnapshotSource, extracted_at: datetime) -> None:
    land_snapshot(conn, source, extracted_at, request_id="test")


def _count(conn, sql: str, params=()) -> int:
    return conn.execute(sql, list(params)).fetchall()[0][0]


@pytest.fixture
def warehouse(sample_company, tmp_path):
    with connect(tmp_path / "replay.duckdb") as conn:
        _land_snapshot(conn, SnapshotSource(sample_company), datetime(2026, 7, 1, 6))
        yield conn


def test_fixing_the_customer_master_releases_the_held_records_and_they_post(
    warehouse, sample_company
):
    conn = warehouse
    first = build_canonical(conn)
    build_finance(conn, Policy(), AS_OF)
    q = first.quarantine
    shadow = q[(q["rule"] == "missing_legal_entity_mapping")]["record_id"].iloc[0]
    held_before = int((q["customer_id"] == shadow).sum())
    assert held_before >= 3  # the customer, its contract, its invoices and payments
    ledger_before = conn.execute("select * from ledger.journal_lines order by all").fetchall()
    receivable_before = _count(
        conn, "select count(*) from finance.journal_lines where customer_id = ?", [shadow]
    )
    assert receivable_before == 0

    # The ERP team adds the missing customer-master row; the next extraction lands it.
    source = SnapshotSource(sample_company)
    master = source.erp_table("customers")
    account = next(a for a in source.salesforce_records("Account") if f"sf:{a['Id']}" == shadow)
    fix = {**master.iloc[0].to_dict(), "erp_customer_id": "C-FIX-1",
           "name": account["Name"], "sf_account_id": account["Id"],
           "stripe_customer_id": account["Stripe_Customer_Id__c"], "legal_entity": "US01",
           "currency": "USD", "country": "US", "tax_region": "US-CA"}
    erp_customers = next(o for o in ERP_TABLES if o.name == "customers")
    land_source_objects(
        conn, [erp_customers],
        lambda obj: [*snapshot_records(source, obj), fix],
        request_id="fix", extracted_at=datetime(2026, 7, 2, 6),
    )

    second = build_canonical(conn)
    build_finance(conn, Policy(), AS_OF)
    q2 = second.quarantine
    assert not (q2["customer_id"] == shadow).any()
    assert len(q2) == len(q) - held_before
    customers = second.accepted["customers"]
    assert customers.loc[customers["customer_id"] == shadow, "legal_entity"].tolist() == ["US01"]
    # nothing lost: the conservation law still holds table by table
    for table, c in second.counts().items():
        assert c["rows_in"] == c["accepted"] + c["quarantined"], table
    # the released invoices posted; everything posted before is still there, unchanged, and
    # nothing had to be reversed (releasing held records only adds entries)
    assert _count(
        conn, "select count(*) from finance.journal_lines where customer_id = ?", [shadow]
    ) > 0
    ledger_after = conn.execute("select * from ledger.journal_lines order by all").fetchall()
    assert set(ledger_before) <= set(ledger_after)
    assert len(ledger_after) > len(ledger_before)
    assert _count(
        conn, "select count(*) from ledger.journal_lines where entry_type = 'reversal'"
    ) == 0


def test_every_landed_record_is_a_row_a_quarantined_row_or_set_aside(warehouse):
    from q2c_pipeline.defs.checks import find_unconserved_tables

    conn = warehouse
    build_canonical(conn)
    audit = {row[0]: row[1:] for row in conn.execute(
        "select source_table, received, pending, rows_in from canonical.load_audit "
        "where received is not null").fetchall()}
    # by hand from the sample: one invoice is a draft (pending), the rest rows; every landed
    # invoice payment is a payment or an attempt that moved no cash
    assert audit["invoices"][0] == audit["invoices"][1] + audit["invoices"][2]
    assert audit["invoices"][1] == 1
    assert set(audit) >= {"customers", "invoices", "payments", "refunds", "usage",
                          "contract_lines", "legal_entities", "fx_rates"}
    assert find_unconserved_tables(conn)[0] == []
    # a mapper that dropped one landed payment would be seen
    conn.execute("update canonical.load_audit set received = received + 1 "
                 "where source_table = 'payments'")
    (failure,) = find_unconserved_tables(conn)[0]
    assert failure[0] == "payments" and failure[1] == failure[2] + 1


def test_a_record_edited_in_the_snapshot_folder_supersedes_like_a_live_update(
        warehouse, sample_company, tmp_path):
    # why: the edited invoice tied with the landed one (same created stamp, same manifest
    # time), became a "duplicate" and had its journals and payment reversed
    import json
    import shutil

    conn = warehouse
    build_canonical(conn)
    build_finance(conn, Policy(), AS_OF)
    folder = tmp_path / "edited"
    shutil.copytree(sample_company, folder)
    path = folder / "stripe" / "invoices.json"
    invoices = json.loads(path.read_text())
    edited = next(i for i in invoices if i["status"] == "paid" and i.get("description") is None)
    edited["description"] = "PO 4711 added by billing ops"  # a harmless edit at the source
    path.write_text(json.dumps(invoices))
    _land_snapshot(conn, SnapshotSource(folder), datetime(2026, 7, 1, 6))  # same manifest time
    result = build_canonical(conn)
    q = result.quarantine
    assert not ((q["rule"] == "duplicate_id") & (q["record_id"] == f"stripe:{edited['id']}")).any()
    accepted = result.accepted["invoices"]
    assert (accepted["invoice_id"] == f"stripe:{edited['id']}").sum() == 1
    latest = conn.execute("select payload ->> '$.description' from raw.stripe_invoices "
                          "where record_id = ? order by extracted_at desc limit 1",
                          [edited["id"]]).fetchone()[0]
    assert latest == "PO 4711 added by billing ops"
    delta = build_finance(conn, Policy(), AS_OF).delta
    # nothing financial changed: nothing is reversed, nothing new posts
    assert delta.reversal_lines.empty and delta.new_lines.empty
