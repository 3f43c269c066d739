"""marts.fct_work_queue on the sample company's close (as of 2026-06-30): each queue holds the
record the sample's story puts there, named in words, with its owner, its age at the as-of date
(counted here from the story's dates) and its SLA."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

AS_OF = date(2026, 6, 30)
SLA = {"contracts_not_billed": 7, "invoices_not_in_erp": 3, "obligations_pending_allocation": 5,
       "payments_not_applied": 2, "failed_payment_attempts": 3,
       "amendments_awaiting_review": 10, "quarantined_records": 5}

# queue -> (record label starts with, owner, the story's date it waits since)
STORY = {
    # Pied Piper: 8 seats from 1 June, never set up in Stripe
    "contracts_not_billed": ("Pied Piper Inc contract", "billing_ops", date(2026, 6, 1)),
    # Hooli's duplicated March invoice: held, never journaled
    "invoices_not_in_erp": ("Hooli Holdings invoice in_1c1y7upUQQcJT9LYD5MPsTd2", "billing_ops",
                            date(2026, 3, 1)),
    # Umbrella's LEGACY-SUPPORT line: not in the catalog, nothing allocated
    "obligations_pending_allocation": ("Umbrella Supplies contract line a0XHp00000G5YKXMA3",
                                       "sales_ops", date(2026, 3, 1)),
    # the payment of Hooli's held March invoice, 20 days after it
    "payments_not_applied": ("Hooli Holdings payment", "billing_ops", date(2026, 3, 21)),
    # Stripe tried to collect Hooli's March invoice on its due date and failed
    "failed_payment_attempts": ("Hooli Holdings invoice in_1c1y7upUQQcJT9LYD5MPsTd2",
                                "billing_ops", date(2026, 3, 31)),
    # Fabrikam's cancellation from 1 May: a price decrease, treated prospectively by default
    "amendments_awaiting_review": ("Fabrikam Media amendment line", "controllership",
                                   date(2026, 5, 1)),
    # Vandelay's -2 seats with no revised subscription, from its start on 1 April
    "quarantined_records": ("Vandelay Industries contract line a0XHp00000L9EgsMAF", "sales_ops",
                            date(2026, 4, 1)),
}


@pytest.fixture(scope="module")
def queue(closed_warehouse):
    path, result, _ = closed_warehouse
    assert result.success
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(
            "select queue, record_label, owner, since_date, age_days, sla_days, is_past_sla, "
            "decision_state, detail, owner_action from marts.fct_work_queue").fetchall()


@pytest.mark.parametrize("name", sorted(STORY))
def test_each_queue_holds_the_storys_record_with_owner_and_age(queue, name):
    label, owner, since = STORY[name]
    rows = [r for r in queue if r[0] == name and r[1].startswith(label)]
    assert rows, f"{name}: no row for {label}"
    _, _, row_owner, row_since, age, sla, past, state, detail, action = rows[0]
    assert (row_owner, row_since, state) == (owner, since, "open")
    assert age == (AS_OF - since).days
    assert sla == SLA[name] and past == (age > sla)
    assert detail and action


def test_the_queues_hold_nothing_the_story_does_not(queue):
    """Every contract of a paying customer is billed, every posted invoice is in the ERP, and
    the only amendments under review are the sample's three (Contoso's upgrade, Fabrikam's and
    Stark's cancellations)."""
    assert {r[1].split(" contract ")[0] for r in queue if r[0] == "contracts_not_billed"} == {
        "Pied Piper Inc"}
    not_in_erp = [r for r in queue if r[0] == "invoices_not_in_erp"]
    assert all(r[8].startswith("held in the quarantine") for r in not_in_erp)
    assert sorted(r[1].split(" amendment ")[0] for r in queue
                  if r[0] == "amendments_awaiting_review") == [
        "Contoso Retail", "Fabrikam Media", "Stark Industries"]
    reasons = {r[1].split(" amendment ")[0]: r[8] for r in queue
               if r[0] == "amendments_awaiting_review"}
    assert reasons["Contoso Retail"] == "its treatment was chosen by default (prospective)"
    assert reasons["Stark Industries"].startswith("a price decrease")
