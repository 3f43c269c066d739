"""The ERP outbox: journals waiting to be posted, posted, or refused, kept in DuckDB.

``ledger.erp_outbox`` has one row per ``journal_key`` (the engine's idempotency key, PRIMARY KEY):

| column | meaning |
|---|---|
| journal_key, journal_id, legal_entity, period, entry_date | the journal |
| status | ``pending`` (to send), ``posted`` (the ERP holds it), ``failed`` (the ERP refused it) |
| reason | why it failed, or the last transient error while still pending |
| attempts | how many times it was sent |
| erp_document_id | the ERP's id for the posted entry |
| payload | the entry as canonical JSON (``JournalEntry.to_json``), frozen when enqueued |
| enqueued_at, updated_at | caller-supplied instants (no wall clock here) |

Rules. ``enqueue`` adds a ``pending`` row only for journal keys the outbox has never seen, so
re-enqueueing the same journals adds nothing and a posted journal can never be queued again.
``post_pending`` sends pending rows in (entity, period, date, journal id) order and records each
outcome as soon as it is known, one statement per journal, so a crash loses at most the receipt of
the entry in flight; the ERP then answers the resend with "duplicate external id" naming its
document, which is recorded as posted. A rejection (``ErpRejected``) marks the row ``failed`` with
the ERP's reason and it is not sent again until ``retry_failed`` puts it back (after, say, the
period is reopened). An outage (``ErpUnavailable``) leaves the row pending, counts the attempt and
ends the run, so an unreachable ERP is not hammered.

A journal's content is fixed by its key (content-addressed by the engine): a corrected journal has
a new key and is a new row; reversing the old one is the engine's business, not the outbox's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time

import duckdb
import pandas as pd

from q2c_pipeline.accounting.erp_posting import (
    DUPLICATE_EXTERNAL_ID,
    ErpPostingClient,
    ErpRejected,
    ErpUnavailable,
    JournalEntry,
    build_journal_entries,
)
from q2c_pipeline.accounting.ledger import read_ledger
from q2c_pipeline.accounting.posting_rules import apply_posting_rules
from q2c_pipeline.warehouse import read_table

OUTBOX_TABLE = "ledger.erp_outbox"
OUTBOX_COLUMNS = [
    "journal_key", "journal_id", "legal_entity", "period", "entry_date", "status", "reason",
    "attempts", "erp_document_id", "payload", "enqueued_at", "updated_at",
]


@dataclass(frozen=True)
class PostingRun:
    """What one ``post_pending`` call did."""

    posted: int
    failed: int
    still_pending: int
    interrupted: bool


def ensure_outbox(conn: duckdb.DuckDBPyConnection) -> None:
    """Create ``ledger.erp_outbox`` if it does not exist."""
    conn.execute("create schema if not exists ledger")
    conn.execute(
        f"""create table if not exists {OUTBOX_TABLE} (
            journal_key varchar primary key,
            journal_id varchar not null,
            legal_entity varchar not null,
            period varchar not null,
            entry_date date not null,
            status varchar not null check (status in ('pending', 'posted', 'failed')),
            reason varchar,
            attempts integer not null,
            erp_document_id varchar,
            payload varchar not null,
            enqueued_at timestamp not null,
            updated_at timestamp not null)"""
    )


def enqueue(conn: duckdb.DuckDBPyConnection, journal_lines: pd.DataFrame, *, now: datetime) -> int:
    """Queue every journal of ``journal_lines`` whose key is new; returns how many were added.

    ``journal_lines`` are the ledger's lines, ideally after ``apply_posting_rules`` so the
    payload carries GL accounts and departments.
    """
    ensure_outbox(conn)
    entries = build_journal_entries(journal_lines)
    if not entries:
        return 0
    rows = pd.DataFrame({
        "journal_key": [e.journal_key for e in entries],
        "journal_id": [e.journal_id for e in entries],
        "legal_entity": [e.legal_entity for e in entries],
        "period": [e.period for e in entries],
        "entry_date": pd.to_datetime([e.entry_date for e in entries]),
        "payload": [e.to_json() for e in entries],
    })
    conn.register("_q2c_outbox_new", rows)
    try:
        conn.execute("begin transaction")
        before = conn.execute(f"select count(*) from {OUTBOX_TABLE}").fetchall()[0][0]
        conn.execute(
            f"""insert into {OUTBOX_TABLE}
                select n.journal_key, n.journal_id, n.legal_entity, n.period,
                       cast(n.entry_date as date), 'pending', null, 0, null, n.payload, ?, ?
                from _q2c_outbox_new n
                where not exists (select 1 from {OUTBOX_TABLE} o
                                  where o.journal_key = n.journal_key)
                order by n.legal_entity, n.period, n.entry_date, n.journal_id""",
            [now, now],
        )
        after = conn.execute(f"select count(*) from {OUTBOX_TABLE}").fetchall()[0][0]
        conn.execute("commit")
    except Exception:
        conn.execute("rollback")
        raise
    finally:
        conn.unregister("_q2c_outbox_new")
    return int(after - before)


def _record(conn: duckdb.DuckDBPyConnection, key: str, status: str, reason: str | None,
            document_id: str | None, now: datetime) -> None:
    conn.execute(
        f"""update {OUTBOX_TABLE}
            set status = ?, reason = ?, erp_document_id = ?, attempts = attempts + 1,
                updated_at = ?
            where journal_key = ? and status = 'pending'""",
        [status, reason, document_id, now, key],
    )


def post_pending(
    conn: duckdb.DuckDBPyConnection, client: ErpPostingClient, *, now: datetime,
    limit: int | None = None,
) -> PostingRun:
    """Send pending journals through ``client`` and record each outcome (see module doc)."""
    ensure_outbox(conn)
    pending = conn.execute(
        f"""select journal_key, payload from {OUTBOX_TABLE} where status = 'pending'
            order by legal_entity, period, entry_date, journal_id
            {'limit ?' if limit is not None else ''}""",
        [limit] if limit is not None else [],
    ).fetchall()
    posted = failed = 0
    interrupted = False
    for key, payload in pending:
        entry = JournalEntry.from_json(payload)
        try:
            receipt = client.post_journal(entry)
        except ErpRejected as rejection:
            if rejection.code == DUPLICATE_EXTERNAL_ID and rejection.erp_document_id:
                _record(conn, key, "posted", "already in ERP: " + rejection.reason,
                        rejection.erp_document_id, now)
                posted += 1
            else:
                _record(conn, key, "failed", rejection.reason, None, now)
                failed += 1
            continue
        except ErpUnavailable as outage:
            conn.execute(
                f"""update {OUTBOX_TABLE} set attempts = attempts + 1, reason = ?, updated_at = ?
                    where journal_key = ?""",
                [f"ERP unavailable: {outage}", now, key],
            )
            interrupted = True
            break
        _record(conn, key, "posted", None, receipt.erp_document_id, now)
        posted += 1
    still = conn.execute(
        f"select count(*) from {OUTBOX_TABLE} where status = 'pending'").fetchall()[0][0]
    return PostingRun(posted=posted, failed=failed, still_pending=int(still),
                      interrupted=interrupted)


@dataclass(frozen=True)
class LedgerPosting:
    """What ``post_ledger`` did: journals queued, files written, the posting run, statuses."""

    enqueued: int
    files: list
    run: PostingRun
    statuses: dict[str, int]


def post_ledger(conn: duckdb.DuckDBPyConnection, client) -> LedgerPosting:
    """Queue the ledger's new journals, hand the pending ones to the ERP (``client.drop``, when
    the client takes import files) and post them: the ERP outbox stage, safe to re-run after a
    crash at any point (see the module doc and ``FileDropErpClient``)."""
    ledger = read_ledger(conn)
    if len(ledger) == 0:
        ensure_outbox(conn)
        return LedgerPosting(0, [], PostingRun(0, 0, 0, False), {})
    # The instant recorded is the business date the lines were posted as of: no wall clock.
    now = datetime.combine(max(ledger["posting_as_of"]), time())
    with_gl = apply_posting_rules(ledger, read_table(conn, "canonical", "chart_of_accounts"))
    added = enqueue(conn, with_gl, now=now)
    pending = {r[0] for r in conn.execute(
        f"select journal_key from {OUTBOX_TABLE} where status = 'pending'").fetchall()}
    drop = getattr(client, "drop", None)
    files = drop(with_gl[with_gl["journal_key"].isin(pending)]) if drop else []
    run = post_pending(conn, client, now=now)
    statuses = dict(conn.execute(
        f"select status, count(*) from {OUTBOX_TABLE} group by status order by status"
    ).fetchall())
    return LedgerPosting(added, files, run, {k: int(v) for k, v in statuses.items()})


def retry_failed(conn: duckdb.DuckDBPyConnection, journal_keys: list[str], *,
                 now: datetime) -> int:
    """Put failed journals back to pending (after the cause was fixed); returns how many."""
    ensure_outbox(conn)
    if not journal_keys:
        return 0
    keys = pd.DataFrame({"journal_key": list(journal_keys)})
    conn.register("_q2c_outbox_retry", keys)
    try:
        rows = conn.execute(
            f"""update {OUTBOX_TABLE} set status = 'pending', updated_at = ?
                where status = 'failed'
                  and journal_key in (select journal_key from _q2c_outbox_retry)""",
            [now],
        ).fetchall()
    finally:
        conn.unregister("_q2c_outbox_retry")
    return int(rows[0][0]) if rows else 0


def read_outbox(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The whole outbox in posting order."""
    ensure_outbox(conn)
    return conn.execute(
        f"select {', '.join(OUTBOX_COLUMNS)} from {OUTBOX_TABLE} "
        "order by legal_entity, period, entry_date, journal_id"
    ).df()
