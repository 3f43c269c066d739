"""Close governance on the sample company: a lock waits for the exceptions of its entity and
period, controllership waives with a reason, a reopening is recorded, and an override corrects
Umbrella's product code at the next run so its contract posts.

Every step goes through the `q2c` command a controller types; the figures are computed here
from the sample's own prices and the ERP catalog's SSP."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from q2c_pipeline.cli import main
from q2c_pipeline.core.policy import Policy
from q2c_pipeline.stages import build_canonical, build_finance

DANA = "dana.controller@q2c.example"  # controllership (roles.yaml of the sample company)
BO = "bo.billing@q2c.example"         # billing_ops
SAM = "sam.salesops@q2c.example"      # sales_ops


@pytest.fixture
def books(closed_warehouse, sample_company, tmp_path, monkeypatch):
    source, _, _ = closed_warehouse
    warehouse = tmp_path / "books.duckdb"
    shutil.copy(source, warehouse)
    monkeypatch.setenv("Q2C_DUCKDB_PATH", str(warehouse))
    monkeypatch.setenv("Q2C_SAMPLE_DIR", str(sample_company))
    return warehouse


def q2c(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def dbt_build(warehouse, select: str, work_dir) -> None:
    """dbt build of ``select`` on the warehouse, in its own process (dbt-duckdb keeps its
    connection open in the process that ran it)."""
    from q2c_pipeline_tests.dbt.test_dbt_models import DBT_DIR

    done = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "build", "--select", select, "--vars",
         json.dumps({"duckdb_path": str(warehouse)}), "--project-dir", str(DBT_DIR),
         "--profiles-dir", str(DBT_DIR), "--target-path", str(work_dir / "target"),
         "--log-path", str(work_dir / "logs")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]


def exception_ids(warehouse, where: str) -> list[str]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return [r[0][:12] for r in conn.execute(
            f"select exception_id from marts.fct_exceptions where {where} order by 1").fetchall()]


def test_the_march_lock_waits_for_hoolis_invoice_until_it_is_waived(books, capsys):
    w = ("--duckdb", str(books))

    def close(period: str, actor: str = DANA) -> tuple[int, str]:
        return q2c(capsys, "close-period", "--entity", "US01", "--period", period, "--as",
                   actor, "--reason", f"{period} close", *w)

    # January: Shadow Labs has no legal entity (it could be US01's) and its contract was
    # signed in January; nobody but controllership may waive it
    code, out = close("2026-01")
    assert code == 1 and "Shadow Labs Inc customer" in out and "missing_legal_entity_mapping" in out
    shadow = exception_ids(books, "rule = 'missing_legal_entity_mapping'")
    code, out = q2c(capsys, "exceptions", "waive", *shadow, "--as", BO, "--reason", "x", *w)
    assert code == 2 and "needs controllership" in out
    code, out = q2c(capsys, "exceptions", "waive", *shadow, "--as", DANA, "--reason",
                    "ERP customer master row requested (ticket FIN-101)", *w)
    assert code == 0, out
    code, out = close("2026-01")
    assert code == 0 and "locked" in out and "1 waived exception open" in out

    # February: Umbrella's contract (signed 24 February) waits for its unknown product
    code, out = close("2026-02")
    assert code == 1 and "Umbrella Supplies contract line" in out and "Hooli" not in out
    umbrella = exception_ids(books, "rule = 'unknown_product_code'")
    assert q2c(capsys, "exceptions", "waive", *umbrella, "--as", DANA, "--reason",
               "revenue not started in February", *w)[0] == 0
    assert close("2026-02")[0] == 0

    # March: refused, naming Hooli's duplicated invoice (and Vandelay's negative row)
    code, out = close("2026-03")
    assert code == 1
    assert "Hooli Holdings invoice in_1c1y7upUQQcJT9LYD5MPsTd2" in out
    assert "duplicate_id" in out and "Vandelay Industries" in out
    hooli = exception_ids(books, "customer_name = 'Hooli Holdings' and rule = 'duplicate_id'")
    assert len(hooli) == 4  # two versions of the invoice and of its line
    assert q2c(capsys, "exceptions", "waive", *hooli, "--as", DANA, "--reason",
               "duplicate March invoice under review with Stripe support", *w)[0] == 0
    code, out = close("2026-03")
    assert code == 1 and "Hooli" not in out and "Vandelay Industries" in out
    vandelay = exception_ids(books, "rule = 'negative_quantity'")
    assert q2c(capsys, "exceptions", "waive", *vandelay, "--as", DANA, "--reason",
               "contract starts in April", *w)[0] == 0
    # Contoso's +5 seats from 16 March were treated prospectively by default: a judgement the
    # lock waits for until controllership keeps or changes it
    code, out = close("2026-03")
    assert code == 1 and "amendments_reviewed" in out and "Contoso Retail amendment line" in out
    with duckdb.connect(str(books), read_only=True) as conn:
        [contoso] = [r[0][:12] for r in conn.execute(
            "select item_id from marts.fct_work_queue where queue = "
            "'amendments_awaiting_review' and customer_name = 'Contoso Retail'").fetchall()]
    assert q2c(capsys, "exceptions", "resolve", contoso, "--as", SAM, "--reason", "x", *w)[0] == 2
    assert q2c(capsys, "exceptions", "resolve", contoso, "--as", DANA, "--reason",
               "distinct seats priced at their standalone price: prospective stands", *w)[0] == 0
    code, out = close("2026-03")
    assert code == 0 and "7 waived exceptions open" in out  # Shadow, Umbrella, Hooli x4, Vandelay

    # reopening: controllership only, with a reason, latest period first
    assert q2c(capsys, "close-period", "--entity", "US01", "--period", "2026-03", "--reopen",
               "--as", BO, "--reason", "x", *w)[0] == 1
    code, out = q2c(capsys, "close-period", "--entity", "US01", "--period", "2026-02",
                    "--reopen", "--as", DANA, "--reason", "late credit note", *w)
    assert code == 1 and "later periods are locked (2026-03)" in out
    code, out = q2c(capsys, "close-period", "--entity", "US01", "--period", "2026-03",
                    "--reopen", "--as", DANA, "--reason", "Hooli's credit note arrived", *w)
    assert code == 0 and "reopened" in out

    with duckdb.connect(str(books), read_only=True) as conn:
        locked = [p for (p,) in conn.execute(
            "select period from ledger.period_locks where legal_entity = 'US01' order by 1"
        ).fetchall()]
        decisions = conn.execute(
            "select action, actor, role, period, reason, detail from ledger.decisions "
            "where legal_entity in ('US01', 'UNASSIGNED') order by decision_seq").fetchall()
    assert locked == ["2026-01", "2026-02"]
    actions = [(a, p) for a, _, _, p, _, _ in decisions]
    assert actions == [
        ("lock_refused", "2026-01"), ("waive", None), ("lock", "2026-01"),
        ("lock_refused", "2026-02"), ("waive", "2026-03"), ("lock", "2026-02"),
        ("lock_refused", "2026-03"), *[("waive", "2026-03")] * 4, ("lock_refused", "2026-03"),
        ("waive", "2026-04"), ("lock_refused", "2026-03"), ("resolve", "2026-03"),
        ("lock", "2026-03"), ("reopen", "2026-03"),
    ]
    # who, as which team, why; the refused BO waive left nothing behind
    assert {(actor, role) for _, actor, role, *_ in decisions} == {(DANA, "controllership")}
    march_lock = json.loads(decisions[-2][5])
    assert {w["record"].split(" of ")[0] for w in march_lock["waived_open"]} >= {
        "Hooli Holdings invoice in_1c1y7upUQQcJT9LYD5MPsTd2", "Shadow Labs Inc customer "
        "001Hp000008ZHNXIA4"}
    assert decisions[-1][4] == "Hooli's credit note arrived"
    assert json.loads(decisions[-1][5])["lock"]["period"] == "2026-03"

    # the next lock runs the controls again (the waivers stand) and is recorded again
    assert close("2026-03")[0] == 0


def test_an_override_corrects_umbrellas_product_code_at_the_next_run(books, capsys):
    """Umbrella sold LEGACY-SUPPORT, which the ERP catalog lacks. Controllership records the
    correction (PLAT-SEAT: a product brings its SSP, so it is a revenue-treatment override) on
    the Salesforce line and on the four Stripe lines that bill it; the next run applies it to
    those record versions only, and the contract posts."""
    w = ("--duckdb", str(books))
    line = exception_ids(books, "rule = 'unknown_product_code'")
    stripe_lines = exception_ids(  # the support lines of its four invoices (held with it)
        books, "customer_name = 'Umbrella Supplies' and source_table = 'invoice_lines' "
        "and payload like '%Legacy premium support%'")
    code, out = q2c(capsys, "exceptions", "override", *line, "--set",
                    "SBQQ__ProductCode__c=PLAT-SEAT", "--as", BO, "--reason", "x", *w)
    assert code == 2 and "needs controllership" in out
    code, out = q2c(capsys, "exceptions", "override", *line, "--set",
                    "SBQQ__ProductCode__c=PLAT-SEAT", "--as", SAM, "--reason", "x", *w)
    assert code == 2 and "revenue-treatment override needs controllership" in out
    code, out = q2c(capsys, "exceptions", "override", *line, "--set",
                    "SBQQ__Quantity__c=2", "--set", "Nonsense__c=1", "--as", SAM, "--reason",
                    "x", *w)
    assert code == 2 and "cannot set" in out
    reason = "Legacy premium support is sold as a platform seat (catalog decision 2026-07)"
    assert q2c(capsys, "exceptions", "override", *line, "--set",
               "SBQQ__ProductCode__c=PLAT-SEAT", "--as", DANA, "--reason", reason, *w)[0] == 0
    assert len(stripe_lines) == 4
    assert q2c(capsys, "exceptions", "override", *stripe_lines, "--set",
               "product_code=PLAT-SEAT", "--as", DANA, "--reason", reason, *w)[0] == 0

    with duckdb.connect(str(books)) as conn:  # the next run's canonical and finance stages
        build_canonical(conn)
        build_finance(conn, Policy(), date(2026, 6, 30))
        applied = conn.execute("select target, status from canonical.overrides_applied "
                               "order by decision_seq").fetchall()
        raw = conn.execute("select payload ->> 'SBQQ__ProductCode__c' from "
                           "raw.salesforce_subscriptions where record_id = "
                           "'a0XHp00000G5YKXMA3'").fetchall()
        held = conn.execute("select count(*) from canonical.quarantine "
                            "where correlation_id = 'sf:800Hp000007qBvkIAE'").fetchone()[0]
        allocation = dict(conn.execute(
            "select contract_line_id, allocated_amount from finance.allocation "
            "where contract_id = 'sf:800Hp000007qBvkIAE'").fetchall())
        march = dict(conn.execute(
            "select source_id, amount from finance.revenue_schedule where contract_id = "
            "'sf:800Hp000007qBvkIAE' and period = '2026-03'").fetchall())
        billed = conn.execute(
            "select count(distinct source_id), sum(debit) from finance.journal_lines "
            "where source_type = 'invoice' and account = 'AccountsReceivable' and source_id in "
            "(select invoice_id from canonical.invoices "
            " where contract_id = 'sf:800Hp000007qBvkIAE')").fetchone()
    assert applied == [("raw.salesforce_subscriptions", "applied")] + [
        ("canonical.invoice_lines", "applied")] * 4
    assert raw == [("LEGACY-SUPPORT",)]  # what Salesforce said is kept as it said it
    assert held == 0
    # prices: 5 seats at 100.00 a month and support at 25.00 a month for 12 months;
    # SSP: the catalog's PLAT-SEAT at 1,200.00 a year per unit (5 + 1 units)
    price = 12 * (5 * 100_00 + 1 * 25_00)
    seats, support = 5 * 1_200_00, 1 * 1_200_00
    assert price == 630_000
    assert allocation == {"sf:a0XHp00000FMaCUMA1": price * seats // (seats + support),
                          "sf:a0XHp00000G5YKXMA3": price * support // (seats + support)}
    assert allocation == {"sf:a0XHp00000FMaCUMA1": 525_000, "sf:a0XHp00000G5YKXMA3": 105_000}
    # ratable by day over 2026-03-01..2027-02-28 (365 days): March is 31 of them
    assert march == {"sf:a0XHp00000FMaCUMA1": round(525_000 * 31 / 365),
                     "sf:a0XHp00000G5YKXMA3": round(105_000 * 31 / 365)}
    # four monthly invoices of 525.00 plus Texas sales tax 6.25% (32.81) now in receivables
    assert billed == (4, 4 * (52_500 + 3_281))


def test_a_revenue_treatment_override_needs_controllership_and_moves_only_the_timing(
        books, capsys):
    """Contoso's +5 seats from 16 March were treated prospectively by default, so the amendment
    waits for review. Only controllership may choose another treatment; a cumulative catch-up
    (ASC 606-10-25-13(b)) recognizes the same contract total, only earlier."""
    w = ("--duckdb", str(books))
    with duckdb.connect(str(books), read_only=True) as conn:
        [(item, line)] = conn.execute(
            "select left(item_id, 12), record_id from marts.fct_work_queue where queue = "
            "'amendments_awaiting_review' and customer_name = 'Contoso Retail'").fetchall()
        contract = conn.execute("select contract_id from canonical.contract_lines "
                                "where contract_line_id = ?", [line]).fetchone()[0]
    schedule = ("select period, sum(amount) from finance.revenue_schedule where contract_id = ? "
                "group by 1 order by 1")
    with duckdb.connect(str(books), read_only=True) as conn:
        before = dict(conn.execute(schedule, [contract]).fetchall())
    code, out = q2c(capsys, "exceptions", "override", item, "--set",
                    "modification_treatment=catch_up", "--as", SAM, "--reason", "x", *w)
    assert code == 2 and "revenue-treatment override needs controllership" in out
    assert q2c(capsys, "exceptions", "override", item, "--set",
               "modification_treatment=catch_up", "--as", DANA, "--reason",
               "the added seats are not distinct from the remaining ones", *w)[0] == 0
    with duckdb.connect(str(books)) as conn:
        build_canonical(conn)
        build_finance(conn, Policy(), date(2026, 6, 30))
        treatment = conn.execute("select modification_treatment from canonical.contract_lines "
                                 "where contract_line_id = ?", [line]).fetchall()
        after = dict(conn.execute(schedule, [contract]).fetchall())
        role = conn.execute("select role from ledger.decisions where action = 'override' "
                            "order by decision_seq desc limit 1").fetchone()[0]
    assert treatment == [("catch_up",)] and role == "controllership"
    assert sum(after.values()) == sum(before.values())  # the same contract total
    assert after != before  # recognized on another timing


def test_a_fix_after_the_lock_posts_in_the_first_open_period_and_the_controls_tie(
        books, capsys, tmp_path):
    """US01 is locked through June (the close's as-of month) with Umbrella's unknown product
    waived; controllership then corrects it. The next run books Umbrella's March-June
    entries in July, the first open period, dated 1 July and keeping their original dates; the
    locked months are untouched; and the contract-position control compares July's ledger with
    the June positions (nothing is dated after the close date) and ties. (dbt builds the
    control and its upstream models: ~15 s.)"""
    from datetime import datetime

    from q2c_pipeline.accounting.ledger import lock_period

    w = ("--duckdb", str(books))
    with duckdb.connect(str(books)) as conn:  # the locks themselves are tested above
        for month in range(1, 7):
            lock_period(conn, "US01", f"2026-{month:02d}", closed_at=datetime(2026, 7, 3),
                        closed_by_run="test")
        before = conn.execute("select count(*), sum(debit) from ledger.journal_lines "
                              "where legal_entity = 'US01'").fetchone()
    reason = "Legacy premium support is sold as a platform seat"
    line = exception_ids(books, "rule = 'unknown_product_code'")
    stripe_lines = exception_ids(books, "customer_name = 'Umbrella Supplies' and source_table "
                                 "= 'invoice_lines' and payload like '%Legacy premium support%'")
    for ids, field in ((line, "SBQQ__ProductCode__c"), (stripe_lines, "product_code")):
        assert q2c(capsys, "exceptions", "override", *ids, "--set", f"{field}=PLAT-SEAT",
                   "--as", DANA, "--reason", reason, *w)[0] == 0

    with duckdb.connect(str(books)) as conn:
        build_canonical(conn)
        delta = build_finance(conn, Policy(), date(2026, 6, 30)).delta
        posted = conn.execute(
            "select period, min(entry_date), min(original_date), max(original_date), "
            "sum(case when account = 'AccountsReceivable' then debit else 0 end), "
            "sum(case when account = 'Revenue' then credit - debit else 0 end) "
            "from ledger.journal_lines where posting_seq = ? group by period",
            [delta.posting_seq]).fetchall()
        locked_after = conn.execute(
            "select count(*), sum(debit) from ledger.journal_lines where legal_entity = 'US01' "
            "and period <= '2026-06'").fetchone()
    assert delta.journals_posted > 0 and not delta.held_back
    [(period, entry, first, last, receivable, revenue)] = posted
    assert (period, str(entry), str(first), str(last)) == (
        "2026-07", "2026-07-01", "2026-03-01", "2026-06-30")
    assert locked_after == before  # nothing new in a locked month
    # four monthly invoices of 525.00 plus Texas sales tax 6.25% (32.81), as billed
    assert receivable == 4 * (52_500 + 3_281)
    # revenue 1 March - 30 June (122 of 365 days) of the allocation 525,000 + 105,000
    # (test_an_override_corrects_umbrellas_product_code_at_the_next_run), by month
    days = [31, 30, 31, 30]
    assert revenue == sum(round(525_000 * d / 365) + round(105_000 * d / 365) for d in days)

    dbt_build(books, "+fct_contract_position_reconciliation", tmp_path)
    with duckdb.connect(str(books), read_only=True) as conn:
        rows = conn.execute(
            "select period, positions_period, comparison_status from "
            "marts.fct_contract_position_reconciliation where legal_entity = 'US01' and "
            "period >= '2026-06' order by period").fetchall()
    # June's ledger lacks what was booked late in July; July holds June's position and ties
    assert rows == [("2026-06", "2026-06", "posted_in_later_period"),
                    ("2026-07", "2026-06", "tied")]
    # the close summary says how much revenue July holds that is dated March-June
    from q2c_pipeline.reporting import close_summary_lines

    [late] = [line for line in close_summary_lines(str(books)) if "booked after" in line]
    assert late.endswith("US01 2026-07 2105.76 USD") and revenue == 210_576


def test_a_second_override_of_the_same_record_replaces_the_first(books, capsys, tmp_path):
    """Vandelay's line sells -2 seats (negative_quantity). Sales ops types "two" by mistake:
    the next run reads it and holds the line as invalid_type. The second correction, 2, is
    pinned to the same landed version: it applies over the first (not "lapsed"), the line is
    accepted with quantity 2, and `show` says what the source sent."""
    w = ("--duckdb", str(books))
    [negative] = exception_ids(books, "rule = 'negative_quantity'")
    with duckdb.connect(str(books), read_only=True) as conn:
        [(line,)] = conn.execute("select record_id from marts.fct_exceptions "
                                 "where rule = 'negative_quantity'").fetchall()
    assert q2c(capsys, "exceptions", "override", negative, "--set", "SBQQ__Quantity__c=NaN",
               "--as", SAM, "--reason", "x", *w)[0] == 2  # no value JSON has
    assert q2c(capsys, "exceptions", "override", negative, "--set", "SBQQ__Quantity__c=two",
               "--as", SAM, "--reason", "seats per the order form", *w)[0] == 0
    with duckdb.connect(str(books)) as conn:
        build_canonical(conn)
    dbt_build(books, "+fct_exceptions", tmp_path)
    [typo] = exception_ids(books, "rule = 'invalid_type' and customer_name = "
                                  "'Vandelay Industries'")
    code, out = q2c(capsys, "exceptions", "show", typo, *w)
    assert code == 0 and '"SBQQ__Quantity__c":"two"' in out
    assert "the source sent SBQQ__Quantity__c=-2" in out, out[:600]
    assert q2c(capsys, "exceptions", "override", typo, "--set", "SBQQ__Quantity__c=2",
               "--as", SAM, "--reason", "typo: 2 seats", *w)[0] == 0
    with duckdb.connect(str(books)) as conn:
        build_canonical(conn)
        applied = conn.execute("select fields, status from canonical.overrides_applied "
                               "order by decision_seq").fetchall()
        [(quantity,)] = conn.execute("select quantity from canonical.contract_lines "
                                     "where contract_line_id = ?", [line]).fetchall()
        held = conn.execute("select count(*) from canonical.quarantine where record_id = ?",
                            [line]).fetchone()[0]
    assert [status.split(" (")[0] for _, status in applied] == [
        "superseded by decision 2", "applied"]  # decisions 1 ("two") and 2 (2)
    assert quantity == 2 and held == 0


def test_a_malformed_update_of_a_posted_invoice_holds_the_change_not_the_invoice(
        books, sample_company, tmp_path, capsys):
    """Stripe re-sends a posted invoice with a line's taxes null (an export that dropped
    them). The update is quarantined with its payload; the books keep the version they posted
    (no reversal, AR still ties, nothing is lost: rows in = canonical - kept + quarantined).
    Resolving the held update rejects the change: the booked invoice stands."""
    from datetime import UTC, datetime

    from q2c_pipeline.defs.checks import find_unconserved_tables
    from q2c_pipeline.sources.snapshot import SnapshotSource
    from q2c_pipeline.stages import land_snapshot

    folder = tmp_path / "company"
    shutil.copytree(sample_company, folder)
    invoices = json.loads((folder / "stripe" / "invoices.json").read_text())
    with duckdb.connect(str(books), read_only=True) as conn:
        posted = {r[0] for r in conn.execute(
            "select distinct source_id from ledger.journal_lines where source_type = 'invoice'"
        ).fetchall()}
    target = next(i for i in invoices if f"stripe:{i['id']}" in posted and i["status"] == "paid")
    target["lines"]["data"][0]["taxes"] = None
    (folder / "stripe" / "invoices.json").write_text(json.dumps(invoices))
    invoice_id = f"stripe:{target['id']}"

    def ar_of(conn) -> int:
        return conn.execute("select coalesce(sum(debit - credit), 0) from ledger.journal_lines "
                            "where source_id = ? and account = 'AccountsReceivable'",
                            [invoice_id]).fetchall()[0][0]

    with duckdb.connect(str(books)) as conn:
        before = ar_of(conn)
        land_snapshot(conn, SnapshotSource(folder), datetime(2026, 7, 2, tzinfo=UTC))
        build_canonical(conn)
        delta = build_finance(conn, Policy(), date(2026, 6, 30)).delta
        kept = conn.execute("select source_table, record_id, rule from "
                            "canonical.kept_last_accepted order by 1, 2").fetchall()
        held = conn.execute("select rule from canonical.quarantine where record_id = ?",
                            [f"stripe:{target['lines']['data'][0]['id']}"]).fetchall()
        in_canonical = conn.execute("select count(*) from canonical.invoices "
                                    "where invoice_id = ?", [invoice_id]).fetchall()[0][0]
        unconserved, _ = find_unconserved_tables(conn)
        after = ar_of(conn)
    assert held == [("missing_value",)]
    assert ("invoices", invoice_id, "held_by_upstream") in kept
    assert in_canonical == 1 and delta.journals_reversed == 0 and after == before > 0
    assert unconserved == []

    # the held update is in the summary's count of held invoices only if it is not booked
    dbt_build(books, "+fct_close_summary +fct_work_queue", tmp_path)
    with duckdb.connect(str(books), read_only=True) as conn:
        [(held_rows,)] = conn.execute(
            "select count(*) from marts.fct_work_queue where queue = 'invoices_not_in_erp' "
            "and record_id = ?", [invoice_id]).fetchall()
    assert held_rows == 0  # it is in the ERP: the version posted before
    # controllership resolves the held update ("the export was wrong"): the change is rejected,
    # the paid invoice stays booked as it was (resolving never un-books a receivable)
    [line] = exception_ids(books, f"record_id = 'stripe:{target['lines']['data'][0]['id']}'")
    assert q2c(capsys, "exceptions", "resolve", line, "--as", DANA, "--reason",
               "the export dropped the taxes; Stripe has them", "--duckdb", str(books))[0] == 0
    with duckdb.connect(str(books)) as conn:
        build_canonical(conn)
        delta = build_finance(conn, Policy(), date(2026, 6, 30)).delta
        assert delta.journals_reversed == 0 and ar_of(conn) == before


def test_a_waiver_settles_the_records_held_with_it_in_the_queues_and_the_summary(
        books, capsys, tmp_path):
    """Controllership waives Umbrella's unknown product (the root). The records held with it
    (its contract, the other line, four invoices with their lines) follow it in the work queue,
    and the close summary's open exceptions drop by all of them, owner by owner."""
    def counts() -> tuple[dict, dict]:
        with duckdb.connect(str(books), read_only=True) as conn:
            states = dict(conn.execute(
                "select decision_state, count(*) from marts.fct_work_queue where queue = "
                "'quarantined_records' and customer_name = 'Umbrella Supplies' group by 1"
            ).fetchall())
            [summary] = conn.execute(
                "select open_exceptions_sales_ops, open_exceptions_billing_ops, "
                "open_exceptions_controllership from marts.fct_close_summary "
                "where legal_entity = 'US01' and open_exceptions_sales_ops is not null"
            ).fetchall()
        return states, dict(zip(("sales_ops", "billing_ops", "controllership"), summary,
                                strict=True))

    states, before = counts()
    with duckdb.connect(str(books), read_only=True) as conn:
        umbrella = dict(conn.execute(
            "select owner, count(*) from marts.fct_exceptions "
            "where customer_name = 'Umbrella Supplies' group by 1").fetchall())
    assert states == {"open": sum(umbrella.values())} and sum(umbrella.values()) > 5
    [root] = exception_ids(books, "rule = 'unknown_product_code'")
    assert q2c(capsys, "exceptions", "waive", root, "--as", DANA, "--reason",
               "revenue not started in February", "--duckdb", str(books))[0] == 0
    dbt_build(books, "+fct_work_queue +fct_close_summary", tmp_path)
    states, after = counts()
    assert states == {"waived": sum(umbrella.values())}
    assert {team: before[team] - after[team] for team in before} == {
        team: umbrella.get(team, 0) for team in before}
