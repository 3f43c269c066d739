"""The posted ledger over the sample company: replays change nothing, a changed source is reversed
and re-posted, late activity lands after a locked period, the close job refuses while a control
fails and locks when they hold, and the outbox posts each journal exactly once."""

from __future__ import annotations

import csv
import hashlib
import shutil
from datetime import date, datetime

import dagster as dg
import duckdb
import pandas as pd
import pytest

from q2c_pipeline.accounting.erp_files import JSON_FILE, NETSUITE_FILE
from q2c_pipeline.accounting.ledger import lock_period, read_ledger
from q2c_pipeline.accounting.outbox import enqueue, post_pending, read_outbox
from q2c_pipeline.accounting.posting_rules import apply_posting_rules
from q2c_pipeline.close.decisions import record_decision
from q2c_pipeline.core.policy import Policy
from q2c_pipeline.defs.accounting import (
    SCHEDULE_ACTOR,
    ErpPostingResource,
    business_day_of_month,
    close_period_job,
    erp_outbox,
    monthly_close_period_schedule,
)
from q2c_pipeline.defs.checks import find_lines_in_closed_periods, find_unbalanced_journals
from q2c_pipeline.defs.resources import (
    CloseSettingsResource,
    SourceSnapshotResource,
    WarehouseResource,
)
from q2c_pipeline.sources.snapshot import SnapshotSource
from q2c_pipeline.stages import (
    build_canonical,
    build_finance,
    land_snapshot,
)
from q2c_pipeline.warehouse import read_table
from q2c_pipeline_tests.fakes.erp_fake import FakeErp

AS_OF = date(2026, 6, 30)


def _ledger_bytes(conn) -> str:
    rows = conn.execute("select * from ledger.journal_lines order by all").fetchall()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


@pytest.fixture(scope="module")
def posted_warehouse(sample_company, tmp_path_factory):
    """Land, validate and post the sample company once (no Dagster); returns the file."""
    path = tmp_path_factory.mktemp("ledger") / "warehouse.duckdb"
    source = SnapshotSource(sample_company)
    extracted_at = datetime.fromisoformat(
        str(source.manifest()["extracted_at"]).replace("Z", "+00:00"))
    conn = duckdb.connect(str(path))
    land_snapshot(conn, source, extracted_at, request_id="test")
    build_canonical(conn)
    build_finance(conn, Policy(), AS_OF)
    conn.close()
    return path


@pytest.fixture
def warehouse(posted_warehouse, tmp_path):
    """A private copy of the posted warehouse, open for writing."""
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(posted_warehouse, path)
    conn = duckdb.connect(str(path))
    yield conn
    conn.close()


def _live_totals(lines: pd.DataFrame) -> dict:
    net = lines.assign(net=lines["debit"] - lines["credit"],
                       net_f=lines["debit_functional"] - lines["credit_functional"])
    grouped = net.groupby(["legal_entity", "account", "currency"])[["net", "net_f"]].sum()
    return {k: tuple(int(x) for x in v) for k, v in grouped.iterrows() if any(v)}


def test_replaying_the_close_three_times_gives_the_identical_ledger(warehouse):
    before = _ledger_bytes(warehouse)
    count = warehouse.execute("select count(*) from ledger.journal_lines").fetchone()[0]
    keys = set(read_ledger(warehouse)["journal_key"])
    for _ in range(3):
        result = build_finance(warehouse, Policy(), AS_OF)
        assert len(result.delta.lines) == 0 and result.delta.posting_batch is None
        assert set(result.engine.journal_lines["journal_key"]) == keys
    assert _ledger_bytes(warehouse) == before
    assert warehouse.execute("select count(*) from ledger.journal_lines").fetchone()[0] == count
    assert set(warehouse.execute(
        "select distinct posting_seq from ledger.journal_lines").fetchall()) == {(1,)}
    assert find_unbalanced_journals(warehouse)[0] == []


