"""Usage summarization in DuckDB: hand-computed summary lines, fingerprints, drill-down, the cap
on lines per journal entry and the summary/detail posting mode."""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd
import pytest

from q2c_pipeline.accounting.usage_summary import (
    FingerprintMismatchError,
    SummaryMode,
    UsageWithoutEntityError,
    apply_summary_mode,
    build_usage_journal_lines,
    drill_down,
    summarize_usage,
    write_usage_summary,
)
from q2c_pipeline.core.fx import RateBook
from q2c_pipeline.core.policy import Policy
from q2c_pipeline.engine import run_engine
from q2c_pipeline_tests.revenue.builders import catalog, company

# usage_id, customer_id, product_code, occurred_at, quantity, amount (minor), currency
USAGE = [
    ("u01", "cus_a", "API", "2026-03-05 01:00:00", 10.0, 100, "USD"),
    ("u02", "cus_a", "API", "2026-03-05 13:30:00", 5.5, 55, "USD"),
    ("u03", "cus_b", "API", "2026-03-05 23:59:59", 2.0, 20, "USD"),
    ("u04", "cus_b", "STORAGE", "2026-03-05 00:00:00", 1.25, 300, "USD"),
    ("u05", "cus_a", "STORAGE", "2026-03-05 10:00:00", 0.75, 180, "USD"),
    ("u06", "cus_c", "API", "2026-03-05 09:00:00", 3.0, 27, "GBP"),
    ("u07", "cus_c", "API", "2026-03-05 12:00:00", 4.0, 36, "GBP"),
    ("u08", "cus_a", "API", "2026-03-06 00:00:00", 1.0, 10, "USD"),  # next day: not in 03-05
    ("u09", "cus_a", "API", "2026-03-05 15:00:00", 2.0, 18, "EUR"),
    ("u10", "cus_b", None, "2026-03-05 08:00:00", 1.0, 5, "USD"),
]
CUSTOMERS = [("cus_a", "US1"), ("cus_b", "US1"), ("cus_c", "UK1")]
FUNCTIONAL = {"US1": "USD", "UK1": "GBP"}


def _usage_frame(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["usage_id", "customer_id", "product_code", "occurred_at",
                                        "quantity", "amount", "currency"])
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"])
    frame["contract_line_id"] = None
    frame["invoice_line_id"] = None
    frame["source_system"] = "usage"
    frame["source_id"] = frame["usage_id"]
    frame["correlation_id"] = frame["usage_id"]
    return frame


def _warehouse(rows=USAGE) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect()
    conn.execute("create schema canonical")
    conn.register("usage_rows", _usage_frame(rows))
    conn.execute("create table canonical.usage as select * from usage_rows")
    conn.register("customer_rows", pd.DataFrame(CUSTOMERS, columns=["customer_id", "legal_entity"]))
    conn.execute("create table canonical.customers as select * from customer_rows")
    return conn


def _hash_fingerprint(conn, ids) -> str:
    hashes = [conn.execute("select hash(?)", [i]).fetchall()[0][0] for i in ids]
    xor = 0
    for value in hashes:
        xor ^= value
    return f"{xor:016x}{sum(h >> 32 for h in hashes) % 2**64:016x}"


def test_summary_groups_one_day_by_entity_product_account_and_currency():
    conn = _warehouse()
    summary = summarize_usage(conn, day="2026-03-05")
    keys = list(zip(summary["legal_entity"], summary["currency"], summary["product_code"],
                    summary["account"], strict=True))
    assert keys == [
        ("UK1", "GBP", "API", "UnbilledAccountsReceivable"), ("UK1", "GBP", "API", "Revenue"),
        ("US1", "EUR", "API", "UnbilledAccountsReceivable"), ("US1", "EUR", "API", "Revenue"),
        ("US1", "USD", "", "UnbilledAccountsReceivable"), ("US1", "USD", "", "Revenue"),
        ("US1", "USD", "API", "UnbilledAccountsReceivable"), ("US1", "USD", "API", "Revenue"),
        ("US1", "USD", "STORAGE", "UnbilledAccountsReceivable"),
        ("US1", "USD", "STORAGE", "Revenue"),
    ]
    assert summary["event_count"].tolist() == [2, 2, 1, 1, 1, 1, 3, 3, 2, 2]
    assert summary["amount"].tolist() == [63, 63, 18, 18, 5, 5, 175, 175, 480, 480]
    assert summary["quantity"].tolist() == [7.0, 7.0, 2.0, 2.0, 1.0, 1.0, 17.5, 17.5, 2.0, 2.0]
    assert summary["debit"].tolist() == [63, 0, 18, 0, 5, 0, 175, 0, 480, 0]
    assert summary["credit"].tolist() == [0, 63, 0, 18, 0, 5, 0, 175, 0, 480]
    assert set(summary["day"]) == {date(2026, 3, 5)}
    assert set(summary["period"]) == {"2026-03"}
    assert summary["summary_line_id"].is_unique


