"""The close pack: one self-contained HTML page per legal entity and period, for the controller.

It gathers what a controller reviews before signing off a month from the warehouse the close
wrote: the inputs of the close, the period's figures, the contract position's roll-forward (as a
waterfall and as opening/closing bars), billings against revenue, the exceptions still waiting
and who owns them, the reconciliations' status, and the locks, waivers and other decisions on
record. Charts are matplotlib SVG inlined in the page: no JavaScript, no external URL, no font to
fetch, so the file can be mailed or archived as it is.

The page depends on the warehouse contents only (no clock is read, every query is ordered, SVG
ids are salted with a constant), so the same warehouse gives the same bytes and a pack can be
compared or hashed. It only reads, so it runs on a read-only connection, and a table this
warehouse does not have (a close from an older version) makes its section say so instead of
failing.
"""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from q2c_pipeline.close.exceptions import exceptions_with_state
from q2c_pipeline.core.money import from_minor
from q2c_pipeline.warehouse import table_exists

SUMMARY = "marts.fct_close_summary"
ROLLFORWARD = "marts.fct_deferred_revenue_rollforward"
WORK_QUEUE = "marts.fct_work_queue"
EXCEPTIONS = "marts.fct_exceptions"
AR_RECONCILIATION = "marts.fct_invoice_ar_reconciliation"
POSITION_RECONCILIATION = "marts.fct_contract_position_reconciliation"
CLOSE_RUNS = "ledger.close_runs"
PERIOD_LOCKS = "ledger.period_locks"
DECISIONS = "ledger.decisions"
UNASSIGNED = "UNASSIGNED"

# (h2 id, heading), in page order
SECTIONS = (
    ("inputs", "Close inputs"),
    ("summary", "Summary figures"),
    ("waterfall", "Contract position waterfall"),
    ("rollforward", "Roll-forward"),
    ("billings-revenue", "Billings and revenue"),
    ("exceptions", "Exceptions by owner and age"),
    ("reconciliation", "Reconciliation status"),
    ("decisions", "Locks, waivers and decisions"),
)

# The pack's SVG must not vary between runs or machines: a constant hash salt for the ids,
# matplotlib's bundled font drawn as paths (nothing for the browser to look up).
CHART_RC = {
    "svg.hashsalt": "q2c",
    "svg.fonttype": "path",
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.axis": "y",
    "axes.axisbelow": True,
    "grid.color": "#dddddd",
}
CHART_WIDTH_INCHES = 7.5  # 540 pt = 720 CSS px
INK, GOOD, BAD, WARM, MUTED = "#4a4f57", "#2a9d8f", "#d1495b", "#edae49", "#8d99ae"
AGE_BUCKETS = ((0, 7, "0-7 days"), (8, 30, "8-30 days"), (31, 90, "31-90 days"),
               (91, None, ">90 days"))
AGE_COLORS = ("#9ccfa8", "#edd382", "#f2a65a", "#d1495b", "#bbbbbb")
RULE_COLORS = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
               "#ff9da7", "#9c755f", "#bab0ac")
HIGHLIGHTED_ACTIONS = ("lock", "reopen", "waive")

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#1f2328;
 max-width:1120px;margin:24px auto;padding:0 16px;line-height:1.4;font-size:14px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:18px;margin-top:32px;
 border-bottom:1px solid #d0d7de;padding-bottom:4px}h3{font-size:15px;margin-bottom:6px}