def test_a_changed_invoice_amount_is_reversed_and_reposted_never_edited(warehouse):
    line_id, invoice_id, amount, tax, inclusive = warehouse.execute(
        """select l.invoice_line_id, l.invoice_id, l.amount, l.tax_amount, l.tax_inclusive
           from canonical.invoice_lines l join canonical.invoices i using (invoice_id)
           where i.legal_entity = 'US01' and i.finalized_at >= '2026-03-01'
           order by i.finalized_at, l.invoice_line_id limit 1""").fetchone()
    before = read_ledger(warehouse)
    warehouse.execute("update canonical.invoice_lines set amount = amount + 10000 "
                      "where invoice_line_id = ?", [line_id])
    result = build_finance(warehouse, Policy(), AS_OF)
    after = read_ledger(warehouse)

    old = after[after["posting_seq"] == 1].reset_index(drop=True)
    assert old.equals(before)  # every line posted before is still there, unchanged
    billing = result.delta.lines[(result.delta.lines["source_type"] == "invoice")
                                 & (result.delta.lines["source_id"] == invoice_id)]
    kinds = billing.drop_duplicates("journal_key")["entry_type"].value_counts().to_dict()
    assert kinds == {"entry": 1, "reversal": 1}
    receivable = after[(after["source_id"] == invoice_id) & (after["source_type"] == "invoice")
                       & (after["account"] == "AccountsReceivable")]
    billed = amount + 10000 + (0 if inclusive else tax)
    assert int(receivable["debit"].sum() - receivable["credit"].sum()) == billed
    # what is live in the ledger is exactly what the engine wants the books to hold
    assert _live_totals(after) == _live_totals(result.engine.journal_lines)
    assert find_unbalanced_journals(warehouse)[0] == []


def test_a_late_invoice_after_the_close_posts_to_february_and_january_stays_byte_identical(
    warehouse,
):
    january = "select * from ledger.journal_lines where legal_entity = 'US01' " \
              "and period = '2026-01' order by all"
    jan_before = warehouse.execute(january).fetchall()
    assert jan_before, "the sample company posts in January"
    lock_period(warehouse, "US01", "2026-01", closed_at=datetime(2026, 2, 4, 18),
                closed_by_run="test")
    invoice = warehouse.execute(
        "select * from canonical.invoices where legal_entity = 'US01' "
        "order by finalized_at, invoice_id limit 1").df()
    lines = warehouse.execute(
        "select * from canonical.invoice_lines where invoice_id = ?",
        [invoice["invoice_id"].iloc[0]]).df()
    invoice["invoice_id"] = "late:in_1"
    invoice["source_id"] = "in_late_1"
    invoice["finalized_at"] = pd.Timestamp("2026-01-15 10:00")
    lines["invoice_id"] = "late:in_1"
    lines["invoice_line_id"] = "late:il_" + lines.index.astype(str)
    lines["created_at"] = pd.NaT
    warehouse.register("late_invoice", invoice)
    warehouse.register("late_lines", lines)
    warehouse.execute("insert into canonical.invoices by name select * from late_invoice")
    warehouse.execute("insert into canonical.invoice_lines by name select * from late_lines")

    result = build_finance(warehouse, Policy(), AS_OF)
    late = result.journal_lines[result.journal_lines["source_id"] == "late:in_1"]
    assert len(late) and set(late["period"]) == {"2026-02"}
    assert set(late["original_date"]) == {date(2026, 1, 15)}
    assert set(late["entry_date"]) == {date(2026, 2, 1)}
    billed = int((lines["amount"] + lines["tax_amount"].where(~lines["tax_inclusive"], 0)).sum())
    receivable = late[late["account"] == "AccountsReceivable"]
    assert int(receivable["debit"].sum()) == billed
    assert warehouse.execute(january).fetchall() == jan_before
    assert find_lines_in_closed_periods(warehouse)[0] == []
    assert not (result.delta.lines["period"] == "2026-01").any()


def test_the_fake_erp_rejects_a_closed_period_and_the_outbox_posts_each_journal_once(warehouse):
    lines = apply_posting_rules(read_ledger(warehouse),
                                read_table(warehouse, "canonical", "chart_of_accounts"))
    now = datetime(2026, 6, 30)
    journals = lines["journal_key"].nunique()
    assert enqueue(warehouse, lines, now=now) == journals
    assert enqueue(warehouse, lines, now=now) == 0
    erp = FakeErp(closed_periods={("US01", "2026-01")})
    run = post_pending(warehouse, erp, now=now)
    jan = lines[(lines["legal_entity"] == "US01") & (lines["period"] == "2026-01")]
    assert run.failed == jan["journal_key"].nunique() > 0
    assert run.posted == journals - run.failed and run.still_pending == 0
    outbox = read_outbox(warehouse)
    failed = outbox[outbox["status"] == "failed"]
    assert set(failed["reason"]) == {"period 2026-01 is closed for US01"}
    sent = len(erp.calls)
    again = post_pending(warehouse, erp, now=now)
    assert (again.posted, again.failed, len(erp.calls)) == (0, 0, sent)
    assert len(erp.documents) == journals - run.failed


@pytest.fixture
def closed_copy(closed_warehouse, tmp_path):
    """A private copy of the fully materialized sample warehouse (dbt marts included)."""
    path, _, _ = closed_warehouse
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(path, copy)
    return copy


