"""Posting rules, journal entries for the ERP and the fake ERP's verdicts."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from q2c_pipeline.accounting.erp_posting import (
    DUPLICATE_EXTERNAL_ID,
    ErpRejected,
    JournalEntry,
    build_journal_entries,
)
from q2c_pipeline.accounting.posting_rules import (
    UnmappedAccountError,
    apply_posting_rules,
    build_posting_rules,
)
from q2c_pipeline_tests.fakes.erp_fake import FakeErp

CHART = pd.DataFrame({
    "legal_entity": ["US1", "US1", "UK1"],
    "account": ["AccountsReceivable", "Revenue", "Revenue"],
    "gl_account": ["1100", "4000", "4000-UK"],
    "gl_name": ["Accounts receivable", "Subscription revenue", "Revenue UK"],
    "department": ["FIN", "SALES", None],
})


def journal(key: str, entity: str, period: str, entry_date: str, lines, currency: str = "USD",
            functional: str = "USD") -> pd.DataFrame:
    """Journal lines in the engine's columns: lines = [(account, debit, credit[, functional])]."""
    rows = []
    for number, line in enumerate(lines, start=1):
        account, debit, credit = line[:3]
        debit_f, credit_f = line[3] if len(line) > 3 else (debit, credit)
        rows.append({
            "journal_id": "je_" + key, "journal_key": key, "line_number": number,
            "legal_entity": entity, "period": period,
            "entry_date": date.fromisoformat(entry_date), "account": account, "debit": debit,
            "credit": credit, "currency": currency, "debit_functional": debit_f,
            "credit_functional": credit_f, "source_type": "invoice", "source_id": "in_" + key,
            "correlation_id": "sf:" + key, "memo": "invoice billed",
            "functional_currency": functional, "source_line_id": None,
            "original_date": date.fromisoformat(entry_date), "contract_id": None,
            "customer_id": "cus_a",
        })
    return pd.DataFrame(rows)


def test_posting_rules_add_gl_account_name_and_department_per_entity():
    lines = pd.concat([
        journal("k1", "US1", "2026-03", "2026-03-31",
                [("AccountsReceivable", 123450, 0), ("Revenue", 0, 123450)]),
        journal("k2", "UK1", "2026-03", "2026-03-31", [("Revenue", 0, 5)]),
    ], ignore_index=True)
    mapped = apply_posting_rules(lines, CHART)
    assert mapped["gl_account"].tolist() == ["1100", "4000", "4000-UK"]
    assert mapped["department"].tolist() == ["FIN", "SALES", None]
    assert mapped["class"].tolist() == [None, None, None]
    assert mapped["debit"].tolist() == [123450, 0, 0]


def test_unmapped_accounts_are_all_listed_with_their_entity():
    lines = pd.concat([
        journal("k1", "US1", "2026-03", "2026-03-31", [("Cash", 5, 0), ("FxGain", 0, 5)]),
        journal("k2", "UK1", "2026-03", "2026-03-31", [("Cash", 1, 0), ("Revenue", 0, 1)]),
    ], ignore_index=True)
    with pytest.raises(UnmappedAccountError,
                       match=r"3 entity/account pair\(s\): UK1/Cash, US1/Cash, US1/FxGain"):
        apply_posting_rules(lines, CHART)


def test_a_chart_mapping_one_account_twice_is_refused():
    doubled = pd.concat([CHART, CHART.iloc[[1]]], ignore_index=True)
    with pytest.raises(ValueError, match="US1/Revenue"):
        build_posting_rules(doubled)


def test_journal_entries_group_lines_and_survive_a_json_round_trip():
    lines = apply_posting_rules(journal(
        "k1", "US1", "2026-03", "2026-03-31",
        [("AccountsReceivable", 123450, 0), ("Revenue", 0, 123450)]), CHART)
    [entry] = build_journal_entries(lines)
    assert (entry.journal_key, entry.legal_entity, entry.period, entry.entry_date) == (
        "k1", "US1", "2026-03", date(2026, 3, 31))
    assert [(x.gl_account, x.debit, x.credit) for x in entry.lines] == [
        ("1100", 123450, 0), ("4000", 0, 123450)]
    assert entry.is_balanced()
    assert JournalEntry.from_json(entry.to_json()) == entry


def test_a_journal_mixing_currencies_cannot_become_one_erp_entry():
    lines = journal("k1", "US1", "2026-03", "2026-03-31",
                    [("AccountsReceivable", 100, 0), ("Revenue", 0, 100)])
    lines.loc[1, "currency"] = "EUR"
    with pytest.raises(ValueError, match="several values of currency"):
        build_journal_entries(lines)


def _entry(key="k1", period="2026-03", lines=(("AccountsReceivable", 100, 0),
                                               ("Revenue", 0, 100))) -> JournalEntry:
    frame = apply_posting_rules(journal(key, "US1", period, period + "-15", list(lines)), CHART)
    return build_journal_entries(frame)[0]


def test_fake_erp_posts_a_balanced_entry_with_a_sequential_document_id():
    erp = FakeErp(gl_accounts={"1100", "4000"})
    assert erp.post_journal(_entry("k1")).erp_document_id == "JE-000001"
    assert erp.post_journal(_entry("k2")).erp_document_id == "JE-000002"


def test_fake_erp_rejects_closed_period_unbalanced_and_duplicate_external_id():
    erp = FakeErp(closed_periods={("US1", "2026-02")})
    with pytest.raises(ErpRejected, match="period 2026-02 is closed for US1"):
        erp.post_journal(_entry("k0", period="2026-02"))
    with pytest.raises(ErpRejected, match="unbalanced: debits 100 != credits 90"):
        erp.post_journal(_entry("k1", lines=(("AccountsReceivable", 100, 0),
                                             ("Revenue", 0, 90))))
    erp.post_journal(_entry("k2"))
    with pytest.raises(ErpRejected) as duplicate:
        erp.post_journal(_entry("k2"))
    assert duplicate.value.code == DUPLICATE_EXTERNAL_ID
    assert duplicate.value.erp_document_id == "JE-000001"


def test_fake_erp_rejects_a_gl_account_outside_its_chart():
    erp = FakeErp(gl_accounts={"1100"})
    with pytest.raises(ErpRejected, match="unknown GL account 4000"):
        erp.post_journal(_entry("k1"))
