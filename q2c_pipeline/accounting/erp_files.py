"""ERP import files written from journal lines that went through ``apply_posting_rules``.

Two writers, both byte-deterministic (rows sorted by entry date, journal id and line number;
fixed formatting; ``\\n`` line endings; UTF-8):

``write_netsuite_journal_csv`` — NetSuite's CSV Import Assistant layout for Journal Entries, one
row per line, the entry's header fields repeated on each of its rows (NetSuite groups rows into an
entry by External ID): ``External ID, Date, Subsidiary, Currency, Exchange Rate, Memo, Account,
Debit, Credit, Line Memo, Department, Class``. Amounts are decimal strings from integer minor units
(``q2c_pipeline.core.money.from_minor``), the unused side left empty. ``Subsidiary`` is the legal
entity as the ERP names it. ``Exchange Rate`` is the entry's functional/transaction ratio
(total functional debits over total debits, in major units) rounded half-up to 8 decimals, ``1``
when the currencies agree. NetSuite measures functional amounts itself from that rate, so lines
that move functional currency only (the engine's realized FX and rounding lines, zero in the
transaction currency) are left out of the CSV; ``write_journal_json`` keeps them. ``Date`` uses
``date_format``: NetSuite reads dates in the importing user's preference, US ``MM/DD/YYYY`` by
default.

``write_journal_json`` — a generic, ERP-neutral file: a JSON list of entries (key, id, entity,
period, date, currency, functional currency, source type, totals) each with its lines, amounts as
decimal strings plus the exact minor units; keys sorted, two-space indent.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pandas as pd

from q2c_pipeline.accounting.erp_posting import ErpRejected, JournalEntry, PostingReceipt
from q2c_pipeline.core.money import from_minor, minor_exponent

NETSUITE_COLUMNS = [
    "External ID", "Date", "Subsidiary", "Currency", "Exchange Rate", "Memo", "Account", "Debit",
    "Credit", "Line Memo", "Department", "Class",
]
_RATE_PLACES = Decimal("0.00000001")


def _ordered(lines: pd.DataFrame) -> pd.DataFrame:
    if "gl_account" not in lines.columns:
        raise ValueError("journal lines need gl_account: run apply_posting_rules first")
    return lines.sort_values(["entry_date", "journal_id", "line_number"],
                             kind="mergesort").reset_index(drop=True)


def _text(value: object) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return str(value)


def _amount(minor: int, currency: str) -> str:
    return from_minor(int(minor), currency) if int(minor) else ""


def _exchange_rate(entry: pd.DataFrame) -> str:
    currency = str(entry["currency"].iloc[0])
    functional = _text(entry["functional_currency"].iloc[0]) or currency
    if functional == currency:
        return "1"
    debit = int(entry["debit"].sum())
    if debit == 0:
        return ""
    ratio = (Decimal(int(entry["debit_functional"].sum())).scaleb(-minor_exponent(functional))
             / Decimal(debit).scaleb(-minor_exponent(currency)))
    return str(ratio.quantize(_RATE_PLACES, rounding=ROUND_HALF_UP))


def format_netsuite_journal_csv(journal_lines_with_gl: pd.DataFrame, *,
                                date_format: str = "%m/%d/%Y") -> str:
    """The NetSuite journal import CSV as text (see module doc)."""
    lines = _ordered(journal_lines_with_gl)
    # "class" is a Python keyword: itertuples would rename it, so carry it under another name.
    lines["gl_class"] = lines["class"] if "class" in lines.columns else None
    rates = {key: _exchange_rate(entry) for key, entry in lines.groupby("journal_key", sort=False)}
    entry_memo = lines.groupby("journal_key", sort=False)["memo"].first()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(NETSUITE_COLUMNS)
    for row in lines.itertuples(index=False):
        if int(row.debit) == 0 and int(row.credit) == 0:
            continue
        currency = str(row.currency)
        writer.writerow([
            row.journal_key, pd.Timestamp(row.entry_date).strftime(date_format),
            row.legal_entity, currency, rates[row.journal_key],
            _text(entry_memo[row.journal_key]),
            row.gl_account, _amount(row.debit, currency), _amount(row.credit, currency),
            _text(row.memo), _text(getattr(row, "department", None)),
            _text(row.gl_class),
        ])
    return buffer.getvalue()


def write_netsuite_journal_csv(journal_lines_with_gl: pd.DataFrame, path: str | Path, *,
                               date_format: str = "%m/%d/%Y") -> Path:
    """Write the NetSuite journal import CSV to ``path``; returns the path."""
    target = Path(path)
    text = format_netsuite_journal_csv(journal_lines_with_gl, date_format=date_format)
    target.write_bytes(text.encode("utf-8"))
    return target


def format_journal_json(journal_lines_with_gl: pd.DataFrame) -> str:
    """The generic journal JSON as text (see module doc)."""
    lines = _ordered(journal_lines_with_gl)
    entries = []
    for key, entry in lines.groupby("journal_key", sort=False):
        first = entry.iloc[0]
        currency = str(first["currency"])
        functional = _text(first.get("functional_currency")) or currency
        entries.append({
            "journal_key": key,
            "journal_id": str(first["journal_id"]),
            "legal_entity": str(first["legal_entity"]),
            "period": str(first["period"]),
            "entry_date": pd.Timestamp(first["entry_date"]).strftime("%Y-%m-%d"),
            "currency": currency,
            "functional_currency": functional,
            "source_type": str(first["source_type"]),
            "total_debit": from_minor(int(entry["debit"].sum()), currency),
            "total_credit": from_minor(int(entry["credit"].sum()), currency),
            "lines": [
                {
                    "line_number": int(row.line_number),
                    "account": str(row.account),
                    "gl_account": str(row.gl_account),
                    "department": _text(getattr(row, "department", None)) or None,
                    "debit": from_minor(int(row.debit), currency),
                    "credit": from_minor(int(row.credit), currency),
                    "debit_minor": int(row.debit),
                    "credit_minor": int(row.credit),
                    "debit_functional": from_minor(int(row.debit_functional), functional),
                    "credit_functional": from_minor(int(row.credit_functional), functional),
                    "memo": _text(row.memo) or None,
                }
                for row in entry.itertuples(index=False)
            ],
        })
    return json.dumps(entries, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_journal_json(journal_lines_with_gl: pd.DataFrame, path: str | Path) -> Path:
    """Write the generic journal JSON to ``path``; returns the path."""
    target = Path(path)
    target.write_bytes(format_journal_json(journal_lines_with_gl).encode("utf-8"))
    return target


NETSUITE_FILE = "netsuite_journal_import.csv"
JSON_FILE = "journals.json"


class FileDropErpClient:
    """An ``ErpPostingClient`` that hands journals to the ERP as import files.

    ``drop`` writes the NetSuite CSV and the generic JSON of the given lines into
    ``<folder>/<drop id>/`` (drop id = hash of the journal keys: the same journals give the same
    folder and bytes). ``post_journal`` then acknowledges an entry that is in a written drop,
    refusing unbalanced entries as an ERP import would, and returns ``<drop id>:<journal_id>``.

    Exactly one drop per journal, crashes included: a drop is written in a hidden
    ``.<drop id>.partial`` folder and renamed into place whole, so a folder named ``drop_*`` is
    always complete (a ``.partial`` one left by a crash is never imported and is replaced on the
    next run). The journals of every complete drop in the folder are read back (from its
    ``journals.json``) before anything is written, so a journal already handed over, by this run
    or by one that died before recording the receipt, is acknowledged with its first drop and
    never written into a second one.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._dropped: dict[str, str] | None = None

    @property
    def dropped(self) -> dict[str, str]:
        """Journal key -> the drop it was handed over in, for every complete drop in the folder."""
        if self._dropped is None:
            self._dropped = {}
            for manifest in sorted(self.folder.glob(f"drop_*/{JSON_FILE}")):
                for entry in json.loads(manifest.read_text(encoding="utf-8")):
                    self._dropped.setdefault(entry["journal_key"], manifest.parent.name)
        return self._dropped

    def drop(self, journal_lines_with_gl: pd.DataFrame) -> list[Path]:
        """Write the lines of the journals no earlier drop holds; returns the files written."""
        if len(journal_lines_with_gl) == 0:
            return []
        new = journal_lines_with_gl[~journal_lines_with_gl["journal_key"].isin(self.dropped)]
        if len(new) == 0:
            return []
        keys = sorted(new["journal_key"].unique())
        drop_id = "drop_" + hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]
        target = self.folder / drop_id
        partial = self.folder / f".{drop_id}.partial"
        if partial.exists():
            shutil.rmtree(partial)
        partial.mkdir(parents=True)
        if target.exists():  # a drop folder without its journals.json: damaged, written again
            shutil.rmtree(target)
        write_netsuite_journal_csv(new, partial / NETSUITE_FILE)
        write_journal_json(new, partial / JSON_FILE)
        for written in partial.iterdir():
            with written.open("rb") as handle:
                os.fsync(handle.fileno())
        os.replace(partial, target)
        self.dropped.update({k: drop_id for k in keys})
        return [target / NETSUITE_FILE, target / JSON_FILE]

    def post_journal(self, entry: JournalEntry) -> PostingReceipt:
        if not entry.is_balanced():
            raise ErpRejected(f"unbalanced: debits {entry.total_debit} != credits "
                              f"{entry.total_credit} {entry.currency}", code="unbalanced")
        drop_id = self.dropped.get(entry.journal_key)
        if drop_id is None:
            raise ErpRejected(f"journal {entry.journal_id} is in no import file",
                              code="not_dropped")
        return PostingReceipt(journal_key=entry.journal_key,
                              erp_document_id=f"{drop_id}:{entry.journal_id}")