def test_fingerprint_is_the_xor_and_high_half_sum_of_the_event_id_hashes():
    conn = _warehouse()
    summary = summarize_usage(conn, day="2026-03-05")
    api_usd = summary[(summary["product_code"] == "API") & (summary["currency"] == "USD")]
    assert set(api_usd["events_fingerprint"]) == {_hash_fingerprint(conn, ["u01", "u02", "u03"])}


def test_summary_is_identical_when_rows_arrive_in_another_order():
    forward = summarize_usage(_warehouse(), day="2026-03-05")
    backward = summarize_usage(_warehouse(list(reversed(USAGE))), day="2026-03-05")
    pd.testing.assert_frame_equal(forward, backward)


def test_fingerprint_changes_when_one_event_id_changes():
    renamed = [("u01x", *row[1:]) if row[0] == "u01" else row for row in USAGE]
    before = summarize_usage(_warehouse(), day="2026-03-05")
    after = summarize_usage(_warehouse(renamed), day="2026-03-05")
    changed = before["events_fingerprint"] != after["events_fingerprint"]
    assert before.loc[changed, "product_code"].tolist() == ["API", "API"]
    assert before.loc[changed, "currency"].tolist() == ["USD", "USD"]
    # Same identity, so the line id does not move.
    assert before["summary_line_id"].tolist() == after["summary_line_id"].tolist()


def test_summary_of_all_days_includes_the_next_day_as_its_own_line():
    summary = summarize_usage(_warehouse())
    next_day = summary[summary["day"] == date(2026, 3, 6)]
    assert next_day["amount"].tolist() == [10, 10]
    assert next_day["event_count"].tolist() == [1, 1]


def test_drill_down_returns_exactly_the_events_behind_a_line():
    conn = _warehouse()
    summary = summarize_usage(conn, day="2026-03-05")
    write_usage_summary(conn, summary)
    line = summary[(summary["product_code"] == "API") & (summary["currency"] == "USD")
                   & (summary["account"] == "Revenue")].iloc[0]
    events = drill_down(conn, line["summary_line_id"])
    assert events["usage_id"].tolist() == ["u01", "u02", "u03"]
    assert events["amount"].sum() == 175
    no_product = summary[summary["product_code"] == ""].iloc[0]
    assert drill_down(conn, no_product)["usage_id"].tolist() == ["u10"]


def test_drill_down_refuses_when_events_changed_after_summarizing():
    conn = _warehouse()
    summary = summarize_usage(conn, day="2026-03-05")
    line = summary[(summary["product_code"] == "API") & (summary["currency"] == "USD")].iloc[0]
    # A late event lands in the same (entity, day, product, currency) group.
    conn.execute("insert into canonical.usage select * replace ('u11' as usage_id, "
                 "'u11' as source_id) from canonical.usage where usage_id = 'u01'")
    with pytest.raises(FingerprintMismatchError, match="expected"):
        drill_down(conn, line)


def test_summary_over_daily_parquet_files_equals_the_summary_of_the_same_rows_in_a_table(
        tmp_path):
    # The benchmark and the daily usage files summarize a view over Parquet read by parallel
    # threads; the lines, fingerprints included, must not depend on where the rows are stored.
    conn = _warehouse()
    for day in ("2026-03-05", "2026-03-06"):
        target = tmp_path / f"usage_{day}.parquet"
        conn.execute(f"copy (select * from canonical.usage where cast(occurred_at as date) = "
                     f"date '{day}' order by usage_id desc) to '{target}' (format parquet)")
    files = duckdb.connect()
    files.execute("create schema canonical")
    files.execute(f"create view canonical.usage as "
                  f"select * from read_parquet('{tmp_path / 'usage_*.parquet'}')")
    files.register("customer_rows",
                   pd.DataFrame(CUSTOMERS, columns=["customer_id", "legal_entity"]))
    files.execute("create table canonical.customers as select * from customer_rows")
    pd.testing.assert_frame_equal(summarize_usage(files), summarize_usage(conn))
    line = summarize_usage(files, day="2026-03-05").iloc[6]
    assert (line["product_code"], line["currency"], line["event_count"]) == ("API", "USD", 3)
    assert line["events_fingerprint"] == _hash_fingerprint(files, ["u01", "u02", "u03"])
    assert drill_down(files, line)["usage_id"].tolist() == ["u01", "u02", "u03"]


