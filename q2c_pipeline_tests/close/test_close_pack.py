"""The close pack: one self-contained HTML page per entity and period, with its charts, figures
and decisions, byte-identical for the same warehouse, and clean in a real browser."""

from __future__ import annotations

import html
import shutil
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from q2c_pipeline.close.decisions import record_decision
from q2c_pipeline.close.pack import write_close_pack, write_close_packs

CHROMIUM = Path("/usr/bin/chromium")
ENTITY, PERIOD = "US01", "2026-06"
ACTOR = "dana.controller@q2c.example"
# an apostrophe, angle brackets and an ampersand: the page must escape what people type
WAIVE_REASON = "duplicate line credited in April; customer's <signed> credit & rebill"
REOPEN_REASON = "late credit note for March"
WAIVED_AT = datetime(2026, 7, 3, 14, 5, tzinfo=UTC)
REQUIRED_TABLES = ("marts.fct_close_summary", "marts.fct_deferred_revenue_rollforward",
                   "marts.fct_exceptions", "marts.fct_invoice_ar_reconciliation")
SECTION_IDS = ("inputs", "summary", "waterfall", "rollforward", "billings-revenue",
               "exceptions", "reconciliation", "decisions")


@pytest.fixture(scope="module")
def warehouse(closed_warehouse, tmp_path_factory) -> Path:
    """A copy of the closed warehouse with a waiver and a reopening of US01 2026-03 decided."""
    source, result, _ = closed_warehouse
    copy = tmp_path_factory.mktemp("pack") / "warehouse.duckdb"
    shutil.copy(source, copy)
    conn = duckdb.connect(str(copy))
    try:
        # the pack needs these marts; the optional ones (work queue, close runs) may be absent
        present = {t for (t,) in conn.execute(
            "select table_schema || '.' || table_name from information_schema.tables").fetchall()}
        missing = sorted(set(REQUIRED_TABLES) - present)
        failed = [e.step_key for e in result.all_events if e.is_step_failure]
        assert not missing, f"the shared close did not build {missing} (failed steps {failed})"
        names = ["exception_id", "legal_entity", "period", "source_table", "record_id", "rule",
                 "owner", "record_label"]
        row = conn.execute(
            f"select {', '.join(names)} from marts.fct_exceptions where legal_entity = ? and "
            "period = '2026-03' and rule <> 'held_by_upstream' order by exception_id limit 1",
            [ENTITY]).fetchone()
        assert row, "the sample company has no root exception of US01 in 2026-03 to waive"
        exception = dict(zip(names, row, strict=True))
        record_decision(conn, actor=ACTOR, role="controllership", action="waive",
                        reason=WAIVE_REASON, legal_entity=ENTITY, period="2026-03",
                        exception=exception,
                        detail={"record": exception["record_label"], "state_before": "open"},
                        decided_at=WAIVED_AT)
        record_decision(conn, actor=ACTOR, role="controllership", action="reopen",
                        reason=REOPEN_REASON, legal_entity=ENTITY, period="2026-03",
                        decided_at=datetime(2026, 7, 4, 8, 0, tzinfo=UTC))
    finally:
        conn.close()
    return copy


@pytest.fixture
def conn(warehouse):
    connection = duckdb.connect(str(warehouse), read_only=True)
    yield connection
    connection.close()


def test_the_pack_shows_the_sections_figures_and_decisions_and_is_reproducible(conn, tmp_path):
    latest = conn.execute("select period from marts.fct_close_summary where legal_entity = ? "
                          "and is_latest_period", [ENTITY]).fetchone()[0]
    assert latest == PERIOD

    path = write_close_pack(conn, ENTITY, PERIOD, tmp_path / "first")
    assert path == tmp_path / "first" / f"close_pack_{ENTITY}_{PERIOD}.html"
    assert path.is_file()
    page = path.read_text(encoding="utf-8")

    positions = [page.find(f'<h2 id="{key}"') for key in SECTION_IDS]
    assert -1 not in positions, dict(zip(SECTION_IDS, positions, strict=True))
    assert positions == sorted(positions), "sections out of order"
    assert page.count("<svg") >= 3
    assert "<script" not in page.lower() and "http://" not in page and "https://" not in page

    minor, currency = conn.execute(
        "select billings_functional_minor, functional_currency_code from "
        "marts.fct_close_summary where legal_entity = ? and period = ?",
        [ENTITY, PERIOD]).fetchone()
    assert currency == "USD"
    billings = f"{(Decimal(minor) / 100).quantize(Decimal('0.01')):,}"
    assert billings in page, billings

    assert html.escape(WAIVE_REASON) in page and WAIVE_REASON not in page
    assert ACTOR in page and WAIVED_AT.strftime("%Y-%m-%d %H:%M:%S") in page
    assert REOPEN_REASON in page
    assert 'class="action-waive"' in page and 'class="action-reopen"' in page

    again = write_close_pack(conn, ENTITY, PERIOD, tmp_path / "second")
    assert again.read_bytes() == path.read_bytes()


def test_one_pack_per_entity_at_its_close_in_progress(conn, tmp_path):
    paths = write_close_packs(conn, tmp_path)
    expected = conn.execute(
        "select legal_entity, period from marts.fct_close_summary where legal_entity <> "
        "'UNASSIGNED' and is_latest_period order by 1").fetchall()
    assert expected and [p.name for p in paths] == [
        f"close_pack_{e}_{p}.html" for e, p in expected]
    assert all(p.is_file() for p in paths)


def test_the_pack_renders_in_chromium_without_errors(conn, tmp_path):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium "
                    "(the test drives Debian's browser, it never downloads one)")
    from playwright.sync_api import sync_playwright

    path = write_close_pack(conn, ENTITY, PERIOD, tmp_path)
    errors: list[str] = []
    requested: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console",
                    lambda message: errors.append(message.text) if message.type == "error"
                    else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("request", lambda request: requested.append(request.url))
            page.goto(path.as_uri(), wait_until="load")
            charts = page.locator("svg")
            assert charts.count() >= 3
            for n in range(charts.count()):
                chart = charts.nth(n)
                assert chart.is_visible(), f"chart {n} is not visible"
                box = chart.bounding_box()
                assert box and box["width"] > 300 and box["height"] > 100, (n, box)
            screenshot = tmp_path / "close_pack.png"
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert requested == [path.as_uri()], "the page fetched something besides itself"
    assert screenshot.stat().st_size > 20_000