def test_the_sample_run_posts_every_journal_and_writes_the_import_files(closed_warehouse):
    path, result, _ = closed_warehouse
    assert result.success
    conn = duckdb.connect(str(path), read_only=True)
    statuses = dict(conn.execute(
        "select status, count(*) from ledger.erp_outbox group by 1").fetchall())
    journals = conn.execute(
        "select count(distinct journal_key) from ledger.journal_lines").fetchone()[0]
    documents = conn.execute(
        "select count(distinct erp_document_id) from ledger.erp_outbox").fetchone()[0]
    conn.close()
    assert statuses == {"posted": journals} and documents == journals
    drops = sorted((path.parent / "output" / "erp").glob("drop_*"))
    assert len(drops) == 1
    with (drops[0] / NETSUITE_FILE).open() as handle:
        rows = list(csv.DictReader(handle))
    assert 0 < len({r["External ID"] for r in rows}) <= journals
    assert (drops[0] / JSON_FILE).read_text().startswith("[")


def test_re_materializing_the_outbox_sends_nothing_new(closed_copy, tmp_path):
    resources = {"warehouse": WarehouseResource(database_path=str(closed_copy)),
                 "erp_posting": ErpPostingResource(output_dir=str(tmp_path / "erp"))}
    result = dg.materialize([erp_outbox], resources=resources)
    metadata = result.asset_materializations_for_node("ledger__erp_outbox")[0].metadata
    assert metadata["enqueued"].value == 0 and metadata["posted"].value == 0
    assert not (tmp_path / "erp").exists()

    # A changed invoice: only its reversal and the new journals go out, in a drop of their own.
    conn = duckdb.connect(str(closed_copy))
    conn.execute("""update canonical.invoice_lines set amount = amount + 10000
                    where invoice_line_id = (select min(invoice_line_id)
                                             from canonical.invoice_lines)""")
    delta = build_finance(conn, Policy(), AS_OF).delta
    conn.close()
    assert delta.journals_reversed >= 1
    new_keys = delta.lines["journal_key"].nunique()
    result = dg.materialize([erp_outbox], resources=resources)
    metadata = result.asset_materializations_for_node("ledger__erp_outbox")[0].metadata
    assert metadata["enqueued"].value == metadata["posted"].value == new_keys
    drops = list((tmp_path / "erp").glob("drop_*"))
    assert len(drops) == 1
    with (drops[0] / NETSUITE_FILE).open() as handle:
        ids = {row["External ID"] for row in csv.DictReader(handle)}
    assert ids <= set(delta.lines["journal_key"])


def _close(path, snapshot, entity="US01", period="2026-01"):
    return close_period_job.execute_in_process(
        run_config={"ops": {"close_period": {"config": {"legal_entity": entity,
                                                       "period": period,
                                                       "actor": SCHEDULE_ACTOR}}}},
        resources={"warehouse": WarehouseResource(database_path=str(path)),
                   "erp": SourceSnapshotResource(root=str(snapshot)),
                   "close_settings": CloseSettingsResource()},
        raise_on_error=False,
    )


def test_the_close_job_refuses_while_a_journal_is_unbalanced_and_locks_when_green(
        closed_copy, sample_company):
    conn = duckdb.connect(str(closed_copy))
    # Shadow Labs (no legal entity, contract signed in January) is accepted open for this test
    shadow = conn.execute("select exception_id, legal_entity, period, source_table, record_id, "
                          "rule, owner from marts.fct_exceptions "
                          "where rule = 'missing_legal_entity_mapping'").df()
    record_decision(conn, actor="q2c-close-schedule", role="controllership", action="waive",
                    reason="ERP master row requested", exception=shadow.iloc[0].to_dict())
    journal_id = conn.execute(
        "select min(journal_id) from finance.journal_lines").fetchone()[0]
    conn.execute("update finance.journal_lines set debit = debit + 1 "
                 "where journal_id = ? and line_number = 1", [journal_id])
    conn.close()

    refused = _close(closed_copy, sample_company)
    assert not refused.success
    failure = refused.failure_data_for_node("close_period").user_failure_data
    assert "refusing to close US01 2026-01" in failure.description
    assert "journal_lines_balance (1 failing)" in failure.description
    assert failure.metadata["failing_controls"].value == {"journal_lines_balance": 1}

    conn = duckdb.connect(str(closed_copy))
    assert conn.execute("select count(*) from ledger.period_locks").fetchone()[0] == 0
    conn.execute("update finance.journal_lines set debit = debit - 1 "
                 "where journal_id = ? and line_number = 1", [journal_id])
    conn.close()

    locked = _close(closed_copy, sample_company)
    assert locked.success
    conn = duckdb.connect(str(closed_copy))
    row = conn.execute("select legal_entity, period, closed_by_run, lock_seq "
                       "from ledger.period_locks").fetchall()
    assert row == [("US01", "2026-01", locked.run_id, 1)]
    january = "select * from ledger.journal_lines where legal_entity = 'US01' " \
              "and period = '2026-01' order by all"
    jan_before = conn.execute(january).fetchall()
    build_finance(conn, Policy(), AS_OF)
    assert conn.execute(january).fetchall() == jan_before
    assert find_lines_in_closed_periods(conn)[0] == []
    conn.close()