def test_usage_of_an_unknown_customer_fails_naming_the_row():
    rows = [*USAGE, ("u99", "cus_ghost", "API", "2026-03-05 02:00:00", 1.0, 1, "USD")]
    with pytest.raises(UsageWithoutEntityError, match=r"^1 usage row.*u99 \(customer cus_ghost\)"):
        summarize_usage(_warehouse(rows), day="2026-03-05")


def test_summary_refuses_a_malformed_day_and_an_unsafe_table_name():
    conn = _warehouse()
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        summarize_usage(conn, day="2026-3-5")
    with pytest.raises(ValueError, match="unsafe table"):
        summarize_usage(conn, usage_table="canonical.usage; drop table x")


def _rates() -> RateBook:
    return RateBook(pd.DataFrame({"rate_date": [pd.Timestamp("2026-03-01")],
                                  "from_currency": ["EUR"], "to_currency": ["USD"],
                                  "rate": ["1.1"]}))


def test_journal_entries_are_one_per_entity_day_and_currency_and_balance():
    summary = summarize_usage(_warehouse(), day="2026-03-05")
    lines = build_usage_journal_lines(summary, FUNCTIONAL, _rates())
    per_entry = lines.groupby("journal_key").agg(
        entity=("legal_entity", "first"), currency=("currency", "first"),
        debit=("debit", "sum"), credit=("credit", "sum"), lines=("line_number", "max"),
        debit_functional=("debit_functional", "sum"),
        credit_functional=("credit_functional", "sum"),
    ).sort_values(["entity", "currency"])
    assert per_entry[["entity", "currency", "debit", "credit", "lines"]].values.tolist() == [
        ["UK1", "GBP", 63, 63, 2], ["US1", "EUR", 18, 18, 2], ["US1", "USD", 660, 660, 6],
    ]
    # 18 EUR cents at 1.1 = 19.8 -> 20 USD cents, on both sides.
    assert per_entry["debit_functional"].tolist() == [63, 20, 660]
    assert (per_entry["debit_functional"] == per_entry["credit_functional"]).all()
    assert set(lines["source_type"]) == {"usage"}
    assert lines["source_id"].tolist() == lines["correlation_id"].tolist()


def test_entry_over_the_line_cap_splits_into_balanced_parts_keeping_product_pairs():
    summary = summarize_usage(_warehouse(), day="2026-03-05")
    usd = summary[summary["currency"] == "USD"]
    lines = build_usage_journal_lines(usd, FUNCTIONAL, max_lines_per_entry=4)
    parts = lines.groupby("journal_key", sort=False)
    assert [part["source_line_id"].tolist() for _, part in parts] == [
        ["", "", "API", "API"], ["STORAGE", "STORAGE"],
    ]
    assert [int(part["debit"].sum()) for _, part in parts] == [180, 480]
    assert [int(part["credit"].sum()) for _, part in parts] == [180, 480]
    assert lines["memo"].unique().tolist() == [
        "usage summary 2026-03-05 USD part 1/2", "usage summary 2026-03-05 USD part 2/2",
    ]
    assert lines["line_number"].tolist() == [1, 2, 3, 4, 1, 2]


def test_journal_keys_are_the_same_for_the_same_usage_in_any_order():
    first = build_usage_journal_lines(
        summarize_usage(_warehouse(), day="2026-03-05"), FUNCTIONAL, _rates())
    second = build_usage_journal_lines(
        summarize_usage(_warehouse(list(reversed(USAGE))), day="2026-03-05"), FUNCTIONAL, _rates())
    pd.testing.assert_frame_equal(first, second)


def test_foreign_currency_usage_without_rates_is_refused():
    summary = summarize_usage(_warehouse(), day="2026-03-05")
    with pytest.raises(ValueError, match="usage in EUR for US1"):
        build_usage_journal_lines(summary, FUNCTIONAL)


def test_usage_day_in_a_closed_period_posts_on_the_first_day_of_the_next_open_one():
    summary = summarize_usage(_warehouse(), day="2026-03-05")
    periods = pd.DataFrame({"legal_entity": ["US1"], "period": ["2026-03"], "status": ["closed"]})
    lines = build_usage_journal_lines(summary, FUNCTIONAL, _rates(), accounting_periods=periods)
    us = lines[lines["legal_entity"] == "US1"]
    uk = lines[lines["legal_entity"] == "UK1"]
    assert set(us["period"]) == {"2026-04"}
    assert set(us["entry_date"]) == {date(2026, 4, 1)}
    assert set(us["original_date"]) == {date(2026, 3, 5)}
    assert set(uk["period"]) == {"2026-03"} and set(uk["entry_date"]) == {date(2026, 3, 5)}


