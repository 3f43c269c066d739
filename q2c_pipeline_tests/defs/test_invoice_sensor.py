"""billing_invoice_sensor over the Stripe fake: nothing new, a new invoice, the same invoice
again, the invoice voided; each requested day lands, and the landing triggers the journal
refresh that puts the invoice into finance.journal_lines."""

from __future__ import annotations

import copy
from datetime import datetime, timezone

import dagster as dg
import duckdb
import pytest

from q2c_pipeline.defs.canonical import canonical_tables
from q2c_pipeline.defs.extraction import stripe_invoices_daily
from q2c_pipeline.defs.revenue import revenue_and_ledger
from q2c_pipeline.defs.sensors import (
    billing_invoice_sensor,
    invoice_partition_job,
    invoices_landed_sensor,
    parse_cursor,
)
from q2c_pipeline.sources.billing_client import BILLING_API_VERSION
from q2c_pipeline.sources.extract import affected_invoice_days
from q2c_pipeline_tests.defs.test_live_sources import RAW_ASSETS, Fakes, live_folder

DAY = "2026-06-15"
CREATED = int(datetime(2026, 6, 15, 9, 30, tzinfo=timezone.utc).timestamp())
NEW_ID = "in_1Q2CSensorTest000000001"


@pytest.fixture(scope="module")
def company(sample_company, tmp_path_factory):
    return live_folder(sample_company, tmp_path_factory.mktemp("sensor") / "company")


@pytest.fixture
def fakes(company):
    made = Fakes(company)
    yield made
    made.stop()


def new_invoice(template: dict) -> dict:
    """A paid-up copy of an accepted invoice, created and finalized on DAY, with its own ids."""
    invoice = copy.deepcopy(template)
    invoice.update(id=NEW_ID, number="Q2C-SENSOR-1", created=CREATED, effective_at=CREATED + 60,
                   status="open", amount_paid=0, amount_remaining=invoice["amount_due"])
    invoice["status_transitions"] = {"finalized_at": CREATED + 60, "marked_uncollectible_at": None,
                                     "paid_at": None, "voided_at": None}
    for number, line in enumerate(invoice["lines"]["data"]):
        line.update(id=f"il_1Q2CSensorTest{number:09d}", invoice=NEW_ID)
        # the next period of the subscription: a second invoice for the same period would bill
        # its seats twice (quantity_mismatch), which is not what this test is about
        length = line["period"]["end"] - line["period"]["start"]
        line["period"] = {"start": line["period"]["end"], "end": line["period"]["end"] + length}
    return invoice


def publish(fakes: Fakes, event_id: str, kind: str, invoice: dict, at: int) -> None:
    fakes.account.objects["events"].append({
        "id": event_id, "object": "event", "type": kind, "created": at,
        "api_version": BILLING_API_VERSION,  # rendered at the pinned version: landed as sent
        "data": {"object": copy.deepcopy(invoice)},
    })


def evaluate(sensor, instance, cursor, resources):
    definitions = dg.Definitions(
        assets=[stripe_invoices_daily], jobs=[invoice_partition_job],
        sensors=[billing_invoice_sensor], resources=resources,
    )
    context = dg.build_sensor_context(cursor=cursor, instance=instance, resources=resources,
                                      definitions=definitions)
    return sensor.evaluate_tick(context), context


def land(day: str, run_key: str, resources: dict, instance) -> dg.ExecuteInProcessResult:
    return dg.materialize([stripe_invoices_daily], partition_key=day, resources=resources,
                          instance=instance, tags={"dagster/run_key": run_key})


def invoice_versions(path) -> list[str]:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return [r[0] for r in conn.execute(
            "select payload->>'status' from raw.stripe_invoices where record_id = ? "
            "order by extracted_at", [NEW_ID]).fetchall()]
    finally:
        conn.close()


def test_invoice_days_are_fingerprinted_by_content():
    invoice = {"id": "in_1", "created": CREATED, "status": "open"}

    first = affected_invoice_days([invoice])
    again = affected_invoice_days([dict(invoice)])
    voided = affected_invoice_days([{**invoice, "status": "void"}])

    assert list(first) == [DAY]
    assert first == again
    assert voided[DAY] != first[DAY]


