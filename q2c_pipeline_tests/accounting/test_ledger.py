"""The posted ledger: append what is new, reverse what changed, never touch what was posted."""

from __future__ import annotations

import hashlib
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest

from q2c_pipeline.accounting.ledger import (
    LEDGER_COLUMNS,
    LEDGER_RULE_VERSION,
    append_ledger,
    apply_period_locks,
    closed_periods,
    empty_ledger,
    first_open_months,
    lock_period,
    read_ledger,
    read_period_locks,
    reconcile_ledger,
    repost_key,
    reversal_key,
)

AS_OF = date(2026, 3, 31)
NO_CLOSED = closed_periods(pd.DataFrame(), pd.DataFrame())


def _journal(key: str, day: date, lines: list[tuple], *, entity: str = "US01",
             currency: str = "USD", functional: str = "USD", source_id: str = "in_1") -> list[dict]:
    """Engine-shaped lines of one journal; each line (account, debit, credit[, dr_f, cr_f])."""
    rows = []
    for number, line in enumerate(lines, start=1):
        account, debit, credit = line[:3]
        debit_f, credit_f = line[3:] if len(line) == 5 else (debit, credit)
        rows.append({
            "journal_id": "je_" + key[:24], "journal_key": key, "line_number": number,
            "legal_entity": entity, "period": day.strftime("%Y-%m"), "entry_date": day,
            "account": account, "debit": debit, "credit": credit, "currency": currency,
            "debit_functional": debit_f, "credit_functional": credit_f, "source_type": "invoice",
            "source_id": source_id, "correlation_id": "sf:c1", "memo": "invoice billed",
            "functional_currency": functional, "source_line_id": source_id + "_l1",
            "original_date": day, "contract_id": "sf:c1", "customer_id": "cus_1",
        })
    return rows