def _engine_lines() -> pd.DataFrame:
    # Two engine journals: one per-event usage journal, one invoice journal.
    rows = [
        ("je_u", "k_u", 1, "usage", "UnbilledAccountsReceivable", 100, 0),
        ("je_u", "k_u", 2, "usage", "Revenue", 0, 100),
        ("je_i", "k_i", 1, "invoice", "AccountsReceivable", 100, 0),
        ("je_i", "k_i", 2, "invoice", "UnbilledAccountsReceivable", 0, 100),
    ]
    frame = pd.DataFrame(rows, columns=["journal_id", "journal_key", "line_number",
                                        "source_type", "account", "debit", "credit"])
    summary = build_usage_journal_lines(
        summarize_usage(_warehouse(), day="2026-03-05"), FUNCTIONAL, _rates())
    for column in summary.columns:
        if column not in frame.columns:
            frame[column] = summary[column].iloc[0]
    return frame[summary.columns.tolist()]


def test_summary_mode_replaces_per_event_usage_journals_with_summary_entries():
    engine = _engine_lines()
    summary = build_usage_journal_lines(
        summarize_usage(_warehouse(), day="2026-03-05"), FUNCTIONAL, _rates())
    posted = apply_summary_mode(engine, summary, SummaryMode())
    assert "k_u" not in set(posted["journal_key"])
    assert "k_i" in set(posted["journal_key"])
    assert len(posted) == 2 + len(summary)


def test_detail_mode_posts_the_engine_journals_unchanged():
    engine = _engine_lines()
    summary = build_usage_journal_lines(
        summarize_usage(_warehouse(), day="2026-03-05"), FUNCTIONAL, _rates())
    posted = apply_summary_mode(engine, summary, SummaryMode({"usage": "detail"}))
    assert posted["journal_key"].tolist() == ["k_u", "k_u", "k_i", "k_i"]


def test_summary_mode_rejects_unknown_modes_and_unsupported_source_types():
    with pytest.raises(ValueError, match="summary or detail"):
        SummaryMode({"usage": "rollup"})
    with pytest.raises(ValueError, match="only implemented for usage, not: invoice"):
        apply_summary_mode(_engine_lines(), _engine_lines().iloc[:0],
                           SummaryMode(default="summary"))


def test_writing_a_day_twice_replaces_its_lines_instead_of_adding_them():
    conn = _warehouse()
    summary = summarize_usage(conn, day="2026-03-05")
    write_usage_summary(conn, summary)
    write_usage_summary(conn, summary)
    write_usage_summary(conn, summarize_usage(conn, day="2026-03-06"))
    counts = conn.execute("select day, count(*), sum(debit) from ledger.usage_summary "
                          "group by day order by day").fetchall()
    assert counts == [(date(2026, 3, 5), 10, 741), (date(2026, 3, 6), 2, 10)]


# --- the engine posts usage in summary mode by default ---------------------------------------

ENGINE_USAGE = [
    # usage_id, product_code, occurred_at, amount (USD cents)
    ("u1", "API", "2026-01-05 09:00:00", 100),
    ("u2", "API", "2026-01-05 18:00:00", 250),
    ("u3", "STORAGE", "2026-01-05 12:00:00", 40),
    ("u4", "API", "2026-01-06 00:30:00", 10),
]


def _engine_tables():
    usage = pd.DataFrame([{"usage_id": uid, "product_code": product,
                           "occurred_at": pd.Timestamp(at), "quantity": 1.0, "amount": amount,
                           "currency": "USD", "customer_id": "K1", "contract_line_id": None,
                           "invoice_line_id": None, "correlation_id": uid}
                          for uid, product, at, amount in ENGINE_USAGE])
    return {**company(), "usage": usage, "products": catalog("API", "STORAGE", pattern="usage")}


def _usage_lines(**kwargs) -> pd.DataFrame:
    jl = run_engine(_engine_tables(), Policy(), date(2026, 1, 31), **kwargs).journal_lines
    return jl[jl["source_type"] == "usage"].reset_index(drop=True)


