"""The posting interface to an ERP general ledger: journal entries in, receipts or rejections out.

``ErpPostingClient`` is the one method a general-ledger connector implements. Real
implementations wrap an ERP's journal API:

- NetSuite SuiteTalk REST: ``POST /services/rest/record/v1/journalEntry`` with ``externalId`` =
  ``journal_key`` (NetSuite refuses a second record with the same external id), ``subsidiary``,
  ``currency``, ``tranDate``, ``postingPeriod`` and a ``line`` sublist of ``account``/``debit``/
  ``credit``/``memo``/``department``; the new record's internal id is the receipt's document id.
- Sage Intacct XML API: ``create`` of a ``GLBATCH`` (journal, ``BATCH_DATE``, ``REFERENCENO`` =
  ``journal_key``, ``ENTRIES`` of ``GLENTRY`` with ``ACCOUNTNO``, ``TR_TYPE``, ``TRX_AMOUNT``,
  ``DEPARTMENTID``, ``LOCATION`` = the entity); the returned ``RECORDNO`` is the document id.

Both map validation errors (closed period, unbalanced entry, unknown account, duplicate external
id) to ``ErpRejected`` and transport failures (timeouts, 5xx, throttling) to ``ErpUnavailable``,
which the outbox treats differently: a rejection needs a person, an outage a retry. The test
suite's in-process fake (``q2c_pipeline_tests/fakes/erp_fake.py``) implements the same Protocol.

``JournalEntry`` carries transaction-currency amounts as integer minor units (the ERP's decimal
strings are made at the connector's edge with ``q2c_pipeline.core.money.from_minor``) and the
functional amounts the ledger engine measured.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date
from typing import Protocol

import pandas as pd

DUPLICATE_EXTERNAL_ID = "duplicate_external_id"


@dataclass(frozen=True)
class JournalEntryLine:
    line_number: int
    account: str
    gl_account: str | None
    debit: int
    credit: int
    debit_functional: int
    credit_functional: int
    memo: str | None = None
    department: str | None = None


@dataclass(frozen=True)
class JournalEntry:
    journal_key: str
    journal_id: str
    legal_entity: str
    period: str
    entry_date: date
    currency: str
    functional_currency: str | None
    source_type: str
    memo: str | None
    lines: tuple[JournalEntryLine, ...]

    @property
    def total_debit(self) -> int:
        return sum(line.debit for line in self.lines)

    @property
    def total_credit(self) -> int:
        return sum(line.credit for line in self.lines)

    def is_balanced(self) -> bool:
        """Debits equal credits, in the entry's currency and in functional currency."""
        functional_debit = sum(line.debit_functional for line in self.lines)
        functional_credit = sum(line.credit_functional for line in self.lines)
        return self.total_debit == self.total_credit and functional_debit == functional_credit

    def to_json(self) -> str:
        """Canonical JSON text (sorted keys, no spaces): the outbox payload."""
        payload = asdict(self)
        payload["entry_date"] = self.entry_date.isoformat()
        return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> JournalEntry:
        payload = json.loads(text)
        payload["entry_date"] = date.fromisoformat(payload["entry_date"])
        payload["lines"] = tuple(JournalEntryLine(**line) for line in payload["lines"])
        return cls(**payload)


@dataclass(frozen=True)
class PostingReceipt:
    journal_key: str
    erp_document_id: str


class ErpRejected(Exception):
    """The ERP refused the entry (closed period, unbalanced, unknown account, duplicate id).

    ``code`` classifies it; for ``DUPLICATE_EXTERNAL_ID`` the ERP reports the document that
    already carries the external id in ``erp_document_id``.
    """

    def __init__(self, reason: str, *, code: str = "rejected",
                 erp_document_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.erp_document_id = erp_document_id


class ErpUnavailable(Exception):
    """The ERP could not be reached or asked us to back off; the entry may be sent again."""


class ErpPostingClient(Protocol):
    def post_journal(self, entry: JournalEntry) -> PostingReceipt:
        """Post one entry; raise ``ErpRejected`` or ``ErpUnavailable`` when it is not posted."""
        ...


def _text(value: object) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return str(value)


def build_journal_entries(journal_lines: pd.DataFrame) -> list[JournalEntry]:
    """One ``JournalEntry`` per ``journal_key``, sorted by entity, period, date and journal id.

    Lines keep their ``line_number`` order; ``gl_account``/``department`` come from
    ``apply_posting_rules`` when present. A journal mixing currencies or entities is refused:
    ERP journal entries carry one subsidiary and one currency.
    """
    if len(journal_lines) == 0:
        return []
    frame = journal_lines.sort_values(
        ["legal_entity", "period", "entry_date", "journal_id", "line_number"], kind="mergesort")
    entries = []
    for key, lines in frame.groupby("journal_key", sort=False):
        for column in ("legal_entity", "currency", "period"):
            if lines[column].nunique() != 1:
                raise ValueError(f"journal {key} has several values of {column}: "
                                 f"{sorted(lines[column].astype(str).unique())}")
        first = lines.iloc[0]
        entry_lines = tuple(
            JournalEntryLine(
                line_number=int(row.line_number), account=str(row.account),
                gl_account=_text(getattr(row, "gl_account", None)),
                debit=int(row.debit), credit=int(row.credit),
                debit_functional=int(row.debit_functional),
                credit_functional=int(row.credit_functional),
                memo=_text(row.memo), department=_text(getattr(row, "department", None)),
            )
            for row in lines.itertuples(index=False)
        )
        entries.append(JournalEntry(
            journal_key=str(key), journal_id=str(first["journal_id"]),
            legal_entity=str(first["legal_entity"]), period=str(first["period"]),
            entry_date=pd.Timestamp(first["entry_date"]).date(), currency=str(first["currency"]),
            functional_currency=_text(first.get("functional_currency")),
            source_type=str(first["source_type"]), memo=_text(first["memo"]), lines=entry_lines,
        ))
    return entries
