"""Append-only raw landing: only new versions are appended, the latest version feeds downstream."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from decimal import Decimal

import duckdb
import pytest

from q2c_pipeline.sources.landing import (
    dump_canonical_json,
    land_records,
    latest_records,
)

EXTRACTED = datetime(2026, 1, 7, 6, 0)
LATER = datetime(2026, 1, 8, 6, 0)


def _contract(record_id: str, stamp: str, status: str = "Activated", **extra: object) -> dict:
    return {"attributes": {"type": "Contract"}, "Id": record_id, "Status": status,
            "SystemModstamp": stamp, **extra}


def _land(conn, records, *, extracted_at=EXTRACTED, deleted_ids=(), table="salesforce_contracts"):
    return land_records(conn, table, records, id_field="Id", modstamp_field="SystemModstamp",
                        extracted_at=extracted_at, request_id="run-1", deleted_ids=deleted_ids)


@pytest.fixture
def conn():
    connection = duckdb.connect(":memory:")
    yield connection
    connection.close()


BATCH = [
    _contract("800000000000001AAA", "2026-01-05T10:00:00.000+0000", Amount=1200.5),
    _contract("800000000000002AAA", "2026-01-05T10:15:00.000+0000"),
]


def test_relanding_the_same_window_adds_nothing(conn):
    first = _land(conn, BATCH)
    second = _land(conn, BATCH, extracted_at=LATER)

    assert (first.inserted, first.unchanged) == (2, 0)
    assert (second.inserted, second.unchanged) == (0, 2)
    assert conn.execute("SELECT count(*) FROM raw.salesforce_contracts").fetchone() == (2,)


def test_a_changed_record_is_appended_and_becomes_the_latest(conn):
    _land(conn, BATCH)
    changed = _contract("800000000000002AAA", "2026-01-06T09:00:00.000+0000", status="Expired")

    result = _land(conn, [BATCH[0], changed], extracted_at=LATER)

    assert (result.inserted, result.unchanged) == (1, 1)
    latest = latest_records(conn, "salesforce_contracts")
    assert [(r["Id"], r["Status"]) for r in latest] == [
        ("800000000000001AAA", "Activated"), ("800000000000002AAA", "Expired")]
    stored = conn.execute(
        "SELECT source_modstamp, extracted_at, request_id, is_deleted FROM raw.salesforce_contracts"
        " WHERE record_id = '800000000000002AAA' ORDER BY source_modstamp"
    ).fetchall()
    assert stored == [(datetime(2026, 1, 5, 10, 15), EXTRACTED, "run-1", False),
                      (datetime(2026, 1, 6, 9, 0), LATER, "run-1", False)]


def test_a_deleted_record_is_landed_flagged_and_left_out_of_latest(conn):
    _land(conn, BATCH)
    deleted = _contract("800000000000002AAA", "2026-01-06T09:00:00.000+0000", IsDeleted=True)

    result = _land(conn, [deleted], extracted_at=LATER, deleted_ids=["800000000000002AAA"])

    assert result.inserted == 1
    assert [r["Id"] for r in latest_records(conn, "salesforce_contracts")] == [
        "800000000000001AAA"]


def test_a_deleted_id_without_a_record_lands_as_a_tombstone(conn):
    _land(conn, BATCH, table="stripe_customers")

    result = _land(conn, [], extracted_at=LATER, deleted_ids=["800000000000001AAA"],
                   table="stripe_customers")

    assert result.inserted == 1
    row = conn.execute(
        "SELECT payload::VARCHAR, source_modstamp, is_deleted FROM raw.stripe_customers "
        "WHERE record_id = '800000000000001AAA' AND is_deleted").fetchone()
    assert row == ('{"Id":"800000000000001AAA"}', LATER, True)
    assert [r["Id"] for r in latest_records(conn, "stripe_customers")] == ["800000000000002AAA"]


def test_a_record_changing_back_to_an_earlier_content_is_landed_again(conn):
    # Stripe objects carry no modification stamp: `created` stays, so extracted_at orders them.
    original = {"id": "cus_1", "created": 1767225600, "email": "a@acme.example"}
    edited = {**original, "email": "b@acme.example"}
    land = lambda records, at: land_records(  # noqa: E731 - local shorthand
        conn, "stripe_customers", records, id_field="id", modstamp_field="created",
        extracted_at=at, request_id=None)

    counts = [land([original], EXTRACTED).inserted, land([edited], LATER).inserted,
              land([original], datetime(2026, 1, 9)).inserted]

    assert counts == [1, 1, 1]
    assert latest_records(conn, "stripe_customers")[0]["email"] == "a@acme.example"


def test_payload_keeps_numbers_as_sent_and_the_hash_is_over_one_form_per_number(conn):
    _land(conn, [{"Id": "800000000000001AAA", "Amount": 1200.0, "SystemModstamp": None,
                  "Nested": {"b": True, "a": [1, None, Decimal("444.0")]}}])

    payload, content_hash = conn.execute(
        "SELECT payload::VARCHAR, content_hash FROM raw.salesforce_contracts").fetchone()

    # what the source said, number forms included (444.0 is not 444 to a Stripe amount reader)
    assert payload == '{"Amount":1200.0,"Id":"800000000000001AAA","Nested":{"a":[1,null,' \
                      '444.0],"b":true},"SystemModstamp":null}'
    one_form = '{"Amount":1200,"Id":"800000000000001AAA","Nested":{"a":[1,null,444],"b":true},' \
               '"SystemModstamp":null}'
    assert content_hash == hashlib.sha256(one_form.encode()).hexdigest()
    # the same record rendered with integers is the same version: nothing new lands
    assert _land(conn, [{"Id": "800000000000001AAA", "Amount": 1200, "SystemModstamp": None,
                         "Nested": {"b": True, "a": [1, None, 444]}}]).inserted == 0


def test_float_decimal_and_integral_numbers_hash_alike():
    # REST JSON parsed with floats, with Decimal, and Bulk CSV converted to Decimal
    assert dump_canonical_json({"a": 1200.5}) == dump_canonical_json({"a": Decimal("1200.50")})
    assert dump_canonical_json({"a": 12.0}) == dump_canonical_json({"a": 12}) == '{"a":12}'
    assert dump_canonical_json({"a": Decimal("0.10")}) == '{"a":0.1}'


def test_latest_records_keep_money_exact_as_decimal(conn):
    _land(conn, [_contract("800000000000001AAA", "2026-01-05T10:00:00.000+0000",
                           Amount=Decimal("1234567890123.45"))])

    amount = latest_records(conn, "salesforce_contracts")[0]["Amount"]

    assert amount == Decimal("1234567890123.45") and isinstance(amount, Decimal)


def test_within_a_batch_the_latest_modstamp_of_a_record_wins(conn):
    older = _contract("800000000000001AAA", "2026-01-05T10:00:00.000+0000", status="Draft")
    newer = _contract("800000000000001AAA", "2026-01-05T11:00:00.000+0000")

    result = _land(conn, [newer, older])

    assert result.inserted == 1
    assert latest_records(conn, "salesforce_contracts")[0]["Status"] == "Activated"


def test_landing_is_deterministic_byte_for_byte(tmp_path):
    tables = []
    for name in ("one", "two"):
        connection = duckdb.connect(str(tmp_path / f"{name}.duckdb"))
        _land(connection, list(reversed(BATCH)),
              extracted_at=datetime(2026, 1, 7, 7, 0, tzinfo=timezone.utc))
        tables.append(connection.execute(
            "SELECT * FROM raw.salesforce_contracts").fetchall())
        connection.close()

    assert tables[0] == tables[1]
    assert [row[0] for row in tables[0]] == ["800000000000001AAA", "800000000000002AAA"]
    assert tables[0][0][5] == datetime(2026, 1, 7, 7, 0)  # aware extracted_at stored as naive UTC


@pytest.mark.parametrize("table", ["contracts; DROP TABLE x", "Salesforce_Contracts",
                                   "other_contracts", "salesforce_"])
def test_table_names_outside_the_allow_list_are_refused(conn, table):
    with pytest.raises(ValueError, match="not an allowed raw table name"):
        _land(conn, BATCH, table=table)


def test_records_without_an_id_are_kept_apart_and_the_others_land(conn):
    from q2c_pipeline.sources.landing import unlanded_records

    result = _land(conn, [{"Status": "Draft", "SystemModstamp": None, "Amount": 444.0},
                          _contract("800000000000001AAA", None),
                          {"Id": "  ", "Status": "Draft", "SystemModstamp": None}])
    assert (result.inserted, result.unlanded) == (1, 2)
    assert [r[0] for r in conn.execute("SELECT record_id FROM raw.salesforce_contracts")
            .fetchall()] == ["800000000000001AAA"]
    assert unlanded_records(conn) == [
        ("salesforce_contracts", 0, "Id",
         '{"Amount":444.0,"Status":"Draft","SystemModstamp":null}'),
        ("salesforce_contracts", 2, "Id", '{"Id":"  ","Status":"Draft","SystemModstamp":null}')]
    # the next extraction of the object says what is still unlandable: here, nothing
    _land(conn, [_contract("800000000000001AAA", None)])
    assert unlanded_records(conn) == []


def test_two_versions_of_one_id_at_the_same_instant_both_land_and_both_come_back(conn):
    # Why: a duplicated id in one extraction (the sample's Hooli invoice) is a conflict the source
    # created; landing must keep both so validation quarantines them, and stay idempotent.
    stamp = "2026-01-05T10:00:00.000+0000"
    twins = [_contract("800000000000009AAA", stamp, Amount=100),
             _contract("800000000000009AAA", stamp, Amount=200)]
    first = _land(conn, twins)
    again = _land(conn, twins)
    assert (first.inserted, again.inserted) == (2, 0)
    latest = latest_records(conn, "salesforce_contracts")
    assert sorted(r["Amount"] for r in latest) == [100, 200]
    # a later, single version supersedes both
    _land(conn, [_contract("800000000000009AAA", "2026-01-06T10:00:00.000+0000", Amount=300)])
    assert [r["Amount"] for r in latest_records(conn, "salesforce_contracts")] == [300]