def test_engine_books_one_usage_entry_per_entity_day_and_currency_with_a_line_per_product():
    lines = _usage_lines()
    assert lines["journal_id"].nunique() == 2
    got = [(str(r.entry_date), r.account, r.source_line_id, r.debit, r.credit, r.event_count)
           for r in lines.itertuples()]
    assert sorted(got) == sorted([
        ("2026-01-05", "UnbilledAccountsReceivable", "API", 350, 0, 2),
        ("2026-01-05", "UnbilledAccountsReceivable", "STORAGE", 40, 0, 1),
        ("2026-01-05", "Revenue", "API", 0, 350, 2),
        ("2026-01-05", "Revenue", "STORAGE", 0, 40, 1),
        ("2026-01-06", "UnbilledAccountsReceivable", "API", 10, 0, 1),
        ("2026-01-06", "Revenue", "API", 0, 10, 1),
    ])
    assert set(lines["memo"]) == {"usage summary 2026-01-05 USD", "usage summary 2026-01-06 USD"}


def test_summary_and_detail_modes_post_the_same_totals_per_account_and_day():
    summary = _usage_lines()
    detail = _usage_lines(summary_mode=SummaryMode(modes={"usage": "detail"}))
    assert detail["journal_id"].nunique() == 4  # one per event
    assert detail["event_count"].isna().all()
    keys = ["entry_date", "account"]
    totals = summary.groupby(keys)[["debit", "credit", "debit_functional",
                                    "credit_functional"]].sum()
    pd.testing.assert_frame_equal(totals, detail.groupby(keys)[list(totals.columns)].sum())


def test_engine_summary_line_carries_the_id_and_fingerprint_of_the_duckdb_summary_line():
    lines = _usage_lines()
    conn = duckdb.connect()
    conn.execute("create schema canonical")
    tables = _engine_tables()
    conn.register("usage_frame", tables["usage"])
    conn.register("customers_frame", tables["customers"])
    conn.execute("create table canonical.usage as select * from usage_frame")
    conn.execute("create table canonical.customers as select * from customers_frame")
    write_usage_summary(conn, summarize_usage(conn, day="2026-01-05"))
    summary = summarize_usage(conn, day="2026-01-05").set_index("summary_line_id")
    api_revenue = lines[(lines["source_line_id"] == "API") & (lines["account"] == "Revenue")
                        & (lines["entry_date"] == date(2026, 1, 5))].iloc[0]
    assert api_revenue["source_id"] in summary.index
    assert api_revenue["events_fingerprint"] == summary.loc[
        api_revenue["source_id"], "events_fingerprint"]
    assert api_revenue["events_fingerprint"] == _hash_fingerprint(conn, ["u1", "u2"])
    # drill from the journal line to its events through ledger.usage_summary
    assert drill_down(conn, api_revenue["source_id"])["usage_id"].tolist() == ["u1", "u2"]


def test_engine_caps_lines_per_entry_keeping_each_product_whole_and_balanced():
    # a product books at most five lines (Revenue and the four contract-position accounts)
    lines = _usage_lines(max_lines_per_entry=5)
    day = lines[lines["entry_date"] == date(2026, 1, 5)]
    assert day["journal_id"].nunique() == 2
    per_entry = day.groupby("journal_id").agg(products=("source_line_id", "unique"),
                                              debit=("debit", "sum"), credit=("credit", "sum"),
                                              memo=("memo", "first"))
    assert sorted(tuple(p) for p in per_entry["products"]) == [("API",), ("STORAGE",)]
    assert (per_entry["debit"] == per_entry["credit"]).all()
    assert sorted(per_entry["memo"]) == ["usage summary 2026-01-05 USD part 1/2",
                                         "usage summary 2026-01-05 USD part 2/2"]


def test_engine_refuses_summary_posting_for_source_types_other_than_usage():
    with pytest.raises(ValueError, match="only implemented for usage, not: invoice"):
        _usage_lines(summary_mode=SummaryMode(modes={"usage": "summary", "invoice": "summary"}))


def test_engine_usage_journal_keys_change_when_an_event_id_changes():
    before = _usage_lines()
    tables = _engine_tables()
    tables["usage"].loc[tables["usage"]["usage_id"] == "u1", "usage_id"] = "u1x"
    after = run_engine(tables, Policy(), date(2026, 1, 31)).journal_lines
    after = after[after["source_type"] == "usage"].reset_index(drop=True)
    # Same amounts and line ids, but the 01-05 entry now stands for other events.
    assert before["source_id"].tolist() == after["source_id"].tolist()
    changed = set(before.loc[before["journal_key"] != after["journal_key"], "entry_date"])
    assert changed == {date(2026, 1, 5)}