def test_business_day_three_triggers_one_close_per_entity_for_the_previous_month(closed_copy):
    assert [business_day_of_month(date(2026, 7, d)) for d in (1, 2, 3, 4, 6)] == [1, 2, 3, 0, 4]
    warehouse_resource = WarehouseResource(database_path=str(closed_copy))
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 7, 3, 18),
        resources={"warehouse": warehouse_resource})
    requests = monthly_close_period_schedule(context)
    assert [(r.run_key, r.run_config["ops"]["close_period"]["config"]) for r in requests] == [
        (f"close_period:{e}:2026-06", {"legal_entity": e, "period": "2026-06",
                                        "actor": "q2c-close-schedule",
                                        "reason": "2026-06 close on business day 3"})
        for e in ("UK01", "US01")
    ]
    skip_context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 7, 6, 18),
        resources={"warehouse": warehouse_resource})
    assert isinstance(monthly_close_period_schedule(skip_context), dg.SkipReason)


def _die_after(acknowledged: int):
    """A file-drop ERP client whose process is killed (no cleanup, no flush: ``os._exit``)
    after it has acknowledged ``acknowledged`` journals, as ``kill -9`` mid-posting would."""
    import os

    from q2c_pipeline.accounting.erp_files import FileDropErpClient

    class Dying(FileDropErpClient):
        calls = 0

        def post_journal(self, entry):
            if Dying.calls == acknowledged:
                os._exit(137)
            Dying.calls += 1
            return super().post_journal(entry)

    return Dying


def _post_in_a_process_that_dies(path, erp_folder, client_class) -> int:
    import multiprocessing

    def child():
        from q2c_pipeline.accounting.outbox import post_ledger

        conn = duckdb.connect(str(path))
        post_ledger(conn, client_class(erp_folder))
        conn.close()

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(120)
    return process.exitcode


def _drop_journal_keys(erp_folder) -> list[str]:
    import json

    keys = []
    for manifest in sorted(erp_folder.glob(f"drop_*/{JSON_FILE}")):
        keys += [entry["journal_key"] for entry in json.loads(manifest.read_text())]
    return keys


@pytest.mark.parametrize("dies", ["after 40 receipts", "while writing the drop"])
def test_a_crash_mid_erp_posting_then_a_rerun_leaves_each_journal_in_exactly_one_drop(
    posted_warehouse, tmp_path, dies
):
    from q2c_pipeline.accounting import erp_files
    from q2c_pipeline.accounting.erp_files import FileDropErpClient
    from q2c_pipeline.accounting.outbox import post_ledger

    # The uninterrupted run, for comparison.
    clean_db, crashed_db = tmp_path / "clean.duckdb", tmp_path / "crashed.duckdb"
    shutil.copy(posted_warehouse, clean_db)
    shutil.copy(posted_warehouse, crashed_db)
    with duckdb.connect(str(clean_db)) as conn:
        clean = post_ledger(conn, FileDropErpClient(tmp_path / "clean_erp"))
        ledger_keys = {r[0] for r in conn.execute(
            "select distinct journal_key from ledger.journal_lines").fetchall()}
        clean_outbox = read_outbox(conn)[["journal_key", "status", "erp_document_id"]]
    assert clean.run.posted == len(ledger_keys) > 40

    erp = tmp_path / "erp"
    if dies == "after 40 receipts":
        client_class = _die_after(40)
    else:
        class DiesWriting(FileDropErpClient):
            def drop(self, lines):
                import os

                erp_files.write_journal_json = lambda *a: os._exit(137)  # in the child only
                return super().drop(lines)
        client_class = DiesWriting
    assert _post_in_a_process_that_dies(crashed_db, erp, client_class) == 137
    with duckdb.connect(str(crashed_db)) as conn:
        posted_before = dict(conn.execute(
            "select status, count(*) from ledger.erp_outbox group by 1").fetchall())
    assert posted_before == ({"posted": 40, "pending": len(ledger_keys) - 40}
                             if dies == "after 40 receipts" else {"pending": len(ledger_keys)})
    assert len(list(erp.glob("drop_*"))) == (1 if dies == "after 40 receipts" else 0)

    with duckdb.connect(str(crashed_db)) as conn:
        rerun = post_ledger(conn, FileDropErpClient(erp))
        outbox = read_outbox(conn)[["journal_key", "status", "erp_document_id"]]
    assert rerun.run.posted == len(ledger_keys) - posted_before.get("posted", 0)
    keys = _drop_journal_keys(erp)
    assert len(keys) == len(set(keys)) == len(ledger_keys)  # each journal in exactly one drop
    assert set(keys) == ledger_keys
    assert [p.name for p in erp.iterdir()] == [p.name for p in (tmp_path / "clean_erp").iterdir()]
    for name in (NETSUITE_FILE, JSON_FILE):  # the drop the re-run leaves is the clean run's
        assert [p.read_bytes() for p in erp.glob(f"drop_*/{name}")] == \
               [p.read_bytes() for p in (tmp_path / "clean_erp").glob(f"drop_*/{name}")]
    pd.testing.assert_frame_equal(outbox, clean_outbox)