nav a{margin-right:12px;color:#0b5cad;text-decoration:none}
table{border-collapse:collapse;margin:8px 0 12px;font-size:13px}
th,td{border:1px solid #d0d7de;padding:3px 6px;vertical-align:top;text-align:left;
 overflow-wrap:anywhere}
td:first-child,.nw{white-space:nowrap}
th{background:#f3f4f6;font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.ccy{color:#57606a;font-size:11px}
.facts th{white-space:nowrap}
.note{color:#57606a;font-style:italic}
.ok{color:#1a7f37;font-weight:600}.bad{color:#b42318;font-weight:600}
tr.total td{font-weight:600;background:#f6f8fa}
tr.past-sla td{background:#fff5f5}
tr.action-lock td{background:#eaf6ec}tr.action-reopen td{background:#fff4e0}
tr.action-waive td{background:#fdecec}
.badge{display:inline-block;padding:0 6px;border-radius:8px;background:#eef1f4;font-weight:600}
tr.action-lock .badge{background:#1a7f37;color:#fff}
tr.action-reopen .badge{background:#bc6c00;color:#fff}
tr.action-waive .badge{background:#b42318;color:#fff}
.queue td:nth-child(2){min-width:160px}.queue td:last-child{min-width:220px}
.decisions td:nth-child(n+8){min-width:120px}
figure{margin:8px 0 16px}figcaption{color:#57606a;font-size:12px;max-width:720px}
svg.chart{display:block;width:720px;max-width:100%;height:auto}
svg.chart *{stroke-linejoin:round;stroke-linecap:butt}
"""


class _Html(str):
    """Text that is already HTML (its data parts escaped): table cells pass it through."""


@dataclass(frozen=True)
class _Pack:
    conn: duckdb.DuckDBPyConnection
    entity: str
    period: str
    currency: str | None  # the entity's functional currency


def write_close_pack(conn: duckdb.DuckDBPyConnection, legal_entity: str, period: str,
                     out_dir: Path) -> Path:
    """Write ``close_pack_{legal_entity}_{period}.html`` in ``out_dir`` (created) and return
    its path. Reads only; the same warehouse contents give the same bytes."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"close_pack_{legal_entity}_{period}.html"
    path.write_bytes(_render(conn, legal_entity, period).encode("utf-8"))
    return path


def write_close_packs(conn: duckdb.DuckDBPyConnection, out_dir: Path) -> list[Path]:
    """One pack per legal entity at its close in progress (the latest period of
    ``marts.fct_close_summary``; UNASSIGNED is no entity to close and has none)."""
    if not table_exists(conn, SUMMARY):
        return []
    rows = conn.execute(
        f"select legal_entity, period from {SUMMARY} where legal_entity <> ? "
        "and is_latest_period order by legal_entity, period", [UNASSIGNED]).fetchall()
    return [write_close_pack(conn, entity, period, out_dir) for entity, period in rows]


def _render(conn: duckdb.DuckDBPyConnection, entity: str, period: str) -> str:
    """The whole page: head with the CSS, a contents line, then the sections in order."""
    pack = _Pack(conn, entity, period, _functional_currency(conn, entity, period))
    builders = (_inputs_section, _summary_section, _waterfall_section, _rollforward_section,
                _billings_section, _exceptions_section, _reconciliation_section,
                _decisions_section)
    sections = "".join(
        f'<section><h2 id="{key}">{_esc(title)}</h2>\n{build(pack)}</section>\n'
        for (key, title), build in zip(SECTIONS, builders, strict=True))
    contents = " ".join(f'<a href="#{key}">{_esc(title)}</a>' for key, title in SECTIONS)
    title = f"Close pack {entity} {period}"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta http-equiv=\"Content-Security-Policy\" "
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{_esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<h1>{_esc(title)}</h1>\n<nav>{contents}</nav>\n{sections}</body>\n</html>\n")


# --- warehouse access -------------------------------------------------------------------------

def _split(table: str) -> list[str]:
    return table.split(".", 1)


def _columns(conn: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return {name for (name,) in conn.execute(
        "select column_name from information_schema.columns where table_schema = ? "
        "and table_name = ?", _split(table)).fetchall()}


def _rows(conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence = ()) -> list[dict]:
    """Query rows as dicts of Python values (integers stay exact integers)."""
    cursor = conn.execute(sql, list(params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _functional_currency(conn: duckdb.DuckDBPyConnection, entity: str,
                         period: str) -> str | None:
    """The entity's functional currency from the close summary, else from the roll-forward."""
    for table in (SUMMARY, ROLLFORWARD):
        if table_exists(conn, table) and "functional_currency_code" in _columns(conn, table):
            row = conn.execute(
                f"select functional_currency_code from {table} where legal_entity = ? and "
                "functional_currency_code is not null order by period = ? desc, period desc "
                "limit 1", [entity, period]).fetchone()
            if row:
                return row[0]
    return None


# --- HTML pieces ------------------------------------------------------------------------------

def _esc(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _missing(table: str, consequence: str = "") -> str:
    return (f'<p class="note">{_esc(table)} is not available in this warehouse'
            f'{_esc(consequence)}.</p>\n')


def _note(text: str) -> str:
    return f'<p class="note">{_esc(text)}</p>\n'


def _major(amount_minor: int, currency: str) -> Decimal:
    return Decimal(from_minor(amount_minor, currency))


def _amount(amount_minor: int | None, currency: str | None) -> str:
    """Major units with thousands separators ("18,605.00"), for a column whose header names
    the currency."""
    if amount_minor is None or not currency:
        return "—"
    return f"{_major(amount_minor, currency):,}"


def _money(amount_minor: int | None, currency: str | None) -> _Html:
    """An amount with its currency code ("18,605.00 USD"), for columns of mixed currencies."""
    if amount_minor is None or not currency:
        return _Html("—")
    return _Html(f'{_esc(_amount(amount_minor, currency))}&nbsp;'
                 f'<span class="ccy">{_esc(currency)}</span>')


def _flag(ok: bool | None, yes: str = "tied", no: str = "NOT TIED") -> _Html:
    if ok is None:
        return _Html("—")
    return _Html(f'<span class="ok">{yes}</span>' if ok else f'<span class="bad">{no}</span>')


def _count(value: int | None) -> str:
    return "—" if value is None else f"{int(value):,}"


def _when(value: object) -> str:
    """A timestamp to the second; anything else (a date, text) as it is."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return "" if value is None else str(value)


def _table(headers: Sequence[str], rows: Iterable[Sequence], *, numeric: Iterable[int] = (),
           nowrap: Iterable[int] = (), row_classes: Sequence[str] | None = None,
           css_class: str = "") -> str:
    """A table; cells are escaped unless already HTML, ``numeric`` columns right-aligned and
    they and the ``nowrap`` columns (dates, codes) kept on one line."""
    right, whole = set(numeric), set(nowrap)

    def cls(i: int) -> str:
        return ' class="num"' if i in right else ' class="nw"' if i in whole else ""

    head = "".join(f"<th{cls(i)}>{_esc(h)}</th>" for i, h in enumerate(headers))
    body = []
    for n, row in enumerate(rows):
        css = f' class="{row_classes[n]}"' if row_classes and row_classes[n] else ""
        cells = "".join(f"<td{cls(i)}>{v if isinstance(v, _Html) else _esc(v)}</td>"
                        for i, v in enumerate(row))
        body.append(f"<tr{css}>{cells}</tr>")
    opening = f'<table class="{css_class}">' if css_class else "<table>"
    return f"{opening}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>\n"


def _facts(pairs: Iterable[tuple[str, object]]) -> str:
    rows = "".join(f"<tr><th>{_esc(k)}</th><td>{v if isinstance(v, _Html) else _esc(v)}</td>"
                   "</tr>" for k, v in pairs)
    return f'<table class="facts"><tbody>{rows}</tbody></table>\n'


# --- charts -----------------------------------------------------------------------------------

def _chart(key: str, caption: str, draw: Callable[[Axes], None], height: float = 3.2) -> str:
    """A figure drawn by ``draw``, as inline SVG with a caption.

    The SVG is made fit for inlining: no XML prolog, DOCTYPE or metadata (which name external
    URLs), sized in CSS pixels, and every id prefixed with ``key`` so two charts' ids never
    clash in one page."""
    with matplotlib.rc_context(CHART_RC):
        figure = Figure(figsize=(CHART_WIDTH_INCHES, height), layout="constrained")
        draw(figure.add_subplot())
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, count=1, flags=re.S)
    svg = re.sub(r'<style type="text/css">.*?</style>\s*', "", svg, count=1, flags=re.S)
    svg = re.sub(r'(\bid="|href="#|url\(#)', rf"\1{key}-", svg)
    root = re.match(r"<svg [^>]*>", svg).group(0)
    _, _, width, height_pt = (float(v) for v in
                              re.search(r'viewBox="([^"]+)"', root).group(1).split())
    tag = (f'<svg class="chart" viewBox="0 0 {width:g} {height_pt:g}" '
           f'width="{round(width * 4 / 3)}" height="{round(height_pt * 4 / 3)}" role="img" '
           f'aria-label="{_esc(caption)}">')
    return (f"<figure>{tag}{svg[len(root):].strip()}\n"
            f"<figcaption>{_esc(caption)}</figcaption></figure>\n")


def _money_axis(ax: Axes, currency: str) -> None:
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:,.0f}"))
    ax.set_ylabel(currency)
    ax.axhline(0, color=INK, linewidth=0.8)


def _plot_value(amount_minor: int, currency: str) -> float:
    """A money amount as a float, for drawing only (tables show the exact Decimal)."""
    return float(_major(amount_minor, currency))


def _grouped_bars(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float], str]],
                  currency: str) -> Callable[[Axes], None]:
    def draw(ax: Axes) -> None:
        width = 0.8 / len(series)
        for n, (name, values, color) in enumerate(series):
            offset = (n - (len(series) - 1) / 2) * width
            ax.bar([i + offset for i in range(len(labels))], values, width * 0.95,
                   label=name, color=color)
        ax.set_xticks(range(len(labels)), labels)
        _money_axis(ax, currency)
        ax.figure.legend(frameon=False, ncols=len(series), loc="outside upper left")
    return draw


def _stacked_bars(categories: Sequence[str], stacks: Sequence[tuple[str, Sequence[int], str]],
                  ylabel: str) -> Callable[[Axes], None]:
    def draw(ax: Axes) -> None:
        bottoms = [0] * len(categories)
        for name, counts, color in stacks:
            ax.bar(range(len(categories)), counts, 0.6, bottom=bottoms, label=name, color=color)
            bottoms = [b + c for b, c in zip(bottoms, counts, strict=True)]
        ax.set_xticks(range(len(categories)), categories)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.figure.legend(frameon=False, loc="outside right upper")
    return draw


# --- sections ---------------------------------------------------------------------------------

def _inputs_section(pack: _Pack) -> str:
    """Entity, period, functional currency; the as-of date and inputs of the latest close."""
    facts: list[tuple[str, object]] = [("Legal entity", pack.entity), ("Period", pack.period),
                                       ("Functional currency", pack.currency or "unknown")]
    if not table_exists(pack.conn, CLOSE_RUNS):
        return _facts(facts) + _missing(CLOSE_RUNS, ": the as-of date and the inputs of the "
                                        "close were not recorded")
    columns = _columns(pack.conn, CLOSE_RUNS)
    order = "recorded_at desc nulls last, " if "recorded_at" in columns else ""
    runs = _rows(pack.conn, f"select * from {CLOSE_RUNS} order by {order}"
                 + ", ".join(sorted(columns)))
    if not runs:
        return _facts(facts) + _note(f"{CLOSE_RUNS} has no close run recorded.")
    latest = runs[0]
    labels = (("as_of", "As-of date"), ("as_of_source", "As-of date from"),
              ("run_id", "Close run"), ("recorded_at", "Recorded at (UTC)"),
              ("policy_path", "Policy file"), ("policy_sha256", "Policy sha256"),
              ("warehouse_path", "Warehouse"), ("sources", "Sources"),
              ("roles_path", "Roles file"))
    facts += [(label, _when(latest[c]) or "—") for c, label in labels if c in latest]
    facts.append(("Close runs recorded", f"{len(runs):,}"))
    return _facts(facts)


SUMMARY_MONEY = (
    ("billings_functional_minor", "Billings"),
    ("revenue_functional_minor", "Revenue (gross)"),
    ("reductions_functional_minor", "Reductions of revenue"),
    ("position_reductions_functional_minor", "Reductions of the contract position"),
    ("contract_liability_functional_minor", "Contract liability (deferred revenue), month end"),
    ("refund_liability_functional_minor", "Refund liability, month end"),
    ("contract_asset_functional_minor", "Contract asset, month end"),
    ("unbilled_receivable_functional_minor", "Unbilled receivable, month end"),
    ("deferred_balance_functional_minor",
     "Net contract position (liability + refund liability − asset − unbilled)"),
)
OWNERS = ("sales_ops", "billing_ops", "controllership")


def _summary_section(pack: _Pack) -> str:
    """The period's row of the close summary, in the functional currency."""
    if not table_exists(pack.conn, SUMMARY):
        return _missing(SUMMARY)
    rows = _rows(pack.conn, f"select * from {SUMMARY} where legal_entity = ? and period = ?",
                 [pack.entity, pack.period])
    if not rows:
        return _note(f"{SUMMARY} has no row for {pack.entity} {pack.period}.")
    row, ccy = rows[0], pack.currency
    figures: list[tuple[str, object]] = [
        (label, _amount(row[c], ccy)) for c, label in SUMMARY_MONEY if c in row]
    if row.get("revenue_functional_minor") is not None and \
            row.get("reductions_functional_minor") is not None:
        net = row["revenue_functional_minor"] - row["reductions_functional_minor"]
        figures.insert(3, ("Net revenue (revenue − reductions)", _amount(net, ccy)))
    table = _table(("Figure", f"{pack.period}, {ccy}"), figures, numeric=(1,))
    status = [("Latest period (close in progress)", "yes" if row.get("is_latest_period")
               else "no"),
              ("Roll-forward ties to the ledger", _flag(row.get("is_rollforward_tied")))]
    status += [(f"Open exceptions, {owner}", _count(row.get(f"open_exceptions_{owner}")))
               for owner in OWNERS if f"open_exceptions_{owner}" in row]
    note = _note("Open exception counts are a snapshot of the quarantine and sit on the "
                 "latest period only (— on earlier periods).")
    return table + _facts(status) + note


def _monthly_rollforward(pack: _Pack) -> tuple[list[dict], str]:
    """The entity's roll-forward summed over transaction currencies in the functional currency,
    one row per month up to the period; with the currencies it spans."""
    columns = _columns(pack.conn, ROLLFORWARD)
    parts = ("opening", "billings", "revenue", "reductions", "settlements", "fx",
             "other_movements", "closing", "ledger_closing")
    sums = ", ".join(
        f"sum({p}_functional_minor) as {p}" if f"{p}_functional_minor" in columns
        else f"0 as {p}" for p in parts)
    months = _rows(pack.conn,
                   f"select period, {sums}, bool_and(is_tied) as is_tied from {ROLLFORWARD} "
                   "where legal_entity = ? and period <= ? group by period order by period",
                   [pack.entity, pack.period])
    currencies = pack.conn.execute(
        f"select string_agg(distinct currency_code, ', ' order by currency_code) "
        f"from {ROLLFORWARD} where legal_entity = ? and period <= ?",
        [pack.entity, pack.period]).fetchone()[0]
    return months, currencies or ""


def _other(month: dict) -> int:
    """Settlements, FX and other movements as one signed change of the position."""
    return -month["settlements"] + month["fx"] + month["other_movements"]


def _waterfall_section(pack: _Pack) -> str:
    """Month by month: opening, + billings, − revenue, − reductions, ± settlements/FX/other,
    = closing of the net contract position, functional currency."""
    if not table_exists(pack.conn, ROLLFORWARD):
        return _missing(ROLLFORWARD)
    months, currencies = _monthly_rollforward(pack)
    if not months or not pack.currency:
        return _note(f"{ROLLFORWARD} has no row for {pack.entity} up to {pack.period}.")
    ccy = pack.currency
    steps = (("+ billings", GOOD, lambda m: m["billings"]),
             ("− revenue", BAD, lambda m: -m["revenue"]),
             ("− reductions", WARM, lambda m: -m["reductions"]),
             ("± settlements, FX, other", MUTED, _other))

    def draw(ax: Axes) -> None:
        ax.use_sticky_edges = False  # floating bars: leave a margin above and below them
        level = _plot_value(months[0]["opening"], ccy)
        ax.bar(0, level, 0.85, color=INK)
        ticks, labels = [0], ["opening"]
        for i, month in enumerate(months):
            start = 2 + i * (len(steps) + 2)
            for k, (_, color, change) in enumerate(steps):
                delta = _plot_value(change(month), ccy)
                ax.bar(start + k, delta, 0.85, bottom=level, color=color)
                level += delta
            ax.bar(start + len(steps), _plot_value(month["closing"], ccy), 0.85, color=INK)
            ticks.append(start + len(steps) / 2)
            labels.append(month["period"])
        ax.set_xticks(ticks, labels)
        _money_axis(ax, ccy)
        handles = [Patch(color=INK, label="opening / closing")] + [
            Patch(color=color, label=name) for name, color, _ in steps]
        ax.figure.legend(handles=handles, frameon=False, ncols=len(handles),
                         loc="outside upper left")

    translated = ("" if currencies == ccy else
                  f", transaction currencies {currencies} at the ledger's {ccy} amounts")
    caption = (f"Net contract position of {pack.entity} (deferred revenue + refund liability − "
               f"contract asset − unbilled receivable), {ccy}{translated}. Each month: "
               "+ billings, − revenue, − reductions, − settlements ± FX and other movements, "
               "then the closing bar.")
    table = _table(
        ("Month", f"Opening, {ccy}", "+ Billings", "− Revenue", "− Reductions of the position",
         "± Settlements, FX, other", "= Closing", "Ledger closing", "Tie"),
        [(m["period"], *(_amount(v, ccy) for v in (
            m["opening"], m["billings"], m["revenue"], m["reductions"], _other(m),
            m["closing"], m["ledger_closing"])), _flag(m["is_tied"])) for m in months],
        numeric=range(1, 8))
    return _chart("waterfall", caption, draw, height=3.6) + table


ROLLFORWARD_LINES = (
    ("opening", "Opening"), ("billings", "+ Billings"), ("revenue", "− Revenue"),
    ("reductions", "− Reductions of the position"), ("settlements", "− Settlements"),
    ("fx", "± FX"),
    ("other_movements", "± Other movements"), ("closing", "= Closing"),
    ("ledger_closing", "Ledger closing"),
    ("deferred_revenue_closing", "… of which deferred revenue"),
    ("refund_liability_closing", "… of which refund liability"),
    ("contract_asset_closing", "… less contract asset"),
    ("unbilled_receivable_closing", "… less unbilled receivable"),
    ("difference", "Difference (closing − ledger)"),
)


def _rollforward_section(pack: _Pack) -> str:
    """Opening against closing per month, and the period's roll-forward per currency with its
    tie to the ledger."""
    if not table_exists(pack.conn, ROLLFORWARD):
        return _missing(ROLLFORWARD)
    months, _ = _monthly_rollforward(pack)
    if not months or not pack.currency:
        return _note(f"{ROLLFORWARD} has no row for {pack.entity} up to {pack.period}.")
    ccy = pack.currency
    chart = _chart(
        "rollforward",
        f"Opening and closing net contract position of {pack.entity} per month, {ccy} "
        "(all transaction currencies).",
        _grouped_bars([m["period"] for m in months],
                      [("opening", [_plot_value(m["opening"], ccy) for m in months], MUTED),
                       ("closing", [_plot_value(m["closing"], ccy) for m in months], INK)],
                      ccy))
    rows = _rows(pack.conn, f"select * from {ROLLFORWARD} where legal_entity = ? and period = ?"
                 " order by currency_code", [pack.entity, pack.period])
    if not rows:
        return chart + _note(f"No roll-forward row for {pack.entity} {pack.period}.")
    # columns: each transaction currency, its functional amounts where they differ, the total
    columns: list[tuple[str, str, dict, bool]] = []  # header, currency, part -> minor, tied
    parts = [part for part, _ in ROLLFORWARD_LINES if f"{part}_minor" in rows[0]]
    for row in rows:
        code = row["currency_code"]
        columns.append((code, code, {p: row[f"{p}_minor"] for p in parts}, row["is_tied"]))
        if code != ccy:
            columns.append((f"{code} in {ccy}", ccy,
                            {p: row.get(f"{p}_functional_minor") for p in parts},
                            row["is_tied"]))
    if len(rows) > 1:
        functional = {p: [r.get(f"{p}_functional_minor") for r in rows] for p in parts}
        columns.append((f"Total {ccy}", ccy,
                        {p: None if None in v else sum(v) for p, v in functional.items()},
                        all(r["is_tied"] for r in rows)))
    labels = dict(ROLLFORWARD_LINES)
    lines = [(labels[p], *(_amount(values[p], code) for _, code, values, _ in columns))
             for p in parts]
    table = _table((f"Roll-forward {pack.period}", *(header for header, *_ in columns)),
                   [*lines, ("Tie to the ledger", *(_flag(tied) for *_, tied in columns))],
                   numeric=range(1, len(columns) + 1),
                   row_classes=["total" if p == "closing" else "" for p in parts] + [""])
    return chart + table


def _billings_section(pack: _Pack) -> str:
    """Billings against revenue per month from the close summary."""
    if not table_exists(pack.conn, SUMMARY):
        return _missing(SUMMARY)
    months = _rows(pack.conn,
                   f"select period, billings_functional_minor as billings, "
                   f"revenue_functional_minor as revenue, reductions_functional_minor as "
                   f"reductions from {SUMMARY} where legal_entity = ? and period <= ? "
                   "order by period", [pack.entity, pack.period])
    if not months or not pack.currency:
        return _note(f"{SUMMARY} has no row for {pack.entity} up to {pack.period}.")
    ccy = pack.currency
    chart = _chart(
        "billings-revenue", f"Billings and gross revenue of {pack.entity} per month, {ccy}.",
        _grouped_bars([m["period"] for m in months],
                      [("billings", [_plot_value(m["billings"] or 0, ccy) for m in months],
                        GOOD),
                       ("revenue", [_plot_value(m["revenue"] or 0, ccy) for m in months], BAD)],
                      ccy))
    table = _table((f"Month, {ccy}", "Billings", "Revenue", "Reductions of revenue",
                    "Billings − revenue"),
                   [(m["period"], _amount(m["billings"], ccy), _amount(m["revenue"], ccy),
                     _amount(m["reductions"], ccy),
                     _amount(None if None in (m["billings"], m["revenue"])
                             else m["billings"] - m["revenue"], ccy)) for m in months],
                   numeric=range(1, 5))
    return chart + table


def _owner_cell(owner: str | None, entity: str | None, pack_entity: str) -> _Html:
    """The owning team, and the item's entity when it is not the pack's (UNASSIGNED)."""
    other = f'<br><span class="ccy">{_esc(entity)}</span>' if entity != pack_entity else ""
    return _Html(_esc(owner) + other)


def _age_bucket(age: int | None) -> int:
    """Index into AGE_BUCKETS; one past the end for an item without an age."""
    if age is None:
        return len(AGE_BUCKETS)
    return next(i for i, (low, high, _) in enumerate(AGE_BUCKETS)
                if age >= low and (high is None or age <= high))


WORK_QUEUE_NEEDS = {"queue", "owner", "legal_entity", "age_days"}


def _exceptions_section(pack: _Pack) -> str:
    """The work queue of this entity (and of no entity) by owner and age, one table per queue;
    without a work queue, the exceptions by owner and rule."""
    if not table_exists(pack.conn, WORK_QUEUE):
        return _missing(WORK_QUEUE, ": exceptions from marts.fct_exceptions instead, by owner "
                        "and rule, without ages") + _exceptions_by_rule(pack)
    columns = _columns(pack.conn, WORK_QUEUE)
    if not WORK_QUEUE_NEEDS <= columns:
        lacking = ", ".join(sorted(WORK_QUEUE_NEEDS - columns))
        return _note(f"{WORK_QUEUE} lacks {lacking}: exceptions from marts.fct_exceptions "
                     "instead.") + _exceptions_by_rule(pack)
    order = ", ".join(c for c in ("queue", "age_days desc nulls last", "owner", "record_id",
                                  "item_id") if c.split()[0] in columns)
    items = _rows(pack.conn, f"select * from {WORK_QUEUE} where legal_entity in (?, ?) "
                  f"order by {order}", [pack.entity, UNASSIGNED])
    if not items:
        return _note(f"The work queue is empty for {pack.entity} and {UNASSIGNED}.")
    owners = sorted({i["owner"] or "(none)" for i in items})
    counts = [[0] * len(owners) for _ in range(len(AGE_BUCKETS) + 1)]
    for item in items:
        counts[_age_bucket(item["age_days"])][owners.index(item["owner"] or "(none)")] += 1
    names = [label for _, _, label in AGE_BUCKETS] + ["no age"]
    stacks = [(names[b], counts[b], AGE_COLORS[b]) for b in range(len(names)) if any(counts[b])]
    as_of = sorted({str(i["as_of_date"]) for i in items if i.get("as_of_date") is not None})
    past = sum(1 for i in items if i.get("is_past_sla"))
    chart = _chart("exceptions", f"Work-queue items of {pack.entity} and {UNASSIGNED} by owner "
                   f"and age{' at ' + ', '.join(as_of) if as_of else ''}.",
                   _stacked_bars(owners, stacks, "items"), height=3.0)
    summary = _note(f"{len(items):,} items ({past:,} past their SLA); {UNASSIGNED} items are "
                    "not attributable to an entity and block every entity's lock.")
    tables = []
    for queue in sorted({i["queue"] for i in items}):
        rows = [i for i in items if i["queue"] == queue]
        with_amount = any(i.get("amount_minor") is not None for i in rows)
        headers = ["Customer", "Record", "Owner", "Since", "Age, days", "SLA, days",
                   "Past SLA", *(["Amount"] if with_amount else []), "What the owner can do"]
        cells = [[i.get("customer_name"), i.get("record_label") or i.get("record_id"),
                  _owner_cell(i["owner"], i["legal_entity"], pack.entity), i.get("since_date"),
                  _count(i["age_days"]), _count(i.get("sla_days")),
                  _flag(not i.get("is_past_sla"), "no", "yes"),
                  *([_money(i.get("amount_minor"), i.get("currency_code"))] if with_amount
                    else []), i.get("owner_action")] for i in rows]
        tables.append(f"<h3>{_esc(queue)} ({len(rows):,})</h3>\n" + _table(
            headers, cells, numeric=(4, 5, 7) if with_amount else (4, 5), nowrap=(2, 3, 6),
            row_classes=["past-sla" if i.get("is_past_sla") else "" for i in rows],
            css_class="queue"))
    return chart + summary + "".join(tables)


STATES = ("open", "override_pending", "waived", "resolved")


def _exceptions_by_rule(pack: _Pack) -> str:
    """Exceptions of this entity and UNASSIGNED dated up to the period (or undated), counted by
    owner and rule and state; the chart shows those still blocking the lock."""
    if not table_exists(pack.conn, EXCEPTIONS):
        return _missing(EXCEPTIONS)
    frame = exceptions_with_state(pack.conn)
    scope = frame["legal_entity"].isin([pack.entity, UNASSIGNED]) & (
        frame["period"].isna() | (frame["period"].astype(str) <= pack.period))
    records = frame[scope][["owner", "rule", "state"]].fillna("(none)").to_dict("records")
    if not records:
        return _note(f"No exception for {pack.entity} or {UNASSIGNED} up to {pack.period}.")
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for r in records:
        per_state = counts.setdefault((r["owner"], r["rule"]), dict.fromkeys(STATES, 0))
        per_state[r["state"]] = per_state.get(r["state"], 0) + 1
    keys = sorted(counts)
    owners = sorted({owner for owner, _ in keys})
    rules = sorted({rule for _, rule in keys})
    blocking = {k: v["open"] + v["override_pending"] for k, v in counts.items()}
    stacks = [(rule, [blocking.get((o, rule), 0) for o in owners],
               RULE_COLORS[n % len(RULE_COLORS)]) for n, rule in enumerate(rules)
              if any(blocking.get((o, rule), 0) for o in owners)]
    chart = (_chart("exceptions", f"Exceptions blocking the lock of {pack.entity} "
                    f"{pack.period} (open or override pending), by owner and rule.",
                    _stacked_bars(owners, stacks, "exceptions"), height=3.0)
             if stacks else _note("No exception in scope blocks the lock."))
    states = sorted({s for v in counts.values() for s in v} - set(STATES))
    headers = ("Owner", "Rule", *(s.replace("_", " ") for s in (*STATES, *states)), "Total")
    table = _table(headers, [(owner, rule, *(_count(counts[(owner, rule)].get(s, 0))
                                             for s in (*STATES, *states)),
                              _count(sum(counts[(owner, rule)].values())))
                             for owner, rule in keys],
                   numeric=range(2, len(headers)))
    return chart + table


def _status_table(pack: _Pack, table: str, groups: Sequence[tuple[str, str]],
                  needs: set[str]) -> str:
    """Row counts of ``table`` by the ``groups`` (SQL expression, header) for the entity, in the
    period and through it (every period up to it)."""
    if not table_exists(pack.conn, table):
        return _missing(table)
    columns = _columns(pack.conn, table)
    if not needs <= columns:
        return _note(f"{table} lacks {', '.join(sorted(needs - columns))}.")
    where, params, scope = [], [], ""
    if "legal_entity" in columns:
        where.append("legal_entity = ?")
        params.append(pack.entity)
    else:
        scope = _note(f"{table} has no legal_entity: counts are of every entity.")
    if "period" in columns:
        where.append("period <= ?")
        params.append(pack.period)
        in_period = "count(*) filter (where period = ?)"
        params.insert(0, pack.period)
    else:
        in_period = "null"
    expressions = ", ".join(expr for expr, _ in groups)
    rows = pack.conn.execute(
        f"select {expressions}, {in_period}, count(*) from {table} "
        f"{'where ' + ' and '.join(where) if where else ''} group by all order by all",
        params).fetchall()
    if not rows:
        return scope + _note(f"{table} has no row for {pack.entity} up to {pack.period}.")
    n = len(groups)
    return scope + _table(
        (*(header for _, header in groups), f"In {pack.period}", f"Through {pack.period}"),
        [(*(str(v) if not isinstance(v, bool) else ("yes" if v else "no") for v in r[:n]),
          _count(r[n]), _count(r[n + 1])) for r in rows], numeric=(n, n + 1))


def _reconciliation_section(pack: _Pack) -> str:
    """Invoices against AR, the roll-forward's tie to the ledger, contract positions against the
    ledger: status counts for the entity, and any roll-forward row that does not tie."""
    parts = ["<h3>Invoices against accounts receivable</h3>\n",
             _status_table(pack, AR_RECONCILIATION, [("reconciliation_status", "Status")],
                           {"reconciliation_status"}),
             "<h3>Roll-forward against the ledger</h3>\n",
             _status_table(pack, ROLLFORWARD, [("case when is_tied then 'tied' else 'not tied' "
                                                "end", "Tie status")], {"is_tied"})]
    if table_exists(pack.conn, ROLLFORWARD):
        untied = _rows(pack.conn,
                       f"select period, currency_code, difference_minor, "
                       f"functional_currency_code, difference_functional_minor from "
                       f"{ROLLFORWARD} where legal_entity = ? and period <= ? and not is_tied "
                       "order by period, currency_code", [pack.entity, pack.period])
        if untied:
            parts.append(_table(("Period", "Currency", "Difference", "Difference, functional"),
                                [(u["period"], u["currency_code"],
                                  _money(u["difference_minor"], u["currency_code"]),
                                  _money(u["difference_functional_minor"],
                                         u["functional_currency_code"])) for u in untied],
                                numeric=(2, 3)))
    parts += ["<h3>Contract positions against the ledger</h3>\n",
              _status_table(pack, POSITION_RECONCILIATION,
                            [("comparison_status", "Status"), ("is_compared", "Compared")],
                            {"comparison_status", "is_compared"})]
    return "".join(parts)


def _decision_record(row: dict, detail: dict) -> str:
    """What the decision was about, in words where the decision says it."""
    if detail.get("record"):
        return str(detail["record"])
    return " ".join(str(v) for v in (row.get("source_table"), row.get("record_id")) if v)


def _decision_detail(row: dict, detail: dict) -> str:
    """A line on what the decision's detail holds (lines locked, blockers, the lock removed)."""
    action = row["action"]
    if action == "lock":
        return (f"{detail.get('lines_in_period', '?')} lines in the period; "
                f"{len(detail.get('waived_open') or [])} waived exceptions still open")
    if action == "lock_refused":
        failing = detail.get("failing_controls") or {}
        return "failing: " + ", ".join(f"{k} ({v})" for k, v in sorted(failing.items()))
    if action == "reopen":
        lock = detail.get("lock") or {}
        return f"removed the lock of {lock['closed_at']}" if lock.get("closed_at") else ""
    said = [f"rule {row['rule']}" if row.get("rule") else "",
            f"owner {row['owner']}" if row.get("owner") else "",
            f"was {detail['state_before']}" if detail.get("state_before") else "",
            ", ".join(f"set {k}={v}" for k, v in sorted((detail.get("set") or {}).items()))]
    return "; ".join(s for s in said if s)


def _decisions_section(pack: _Pack) -> str:
    """The entity's period locks, then every decision on the entity (and on exceptions of no
    entity) up to the period, in decision order, locks, reopenings and waivers highlighted."""
    parts = ["<h3>Period locks</h3>\n"]
    if not table_exists(pack.conn, PERIOD_LOCKS):
        parts.append(_missing(PERIOD_LOCKS))
    else:
        locks = _rows(pack.conn, f"select period, closed_at, closed_by_run, lock_seq from "
                      f"{PERIOD_LOCKS} where legal_entity = ? order by period, lock_seq",
                      [pack.entity])
        locked = any(lock["period"] == pack.period for lock in locks)
        parts.append(_facts([(f"{pack.entity} {pack.period}",
                              _flag(locked, "locked", "open (not locked)"))]))
        parts.append(_table(("Period", "Closed at (UTC)", "Closed by run", "Lock #"),
                            [(lock["period"], _when(lock["closed_at"]), lock["closed_by_run"],
                              _count(lock["lock_seq"])) for lock in locks], numeric=(3,))
                     if locks else _note(f"No period of {pack.entity} is locked."))
    parts.append("<h3>Decisions</h3>\n")
    if not table_exists(pack.conn, DECISIONS):
        return "".join(parts) + _missing(DECISIONS)
    decisions = _rows(pack.conn, f"""
        select * from {DECISIONS}
        where (legal_entity = ? or (coalesce(legal_entity, ?) = ? and exception_id is not null))
          and (period is null or period <= ?)
        order by decision_seq""", [pack.entity, UNASSIGNED, UNASSIGNED, pack.period])
    if not decisions:
        return "".join(parts) + _note(f"No decision on {pack.entity} up to {pack.period}.")
    rows, classes = [], []
    for d in decisions:
        try:
            detail = json.loads(d.get("detail") or "{}")
        except ValueError:
            detail = {}
        detail = detail if isinstance(detail, dict) else {}
        rows.append((_count(d["decision_seq"]), _when(d["decided_at"]), d["actor"], d["role"],
                     _Html(f'<span class="badge">{_esc(d["action"])}</span>'),
                     d.get("legal_entity") or UNASSIGNED, d.get("period") or "undated",
                     _decision_record(d, detail), d["reason"], _decision_detail(d, detail)))
        classes.append(f"action-{d['action']}" if d["action"] in HIGHLIGHTED_ACTIONS else "")
    parts.append(_table(("#", "When (UTC)", "Who", "Role", "Action", "Entity", "Period",
                         "Record", "Reason", "Detail"), rows, numeric=(0,),
                        nowrap=(1, 2, 3, 4, 5, 6), row_classes=classes, css_class="decisions"))
    return "".join(parts)