def _frame(*journals: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([row for journal in journals for row in journal])


def _post(posted: pd.DataFrame, desired: pd.DataFrame, closed=NO_CLOSED, as_of=AS_OF):
    """Reconcile and return (delta, ledger after appending it)."""
    delta = reconcile_ledger(posted, desired, closed, as_of)
    if len(delta.lines) == 0:
        return delta, posted
    after = pd.concat([posted, delta.lines], ignore_index=True) if len(posted) else delta.lines
    return delta, after


INVOICE_A = _journal("a" * 64, date(2026, 1, 15), [
    ("AccountsReceivable", 12000, 0), ("DeferredRevenue", 0, 10000), ("TaxLiability", 0, 2000)])
# The same invoice after its amount changed in billing: 125.00 + 25.00 tax.
INVOICE_B = _journal("b" * 64, date(2026, 1, 15), [
    ("AccountsReceivable", 15000, 0), ("DeferredRevenue", 0, 12500), ("TaxLiability", 0, 2500)])


def test_first_posting_appends_every_desired_journal_under_its_engine_key():
    delta, ledger = _post(empty_ledger(), _frame(INVOICE_A))
    assert delta.journals_posted == 1 and delta.journals_reversed == 0
    assert list(ledger.columns) == LEDGER_COLUMNS
    assert ledger["journal_key"].unique().tolist() == ["a" * 64]
    assert ledger["debit"].tolist() == [12000, 0, 0]
    assert ledger["credit"].tolist() == [0, 10000, 2000]
    assert set(ledger["period"]) == {"2026-01"}
    assert set(ledger["posting_seq"]) == {1}
    assert set(ledger["posting_as_of"]) == {AS_OF}
    assert set(ledger["entry_type"]) == {"entry"}
    expected_batch = "pb_" + hashlib.sha256(("2026-03-31\n" + "a" * 64).encode()).hexdigest()[:20]
    assert delta.posting_batch == expected_batch


def test_replaying_the_same_desired_journals_posts_nothing():
    _, ledger = _post(empty_ledger(), _frame(INVOICE_A))
    for _ in range(3):
        delta, again = _post(ledger, _frame(INVOICE_A))
        assert len(delta.lines) == 0 and delta.posting_batch is None
        assert again.equals(ledger)


def test_changed_source_gets_a_reversal_and_a_new_entry_and_the_old_lines_stay():
    _, ledger = _post(empty_ledger(), _frame(INVOICE_A))
    delta, after = _post(ledger, _frame(INVOICE_B))
    assert delta.journals_posted == 1 and delta.journals_reversed == 1
    reversal = delta.reversal_lines
    expected_key = hashlib.sha256(
        ("a" * 64 + "\nreversal\n" + LEDGER_RULE_VERSION).encode()).hexdigest()
    assert set(reversal["journal_key"]) == {expected_key} == {reversal_key("a" * 64)}
    assert set(reversal["reverses_journal_key"]) == {"a" * 64}
    # debits and credits swapped, line by line
    assert reversal["debit"].tolist() == [0, 10000, 2000]
    assert reversal["credit"].tolist() == [12000, 0, 0]
    assert reversal["memo"].iloc[0] == "reversal of je_" + "a" * 24 + ": invoice billed"
    # the reversal posts in the original's period (2026-01 is open), on its date
    assert set(reversal["period"]) == {"2026-01"}
    assert set(reversal["entry_date"]) == {date(2026, 1, 15)}
    assert set(delta.new_lines["journal_key"]) == {"b" * 64}
    assert set(delta.lines["posting_seq"]) == {2}
    # the originally posted rows are untouched
    assert after.iloc[: len(ledger)].equals(ledger)
    net = after.groupby("account")[["debit", "credit"]].sum()
    assert (net["debit"] - net["credit"]).to_dict() == {
        "AccountsReceivable": 15000, "DeferredRevenue": -12500, "TaxLiability": -2500}


def test_late_lines_and_reversals_move_out_of_a_closed_period_keeping_their_dates():
    _, ledger = _post(empty_ledger(), _frame(INVOICE_A))
    closed = closed_periods(pd.DataFrame(), pd.DataFrame(
        {"legal_entity": ["US01"], "period": ["2026-01"]}))
    delta, after = _post(ledger, _frame(INVOICE_B), closed)
    for lines in (delta.new_lines, delta.reversal_lines):
        assert set(lines["period"]) == {"2026-02"}
        assert set(lines["entry_date"]) == {date(2026, 2, 1)}
        assert set(lines["original_date"]) == {date(2026, 1, 15)}
    january = after[after["period"] == "2026-01"].reset_index(drop=True)
    assert january.equals(ledger)  # what January held is exactly what was posted before


def test_a_journal_reversed_and_desired_again_is_reposted_under_a_fresh_key():
    _, ledger = _post(empty_ledger(), _frame(INVOICE_A))
    _, ledger = _post(ledger, _frame(INVOICE_B))
    delta, ledger = _post(ledger, _frame(INVOICE_A))
    fresh = repost_key("a" * 64, 1)
    assert set(delta.new_lines["journal_key"]) == {fresh}
    assert set(delta.new_lines["engine_journal_key"]) == {"a" * 64}
    assert set(delta.reversal_lines["reverses_journal_key"]) == {"b" * 64}
    assert ledger.groupby(["journal_key", "line_number"]).size().max() == 1
    net = ledger.groupby("account")[["debit", "credit"]].sum()
    assert (net["debit"] - net["credit"]).to_dict() == {
        "AccountsReceivable": 12000, "DeferredRevenue": -10000, "TaxLiability": -2000}
    # the reposted journal can itself be reversed once more, under its own reversal key
    delta, _ = _post(ledger, _frame(INVOICE_B))
    assert set(delta.reversal_lines["journal_key"]) == {reversal_key(fresh)}
    assert set(delta.new_lines["journal_key"]) == {repost_key("b" * 64, 1)}


def test_a_run_as_of_an_earlier_date_than_the_ledger_posts_nothing():
    _, ledger = _post(empty_ledger(), _frame(INVOICE_A))
    # Why: a replay of February cannot see journals a March run posted; reversing them would
    # undo real postings, so it is held back.
    delta = reconcile_ledger(ledger, _frame(INVOICE_B), NO_CLOSED, date(2026, 2, 28))
    assert delta.held_back and len(delta.lines) == 0


def test_foreign_currency_reversal_swaps_functional_amounts_too():
    # EUR 100.00 billed by US01 (USD): booked at 1.10 -> USD 110.00.
    eur = _journal("e" * 64, date(2026, 2, 3), [
        ("AccountsReceivable", 10000, 0, 11000, 0), ("DeferredRevenue", 0, 10000, 0, 11000)],
        currency="EUR")
    _, ledger = _post(empty_ledger(), _frame(eur))
    delta, _ = _post(ledger, _frame(INVOICE_A))
    reversal = delta.reversal_lines
    assert reversal["debit"].tolist() == [0, 10000]
    assert reversal["credit_functional"].tolist() == [11000, 0]
    assert reversal["debit_functional"].tolist() == [0, 11000]
    assert set(reversal["currency"]) == {"EUR"}


def test_intercompany_journals_shift_only_for_the_entity_whose_period_is_closed():
    # A cross-entity sale booked as two journals: UK01 owns the revenue side, US01 the billing.
    us = _journal("1" * 64, date(2026, 1, 20), [
        ("AccountsReceivable", 5000, 0), ("IntercompanyPayable", 0, 5000)])
    uk = _journal("2" * 64, date(2026, 1, 20), [
        ("IntercompanyReceivable", 5000, 0, 4000, 0), ("DeferredRevenue", 0, 5000, 0, 4000)],
        entity="UK01", functional="GBP")
    closed = closed_periods(
        pd.DataFrame({"legal_entity": ["UK01", "US01"], "period": ["2026-01", "2026-01"],
                      "status": ["closed", "open"]}), pd.DataFrame())
    delta, _ = _post(empty_ledger(), _frame(us, uk), closed)
    periods = delta.new_lines.groupby("legal_entity")["period"].unique().map(list).to_dict()
    assert periods == {"UK01": ["2026-02"], "US01": ["2026-01"]}
    uk_lines = delta.new_lines[delta.new_lines["legal_entity"] == "UK01"]
    assert set(uk_lines["entry_date"]) == {date(2026, 2, 1)}
    assert uk_lines["debit_functional"].sum() == uk_lines["credit_functional"].sum() == 4000


def test_first_open_month_skips_consecutive_closed_months_per_entity():
    closed = pd.DataFrame({"legal_entity": ["US01", "US01"], "period": ["2026-01", "2026-02"]})
    jan, mar = (2026 - 1970) * 12, (2026 - 1970) * 12 + 2
    out = first_open_months(pd.Series(["US01", "UK01", "US01"]), np.array([jan, jan, mar]), closed)
    assert out.tolist() == [mar, jan, mar]


def test_period_locks_close_open_periods_and_add_missing_ones_for_the_engine():
    periods = pd.DataFrame({"legal_entity": ["US01", "US01"], "period": ["2026-01", "2026-02"],
                            "status": ["open", "open"], "closed_at": [pd.NaT, pd.NaT]})
    locks = pd.DataFrame({"legal_entity": ["US01", "UK01"], "period": ["2026-01", "2026-01"],
                          "closed_at": pd.to_datetime(["2026-02-04 18:00", "2026-02-04 18:00"])})
    out = apply_period_locks(periods, locks)
    assert list(zip(out["legal_entity"], out["period"], out["status"], strict=True)) == [
        ("UK01", "2026-01", "closed"), ("US01", "2026-01", "closed"), ("US01", "2026-02", "open")]


def test_ledger_table_refuses_a_journal_key_posted_twice_and_locks_record_the_last_posting(
    tmp_path,
):
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    delta = reconcile_ledger(empty_ledger(), _frame(INVOICE_A), NO_CLOSED, AS_OF)
    assert append_ledger(conn, delta) == 3
    stored = read_ledger(conn)
    assert stored.equals(delta.lines)
    with pytest.raises(duckdb.ConstraintException):
        append_ledger(conn, delta)
    assert len(read_ledger(conn)) == 3
    assert lock_period(conn, "US01", "2026-01", closed_at=pd.Timestamp("2026-02-04 18:00"),
                       closed_by_run="run-1")
    assert not lock_period(conn, "US01", "2026-01", closed_at=pd.Timestamp("2026-02-05"),
                           closed_by_run="run-2")
    locks = read_period_locks(conn)
    assert locks[["legal_entity", "period", "closed_by_run", "lock_seq"]].values.tolist() == [
        ["US01", "2026-01", "run-1", 1]]
    with pytest.raises(ValueError, match="YYYY-MM"):
        lock_period(conn, "US01", "2026-1", closed_at=pd.Timestamp("2026-02-04"),
                    closed_by_run="run-3")
    conn.close()
