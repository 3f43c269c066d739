"""One bad file never stops the close: it is quarantined as a file (rule, path, where in it,
owner, its first bytes), what it feeds is held or simply absent, and every other object closes.

Each case corrupts one file of the sample company the way production exports break, runs the
stages (land, canonical, finance) and compares with the clean run."""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime

import pytest

from q2c_pipeline.core.policy import Policy
from q2c_pipeline.sources.snapshot import SnapshotSource
from q2c_pipeline.stages import (
    build_canonical,
    build_finance,
    land_snapshot,
)
from q2c_pipeline.warehouse import connect

AS_OF = date(2026, 6, 30)
LANDED_AT = datetime(2026, 7, 1, 6)


def _close(folder, database):
    source = SnapshotSource(folder)
    with connect(database) as conn:
        land_snapshot(conn, source, LANDED_AT, request_id="test")
        build_canonical(conn)
        build_finance(conn, Policy(), AS_OF)
        files = conn.execute("select record_id, field, rule, owner, reason, payload "
                             "from canonical.quarantine where source_table = 'files'").fetchall()
        counts = dict(conn.execute(
            "select source_table, accepted from canonical.load_audit").fetchall())
        revenue = conn.execute("select legal_entity, sum(credit) - sum(debit) from "
                               "finance.journal_lines where account = 'Revenue' group by 1 "
                               "order by 1").fetchall()
        rules = dict(conn.execute("select rule, count(*) from canonical.quarantine "
                                  "where source_table <> 'files' group by 1").fetchall())
    return files, counts, revenue, rules


@pytest.fixture(scope="module")
def clean(sample_company, tmp_path_factory):
    return _close(sample_company, tmp_path_factory.mktemp("clean") / "w.duckdb")


def counts_in(clean) -> int:
    """Customers of the clean run: accepted plus the one already without a master row."""
    return clean[1]["customers"] + clean[3].get("missing_legal_entity_mapping", 0)


def _bom(path):
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _latin1(path):
    data = path.read_bytes()
    at = data.index(b"\n") + 3  # inside the first record: one byte from a Latin-1 export
    path.write_bytes(data[:at] + b"\xe9" + data[at:])


def _nan(path):
    records = json.loads(path.read_text())
    text = json.dumps(records)
    path.write_text(text.replace('"amount": ', '"amount": NaN, "was": ', 1))


def _empty(path):
    path.write_bytes(b"")


def _drop_column(path):
    if path.suffix == ".csv":
        lines = path.read_text().splitlines()
        path.write_text("\n".join(",".join(line.split(",")[:-4] + line.split(",")[-3:])
                                  for line in lines) + "\n")  # the 5th column from the end
    else:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        pq.write_table(table.drop(["quantity"]), path)


def _not_a_list(path):
    path.write_text('{"object": "refund"}')


@pytest.mark.parametrize(("file", "damage", "rule", "owner", "where"), [
    ("stripe/refunds.json", _truncate, "malformed_json", "billing_ops", "line "),
    ("stripe/refunds.json", _empty, "empty_file", "billing_ops", "0 bytes"),
    ("stripe/refunds.json", _latin1, "not_utf8", "billing_ops", "byte "),
    ("stripe/refunds.json", _nan, "non_finite_number", "billing_ops", "NaN"),
    ("stripe/refunds.json", _not_a_list, "not_a_list", "billing_ops", "the top level"),
    ("salesforce/Product2.json", _truncate, "malformed_json", "sales_ops", "line"),
    ("erp/tax_codes.csv", _latin1, "not_utf8", "controllership", "byte "),
    ("usage/usage_events_2026-05-05.parquet", _truncate, "unreadable_file", "billing_ops",
     "bytes"),
    ("usage/usage_events_2026-05-06.parquet", _drop_column, "missing_column", "billing_ops",
     "the header"),
    ("erp/customers.csv", _drop_column, "missing_column", "controllership", "the header"),
])
def test_a_bad_file_is_quarantined_as_a_file_and_the_rest_closes(
        sample_company, tmp_path, clean, file, damage, rule, owner, where):
    folder = tmp_path / "company"
    shutil.copytree(sample_company, folder)
    damage(folder / file)
    files, counts, revenue, rules = _close(folder, tmp_path / "w.duckdb")
    (path, location, found_rule, found_owner, reason, head), = files
    assert path.endswith(file) and found_rule == rule and found_owner == owner
    assert where in location and file.split("/")[-1] in reason and "run again" in reason
    assert head is not None and len(head) <= 2048  # what the file started with
    clean_files, clean_counts, clean_revenue, _ = clean
    assert clean_files == []
    if file.startswith("stripe/refunds"):  # nothing else depends on refunds: all else equal
        assert {k: v for k, v in counts.items() if k != "refunds"} == {
            k: v for k, v in clean_counts.items() if k != "refunds"}
        assert counts["refunds"] == 0 < clean_counts["refunds"]
    if file == "erp/customers.csv":
        # every customer needs its master row: nothing can post, and each customer is held
        # for it (missing_legal_entity_mapping), none dropped
        assert revenue == [] and rules["missing_legal_entity_mapping"] == counts_in(clean)
    else:
        assert revenue  # the close went on and posted


def test_a_byte_order_mark_is_not_a_defect(sample_company, tmp_path, clean):
    folder = tmp_path / "company"
    shutil.copytree(sample_company, folder)
    _bom(folder / "stripe" / "invoices.json")
    _bom(folder / "erp" / "customers.csv")
    assert _close(folder, tmp_path / "w.duckdb") == clean


def test_a_file_fixed_and_landed_again_leaves_the_quarantine(sample_company, tmp_path, clean):
    folder = tmp_path / "company"
    shutil.copytree(sample_company, folder)
    good = (folder / "stripe" / "refunds.json").read_bytes()
    _truncate(folder / "stripe" / "refunds.json")
    database = tmp_path / "w.duckdb"
    assert len(_close(folder, database)[0]) == 1
    (folder / "stripe" / "refunds.json").write_bytes(good)
    files, counts, revenue, _ = _close(folder, database)
    assert files == [] and counts == clean[1] and revenue == clean[2]


def test_every_rule_q2c_quarantines_with_is_in_the_documented_rule_table():
    import re
    from pathlib import Path

    root = Path(__file__).parents[1]
    documented = set(re.findall(r"`([a-z_]+)`", (root / "docs" / "exceptions.md").read_text()))
    code = "\n".join(p.read_text() for p in (root / "q2c_pipeline").rglob("*.py"))
    emitted = set(re.findall(r'failures\.add\(\s*[^,]+,\s*"([a-z_]+)"', code))
    from q2c_pipeline.schemas.validation import _PANDERA_RULES

    emitted |= {rule for rule, _ in _PANDERA_RULES.values()}
    emitted |= set(re.findall(
        r'unknown\(\s*"[a-z_]+", "[a-z_]+", "[a-z_]+", "([a-z_]+)"', code))
    emitted |= set(re.findall(r'SnapshotFileError\(\s*[a-z_]+,\s*"([a-z_]+)"', code))
    # what mappers find in a record's fields (sources.wire.FieldProblems)
    emitted |= set(re.findall(r'\.add\(\s*"([a-z_]+)",\s*[a-z"]', code))
    emitted |= set(re.findall(r'\(\s*"([a-z_]+)", "[A-Za-z_.]+",\s*\n\s*f"', code))
    emitted |= {"incomplete_page", "held_by_upstream"}
    assert len(emitted) >= 20
    assert emitted - documented == set()
