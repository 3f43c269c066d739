"""The ERP outbox: idempotent enqueue and posting through the fake ERP."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from q2c_pipeline.accounting.erp_posting import build_journal_entries
from q2c_pipeline.accounting.outbox import (
    enqueue,
    post_pending,
    read_outbox,
    retry_failed,
)
from q2c_pipeline.accounting.posting_rules import apply_posting_rules
from q2c_pipeline_tests.accounting.test_erp_posting import CHART, journal
from q2c_pipeline_tests.fakes.erp_fake import FakeErp

T0 = datetime(2026, 4, 1, 6, 0)
T1 = datetime(2026, 4, 1, 7, 0)
T2 = datetime(2026, 4, 1, 8, 0)


def _journals() -> pd.DataFrame:
    ok = [("AccountsReceivable", 123450, 0), ("Revenue", 0, 123450)]
    return apply_posting_rules(pd.concat([
        journal("k_feb", "US1", "2026-02", "2026-02-27", ok),
        journal("k_mar", "US1", "2026-03", "2026-03-31", ok),
        journal("k_bad", "US1", "2026-03", "2026-03-30",
                [("AccountsReceivable", 100, 0), ("Revenue", 0, 99)]),
    ], ignore_index=True), CHART)


def _status(conn) -> dict[str, tuple]:
    outbox = read_outbox(conn)
    return {row.journal_key: (row.status, row.attempts, row.erp_document_id)
            for row in outbox.itertuples()}


def test_enqueue_adds_one_pending_row_per_new_journal_and_nothing_the_second_time():
    conn = duckdb.connect()
    assert enqueue(conn, _journals(), now=T0) == 3
    assert enqueue(conn, _journals(), now=T1) == 0
    outbox = read_outbox(conn)
    assert outbox["journal_key"].tolist() == ["k_feb", "k_bad", "k_mar"]
    assert set(outbox["status"]) == {"pending"}
    assert set(outbox["updated_at"]) == {pd.Timestamp(T0)}


def test_post_pending_posts_good_journals_and_records_rejections_with_reasons():
    conn = duckdb.connect()
    erp = FakeErp(closed_periods={("US1", "2026-02")})
    enqueue(conn, _journals(), now=T0)
    run = post_pending(conn, erp, now=T1)
    assert (run.posted, run.failed, run.still_pending, run.interrupted) == (1, 2, 0, False)
    assert _status(conn) == {"k_feb": ("failed", 1, None), "k_bad": ("failed", 1, None),
                             "k_mar": ("posted", 1, "JE-000001")}
    reasons = dict(zip(read_outbox(conn)["journal_key"], read_outbox(conn)["reason"],
                       strict=True))
    assert reasons["k_feb"] == "period 2026-02 is closed for US1"
    assert reasons["k_bad"].startswith("unbalanced: debits 100 != credits 99")
    assert erp.documents["JE-000001"].journal_key == "k_mar"


def test_a_posted_journal_is_never_sent_again_even_when_enqueued_again():
    conn = duckdb.connect()
    erp = FakeErp(closed_periods={("US1", "2026-02")})
    enqueue(conn, _journals(), now=T0)
    post_pending(conn, erp, now=T1)
    calls = list(erp.calls)
    enqueue(conn, _journals(), now=T2)
    run = post_pending(conn, erp, now=T2)
    assert (run.posted, run.failed) == (0, 0)
    assert erp.calls == calls
    assert len(erp.documents) == 1


def test_a_failed_journal_is_sent_again_only_after_retry_failed():
    conn = duckdb.connect()
    erp = FakeErp(closed_periods={("US1", "2026-02")})
    enqueue(conn, _journals(), now=T0)
    post_pending(conn, erp, now=T1)
    erp.reopen_period("US1", "2026-02")
    assert post_pending(conn, erp, now=T1).posted == 0
    assert retry_failed(conn, ["k_feb", "k_mar"], now=T2) == 1  # k_mar is posted: untouched
    run = post_pending(conn, erp, now=T2)
    assert (run.posted, run.failed) == (1, 0)
    assert _status(conn)["k_feb"] == ("posted", 2, "JE-000002")


def test_an_outage_keeps_the_journal_pending_and_stops_the_run():
    conn = duckdb.connect()
    erp = FakeErp()
    enqueue(conn, _journals().query("journal_key != 'k_bad'"), now=T0)
    erp.fail_next(1)
    run = post_pending(conn, erp, now=T1)
    assert (run.posted, run.still_pending, run.interrupted) == (0, 2, True)
    assert erp.calls == ["k_feb"]
    assert _status(conn)["k_feb"] == ("pending", 1, None)
    assert read_outbox(conn)["reason"].iloc[0] == "ERP unavailable: 503 Service Unavailable"
    run = post_pending(conn, erp, now=T2)
    assert (run.posted, run.still_pending) == (2, 0)
    assert _status(conn) == {"k_feb": ("posted", 2, "JE-000001"),
                             "k_mar": ("posted", 1, "JE-000002")}


def test_a_journal_the_erp_already_holds_is_recorded_as_posted_with_its_document():
    # The ERP accepted k_mar but the receipt was lost (crash before recording it).
    conn = duckdb.connect()
    erp = FakeErp()
    journals = _journals().query("journal_key == 'k_mar'")
    erp.post_journal(build_journal_entries(journals)[0])
    enqueue(conn, journals, now=T0)
    run = post_pending(conn, erp, now=T1)
    assert (run.posted, run.failed) == (1, 0)
    assert _status(conn) == {"k_mar": ("posted", 1, "JE-000001")}
    assert len(erp.documents) == 1
