"""An in-process fake general ledger implementing ``ErpPostingClient``.

It behaves like NetSuite's journalEntry endpoint or Sage Intacct's GLBATCH create in the ways the
outbox depends on: it refuses an entry dated in a closed period, an entry whose debits and
credits differ (in the transaction or functional currency), a line without a GL account or with
one outside the chart it was given, and a second entry with an external id (``journal_key``) it
already holds, naming the document that holds it. Accepted entries get sequential document ids
(``JE-000001``). ``fail_next(n)`` makes the next n calls raise ``ErpUnavailable`` (an outage).
Every call is recorded in ``calls`` (the journal keys in order), so tests can assert what was
sent, not only what was stored.
"""

from __future__ import annotations

from collections.abc import Iterable

from q2c_pipeline.accounting.erp_posting import (
    DUPLICATE_EXTERNAL_ID,
    ErpRejected,
    ErpUnavailable,
    JournalEntry,
    PostingReceipt,
)


class FakeErp:
    def __init__(self, *, closed_periods: Iterable[tuple[str, str]] = (),
                 gl_accounts: Iterable[str] | None = None) -> None:
        self.closed_periods = set(closed_periods)
        self.gl_accounts = set(gl_accounts) if gl_accounts is not None else None
        self.documents: dict[str, JournalEntry] = {}
        self.by_external_id: dict[str, str] = {}
        self.calls: list[str] = []
        self._outages = 0

    def fail_next(self, count: int) -> None:
        self._outages = count

    def close_period(self, legal_entity: str, period: str) -> None:
        self.closed_periods.add((legal_entity, period))

    def reopen_period(self, legal_entity: str, period: str) -> None:
        self.closed_periods.discard((legal_entity, period))

    def post_journal(self, entry: JournalEntry) -> PostingReceipt:
        self.calls.append(entry.journal_key)
        if self._outages:
            self._outages -= 1
            raise ErpUnavailable("503 Service Unavailable")
        existing = self.by_external_id.get(entry.journal_key)
        if existing is not None:
            raise ErpRejected(f"external id {entry.journal_key} already used by {existing}",
                              code=DUPLICATE_EXTERNAL_ID, erp_document_id=existing)
        if (entry.legal_entity, entry.period) in self.closed_periods:
            raise ErpRejected(f"period {entry.period} is closed for {entry.legal_entity}",
                              code="period_closed")
        if not entry.lines:
            raise ErpRejected("journal entry has no lines", code="empty")
        if not entry.is_balanced():
            raise ErpRejected(
                f"unbalanced: debits {entry.total_debit} != credits {entry.total_credit} "
                f"{entry.currency} (minor units), or functional amounts differ",
                code="unbalanced")
        for line in entry.lines:
            if not line.gl_account:
                raise ErpRejected(f"line {line.line_number} has no GL account",
                                  code="invalid_account")
            if self.gl_accounts is not None and line.gl_account not in self.gl_accounts:
                raise ErpRejected(f"line {line.line_number}: unknown GL account "
                                  f"{line.gl_account}", code="invalid_account")
        document_id = f"JE-{len(self.documents) + 1:06d}"
        self.documents[document_id] = entry
        self.by_external_id[entry.journal_key] = document_id
        return PostingReceipt(journal_key=entry.journal_key, erp_document_id=document_id)
