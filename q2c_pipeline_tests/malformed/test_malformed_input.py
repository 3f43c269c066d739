"""Every class of malformed input in the catalog (``catalog.py``) is held, never posted, and
the rest of the close goes on unchanged.

For each class, on a copy of the sample company with that one record broken (packed several to
a close, one per customer: ``harness.py``), the test asserts:

- the broken record is in the quarantine under the class's rule and owner, with a reason that
  names the record and the field;
- what depends on it is held with it (``held_by_upstream``): exactly the tables the class
  lists, plus credit notes, refunds and invoice events where the customer has them;
- no other record of that customer is held by another rule;
- rows are conserved: for every source object, received = canonical + quarantined;
- every other customer's journal lines and usage are those of the clean close, line for line.
"""

from __future__ import annotations

import pytest

from q2c_pipeline_tests.malformed import harness
from q2c_pipeline_tests.malformed.catalog import (
    CATALOG,
    FOLLOW_CONTRACTS,
    FOLLOW_INVOICE,
    FOLLOW_INVOICES,
    Damage,
)


@pytest.fixture(scope="module")
def clean(sample_company, tmp_path_factory):
    return harness.close(sample_company, tmp_path_factory.mktemp("clean") / "w.duckdb")


@pytest.fixture(scope="module")
def runs(sample_company, clean, tmp_path_factory):
    return harness.Runs.prepare(sample_company, tmp_path_factory.mktemp("malformed"), CATALOG,
                                harness.clean_customers(sample_company, clean))


def test_the_catalog_has_sixty_distinct_classes_and_each_rule_is_documented():
    from pathlib import Path

    names = [d.name for d in CATALOG]
    assert len(names) == len(set(names)) >= 60
    table = (Path(__file__).resolve().parents[2] / "docs" / "exceptions.md").read_text()
    undocumented = {d.rule for d in CATALOG if f"`{d.rule}`" not in table}
    assert not undocumented


@pytest.mark.parametrize("damage", CATALOG, ids=[d.name for d in CATALOG])
def test_a_malformed_record_is_held_with_its_dependents_and_the_rest_closes_unchanged(
    damage: Damage, runs, clean
):
    batch, case = runs.case(damage)
    q, before = batch.result.quarantine, clean.quarantine

    root = q[q["record_id"] == case.record_id]
    assert len(root), f"{case.record_id} of {case.who} is not in the quarantine"
    assert damage.rule in set(root["rule"]), root[["rule", "reason"]].to_string()
    mine = root[root["rule"] == damage.rule]
    assert set(mine["owner"]) == {damage.owner}
    assert set(mine["source_table"]) == {damage.table}
    assert all(mine["reason"].str.startswith(damage.rule + ": "))
    named = case.record_id.split("#")[0].removeprefix("stripe:").removeprefix("sf:")
    assert all(named in reason or "record number" in reason for reason in mine["reason"])
    assert mine["payload"].notna().all()

    # What it holds: the records of this customer (or naming it) that the clean close posted.
    new = q.merge(before[["source_table", "record_id", "rule"]], how="left", indicator=True)
    new = new[new["_merge"] == "left_only"]
    ours = new[(new["customer_id"] == case.customer_id)
               | new["reason"].str.contains(case.record_id.split("|")[0], regex=False)
               | (new["record_id"] == case.record_id)]
    held = set(ours.loc[ours["rule"] == "held_by_upstream", "source_table"])
    optional = FOLLOW_CONTRACTS if {"contracts", "contract_lines"} & set(damage.held) \
        else FOLLOW_INVOICE if damage.table in ("invoices", "invoice_lines") \
        else FOLLOW_INVOICES if {"invoices", "invoice_lines"} & set(damage.held) else set()
    assert set(damage.held) <= held <= set(damage.held) | optional, sorted(held)
    others = ours[(ours["rule"] != "held_by_upstream") & (ours["record_id"] != case.record_id)]
    assert set(others["rule"]) <= set(damage.also), others[["record_id", "rule"]].to_string()

    assert batch.result.unconserved == []
    untouched = batch.customers
    assert batch.result.lines_outside(untouched).equals(clean.lines_outside(untouched))
    assert batch.result.usage_outside(untouched).equals(clean.usage_outside(untouched))