def test_sensor_requests_only_the_changed_day_once_and_again_after_a_void(fakes, tmp_path):
    warehouse = tmp_path / "w.duckdb"
    resources = fakes.resources(warehouse)
    template = next(i for i in fakes.account.objects["invoices"] if i["status"] == "paid")
    invoice = new_invoice(template)
    with dg.instance_for_test() as instance:
        # 1. nothing new: no events yet
        quiet, context = evaluate(billing_invoice_sensor, instance, None, resources)
        assert quiet.run_requests == [] and quiet.skip_message
        # 2. a new invoice is finalized
        fakes.account.objects["invoices"].append(invoice)
        publish(fakes, "evt_0001", "invoice.finalized", invoice, CREATED + 60)
        fresh, context = evaluate(billing_invoice_sensor, instance, quiet.cursor, resources)
        [request] = fresh.run_requests
        assert request.partition_key == DAY
        assert request.run_key.startswith(f"invoices:{DAY}:")
        assert parse_cursor(fresh.cursor) == ("evt_0001", {})
        assert land(DAY, request.run_key, resources, instance).success
        # 3. the same invoice again (an update event carrying the same state): nothing to run
        publish(fakes, "evt_0002", "invoice.updated", invoice, CREATED + 120)
        same, context = evaluate(billing_invoice_sensor, instance, fresh.cursor, resources)
        assert same.run_requests == []
        assert parse_cursor(same.cursor) == ("evt_0002", {})
        # 4. the invoice is voided: the same day is requested under a new key
        invoice.update(status="void", amount_remaining=0)
        invoice["status_transitions"]["voided_at"] = CREATED + 3600
        publish(fakes, "evt_0003", "invoice.voided", invoice, CREATED + 3600)
        void, context = evaluate(billing_invoice_sensor, instance, same.cursor, resources)
        [again] = void.run_requests
        assert again.partition_key == DAY and again.run_key != request.run_key
        assert land(DAY, again.run_key, resources, instance).success

        refresh = invoices_landed_sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor=None))

    assert invoice_versions(warehouse) == ["open", "void"]
    [journals_run] = refresh.run_requests
    assert journals_run.run_key.startswith("journals:") and journals_run.run_key.endswith(DAY)


def test_sensor_keeps_today_pending_until_its_partition_exists(fakes, tmp_path):
    template = next(i for i in fakes.account.objects["invoices"] if i["status"] == "paid")
    invoice = new_invoice(template)
    now = int(datetime.now(timezone.utc).timestamp())
    tomorrow = now + 86_400
    invoice["created"] = tomorrow  # a day whose partition does not exist yet
    publish(fakes, "evt_0001", "invoice.finalized", invoice, now - 5)
    with dg.instance_for_test() as instance:
        result, _ = evaluate(billing_invoice_sensor, instance, None,
                             fakes.resources(tmp_path / "w.duckdb"))

    event, pending = parse_cursor(result.cursor)
    assert result.run_requests == []
    assert event == "evt_0001"
    assert list(pending) == [datetime.fromtimestamp(tomorrow, tz=timezone.utc).date().isoformat()]


def test_landed_invoice_day_reaches_the_journal_lines(fakes, tmp_path):
    warehouse = tmp_path / "w.duckdb"
    resources = fakes.resources(warehouse)
    assert dg.materialize(RAW_ASSETS, resources=resources).success
    template = next(i for i in fakes.account.objects["invoices"] if i["status"] == "paid"
                    and i["currency"] == "usd")
    invoice = new_invoice(template)
    fakes.account.objects["invoices"].append(invoice)

    assert dg.materialize([stripe_invoices_daily], partition_key=DAY,
                          resources=resources).success
    refreshed = dg.materialize(
        [canonical_tables, revenue_and_ledger], resources=resources,
        run_config={"ops": {"revenue_and_ledger": {"config": {"as_of": "2026-06-30"}}}},
    )

    assert refreshed.success
    conn = duckdb.connect(str(warehouse), read_only=True)
    receivable = conn.execute(
        "select sum(debit) from finance.journal_lines where source_id = ? "
        "and account = 'AccountsReceivable'", [f"stripe:{NEW_ID}"]
    ).fetchone()[0]
    conn.close()
    assert receivable == invoice["total"]
