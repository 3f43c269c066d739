"""Runs the malformed-input catalog over the sample company, several classes per close.

Classes that break records of different customers cannot reach each other's records (every
dependency q2c follows stays within a customer), so ``plan`` packs the catalog into batches in
which no two classes touch the same customer, and each batch is one copy of the sample company
closed once (land, canonical, finance). A class is then judged on its own customer, and the rest
of the close on every customer the batch did not touch. Only customers that close clean in the
sample are damaged, so what a class holds is its own doing."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import pandas as pd

from q2c_pipeline.core.policy import Policy
from q2c_pipeline.defs.checks import find_unconserved_tables
from q2c_pipeline.sources.snapshot import SnapshotSource
from q2c_pipeline.stages import build_canonical, build_finance, land_snapshot
from q2c_pipeline.warehouse import connect
from q2c_pipeline_tests.malformed.catalog import Damage
from q2c_pipeline_tests.malformed.company import Company

AS_OF = date(2026, 6, 30)
LANDED_AT = datetime(2026, 7, 1, 6)


@dataclass
class Close:
    """What one close of a (possibly damaged) company left."""

    quarantine: pd.DataFrame
    unconserved: list
    lines: pd.DataFrame  # finance.journal_lines
    usage: pd.DataFrame  # canonical.usage

    def lines_outside(self, customers: set[str]) -> pd.DataFrame:
        """Journal lines of every other customer (usage and FX lines carry no customer: usage
        is compared through its canonical events)."""
        keep = self.lines[self.lines["customer_id"].notna()
                          & ~self.lines["customer_id"].isin(customers)]
        # the posting batch id hashes the whole batch, so it differs whenever anything does
        keep = keep.drop(columns=["posting_batch"], errors="ignore")
        return keep.sort_values(list(keep.columns)).reset_index(drop=True)

    def usage_outside(self, customers: set[str]) -> pd.DataFrame:
        keep = self.usage[~self.usage["customer_id"].isin(customers)]
        return keep.sort_values(list(keep.columns)).reset_index(drop=True)


def close(folder: Path, database: Path) -> Close:
    with connect(database) as conn:
        land_snapshot(conn, SnapshotSource(folder), LANDED_AT, request_id="malformed")
        build_canonical(conn)
        build_finance(conn, Policy(), AS_OF)
        unconserved, _ = find_unconserved_tables(conn)
        return Close(
            quarantine=conn.execute("select * from canonical.quarantine").fetchdf(),
            unconserved=unconserved,
            lines=conn.execute("select * from finance.journal_lines").fetchdf(),
            usage=conn.execute("select * from canonical.usage").fetchdf(),
        )


@dataclass
class Case:
    damage: Damage
    who: str            # the customer's name
    customer_id: str    # its canonical id
    record_id: str      # the canonical id of the damaged record


@dataclass
class Batch:
    cases: list[Case]
    result: Close | None = None

    @property
    def customers(self) -> set[str]:
        return {c.customer_id for c in self.cases}


class _Base:
    """The sample's files loaded once, handed out as fresh copies to try a class on."""

    def __init__(self, root: Path) -> None:
        self.company = Company(root)

    def fresh(self) -> Company:
        return Company(self.company.root, base=self.company)


def clean_customers(sample: Path, clean: Close) -> list[str]:
    """Names of the sample's customers that nothing in the clean close holds."""
    co = Company(sample)
    held = set(clean.quarantine["customer_id"].dropna())
    return [c["name"] for c in co.records("stripe/customers.json")
            if co.customer_id(c["name"]) not in held]


def plan(sample: Path, catalog: list[Damage], customers: list[str]) -> list[list[tuple]]:
    """Pack the catalog into batches of (damage, customer) with one class per customer: each
    class goes to the first batch with a free customer that has a record of its kind."""
    base = _Base(sample)
    fits_cache: dict[tuple[str, str], bool] = {}

    def fits(damage: Damage, who: str) -> bool:
        if (damage.name, who) not in fits_cache:
            fits_cache[damage.name, who] = damage.apply(base.fresh(), who) is not None
        return fits_cache[damage.name, who]

    batches: list[dict[str, Damage]] = []
    for damage in catalog:
        for batch in [*batches, {}]:
            who = next((w for w in customers if w not in batch and fits(damage, w)), None)
            if who is not None:
                if not batch:
                    batches.append(batch)
                batch[who] = damage
                break
        else:
            raise AssertionError(f"no clean customer of the sample has a record for "
                                 f"{damage.name!r}")
    return [[(damage, who) for who, damage in batch.items()] for batch in batches]


@dataclass
class Runs:
    """The catalog's batches, each closed on first use."""

    sample: Path
    workdir: Path
    batches: list[Batch] = field(default_factory=list)
    by_name: dict[str, tuple[Batch, Case]] = field(default_factory=dict)

    @classmethod
    def prepare(cls, sample: Path, workdir: Path, catalog: list[Damage],
                customers: list[str]) -> Runs:
        runs = cls(sample, workdir)
        for number, members in enumerate(plan(sample, catalog, customers)):
            folder = workdir / f"batch{number}"
            shutil.copytree(sample, folder)
            co = Company(folder)
            cases = []
            for damage, who in members:
                record_id = damage.apply(co, who)
                cases.append(Case(damage, who, co.customer_id(who), record_id))
            co.save()
            batch = Batch(cases)
            runs.batches.append(batch)
            for case in cases:
                runs.by_name[case.damage.name] = (batch, case)
        return runs

    def case(self, damage: Damage) -> tuple[Batch, Case]:
        batch, case = self.by_name[damage.name]
        if batch.result is None:
            number = self.batches.index(batch)
            batch.result = close(self.workdir / f"batch{number}",
                                 self.workdir / f"batch{number}.duckdb")
        return batch, case