def _close_in_a_process_killed_at(path, source_folder, stage: str) -> int:
    """Land, build and post the sample in a child process killed (``os._exit``: no cleanup, no
    commit, as ``kill -9``) at ``stage``: ``landing`` (every source object landed, the usage
    days not), ``canonical`` (the fifth canonical table replaced, the rest not), ``ledger``
    (inside the ledger append's transaction, after its insert) or ``finance`` (the ledger
    committed, the finance tables half written)."""
    import contextlib
    import multiprocessing
    import os

    def child():
        from q2c_pipeline import stages
        from q2c_pipeline.accounting import ledger

        real_replace = stages.replace_table
        calls = {"canonical": 0}

        def replace(conn, schema, name, *args, **kwargs):
            if schema == "canonical":
                calls["canonical"] += 1
                if stage == "canonical" and calls["canonical"] == 5:
                    os._exit(137)
            if stage == "finance" and (schema, name) == ("finance", "account_balances"):
                os._exit(137)
            return real_replace(conn, schema, name, *args, **kwargs)

        real_transaction = ledger.frame_transaction

        @contextlib.contextmanager
        def dying(conn, name, frame):
            with real_transaction(conn, name, frame) as view:
                yield view
                os._exit(137)  # after the insert, before the commit

        stages.replace_table = replace
        if stage == "landing":
            stages.land_usage_events = lambda *a, **k: os._exit(137)
        if stage == "ledger":
            ledger.frame_transaction = dying
        conn = duckdb.connect(str(path))
        land_snapshot(conn, SnapshotSource(source_folder), datetime(2026, 7, 1, 6),
                      request_id="test")
        build_canonical(conn)
        build_finance(conn, Policy(), AS_OF)

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(180)
    return process.exitcode


def test_a_close_killed_at_each_stage_then_run_again_posts_the_uninterrupted_ledger(
    posted_warehouse, sample_company, tmp_path
):
    """kill -9 in landing, then in the canonical build, then inside the ledger append, then
    while the finance tables are written; each time the next run starts from what the killed
    one left. The run after the last kill gives the uninterrupted close's ledger, byte for
    byte, and its finance tables."""
    path = tmp_path / "killed.duckdb"
    for stage in ("landing", "canonical", "ledger", "finance"):
        assert _close_in_a_process_killed_at(path, sample_company, stage) == 137, stage
        if stage == "ledger":  # the append never committed: not one line of it
            with duckdb.connect(str(path)) as conn:
                assert "journal_lines" not in {r[0] for r in conn.execute(
                    "select table_name from information_schema.tables "
                    "where table_schema = 'ledger'").fetchall()} or conn.execute(
                    "select count(*) from ledger.journal_lines").fetchone() == (0,)
    with duckdb.connect(str(path)) as conn:
        source = SnapshotSource(sample_company)
        extracted_at = datetime.fromisoformat(
            str(source.manifest()["extracted_at"]).replace("Z", "+00:00"))
        land_snapshot(conn, source, extracted_at, request_id="test")
        build_canonical(conn)
        build_finance(conn, Policy(), AS_OF)
        rerun = _ledger_bytes(conn)
        balances = conn.execute("select * from finance.account_balances order by all").fetchall()
    with duckdb.connect(str(posted_warehouse), read_only=True) as conn:
        assert rerun == _ledger_bytes(conn)
        assert balances == conn.execute(
            "select * from finance.account_balances order by all").fetchall()
