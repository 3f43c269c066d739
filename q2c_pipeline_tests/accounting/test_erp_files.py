"""ERP import files: exact bytes of the NetSuite CSV and the generic JSON."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from q2c_pipeline.accounting.erp_files import (
    format_netsuite_journal_csv,
    write_journal_json,
    write_netsuite_journal_csv,
)
from q2c_pipeline.accounting.posting_rules import apply_posting_rules
from q2c_pipeline_tests.accounting.test_erp_posting import CHART, journal


def _two_line_entry() -> pd.DataFrame:
    return apply_posting_rules(journal(
        "k1", "US1", "2026-03", "2026-03-31",
        [("AccountsReceivable", 123450, 0), ("Revenue", 0, 123450)]), CHART)


def test_netsuite_csv_of_a_two_line_entry_is_exactly_these_bytes(tmp_path):
    path = write_netsuite_journal_csv(_two_line_entry(), tmp_path / "je.csv")
    assert path.read_bytes() == (
        b"External ID,Date,Subsidiary,Currency,Exchange Rate,Memo,Account,Debit,Credit,"
        b"Line Memo,Department,Class\n"
        b"k1,03/31/2026,US1,USD,1,invoice billed,1100,1234.50,,invoice billed,FIN,\n"
        b"k1,03/31/2026,US1,USD,1,invoice billed,4000,,1234.50,invoice billed,SALES,\n"
    )


def test_journal_json_of_a_two_line_entry_is_exactly_this_document(tmp_path):
    path = write_journal_json(_two_line_entry(), tmp_path / "je.json")
    line = {"debit_functional": "0.00", "credit_functional": "0.00", "memo": "invoice billed"}
    expected = [{
        "currency": "USD", "entry_date": "2026-03-31", "functional_currency": "USD",
        "journal_id": "je_k1", "journal_key": "k1", "legal_entity": "US1", "period": "2026-03",
        "source_type": "invoice", "total_credit": "1234.50", "total_debit": "1234.50",
        "lines": [
            {**line, "line_number": 1, "account": "AccountsReceivable", "gl_account": "1100",
             "department": "FIN", "debit": "1234.50", "credit": "0.00", "debit_minor": 123450,
             "credit_minor": 0, "debit_functional": "1234.50"},
            {**line, "line_number": 2, "account": "Revenue", "gl_account": "4000",
             "department": "SALES", "debit": "0.00", "credit": "1234.50", "debit_minor": 0,
             "credit_minor": 123450, "credit_functional": "1234.50"},
        ],
    }]
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == expected
    assert text == json.dumps(expected, indent=2, sort_keys=True) + "\n"


def test_foreign_currency_entry_carries_its_rate_and_leaves_out_functional_only_lines():
    chart = pd.concat([CHART, pd.DataFrame({
        "legal_entity": ["US1"], "account": ["FxGain"], "gl_account": ["7900"],
        "gl_name": ["FX gain"], "department": [None]})], ignore_index=True)
    # AR 100.00 GBP measured at 127.50 USD, revenue at 127.00 USD and a functional-only FX line
    # of 0.50 USD: the entry's rate is functional debits / debits = 127.50 / 100.00.
    lines = apply_posting_rules(journal(
        "k2", "US1", "2026-03", "2026-03-31",
        [("AccountsReceivable", 10000, 0, (12750, 0)), ("Revenue", 0, 10000, (0, 12700)),
         ("FxGain", 0, 0, (0, 50))],
        currency="GBP", functional="USD"), chart)
    text = format_netsuite_journal_csv(lines, date_format="%Y-%m-%d")
    assert text.splitlines()[1:] == [
        "k2,2026-03-31,US1,GBP,1.27500000,invoice billed,1100,100.00,,invoice billed,FIN,",
        "k2,2026-03-31,US1,GBP,1.27500000,invoice billed,4000,,100.00,invoice billed,SALES,",
    ]


def test_files_are_byte_identical_whatever_order_the_lines_come_in(tmp_path):
    lines = pd.concat([
        _two_line_entry(),
        apply_posting_rules(journal("k0", "UK1", "2026-03", "2026-03-01",
                                    [("Revenue", 5, 0), ("Revenue", 0, 5)], currency="GBP",
                                    functional="GBP"), CHART),
    ], ignore_index=True)
    shuffled = lines.sample(frac=1, random_state=3)
    for writer in (write_netsuite_journal_csv, write_journal_json):
        first = writer(lines, tmp_path / "a").read_bytes()
        second = writer(shuffled, tmp_path / "b").read_bytes()
        assert first == second
    assert first.index(b'"journal_key": "k0"') < first.index(b'"journal_key": "k1"')


def test_writers_refuse_lines_without_gl_accounts(tmp_path):
    raw = journal("k1", "US1", "2026-03", "2026-03-31", [("Revenue", 0, 1)])
    with pytest.raises(ValueError, match="apply_posting_rules first"):
        write_netsuite_journal_csv(raw, tmp_path / "x.csv")
