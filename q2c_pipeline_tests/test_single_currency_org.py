"""A single-currency Salesforce org: no CurrencyIsoCode on any record, the org's currency stated
by getUserInfo. The same company in such an org closes with the same totals in that currency.

The sample company's org is multi-currency; its single-currency twin is the same snapshot with
every ``CurrencyIsoCode`` removed and ``UserInfo`` saying USD (what such an org's API returns).
Only the USD business can live in a USD-only org: its figures must be the multi-currency org's.
"""

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


def _single_currency_twin(folder, target):
    shutil.copytree(folder, target)
    for path in (target / "salesforce").glob("*.json"):
        records = json.loads(path.read_text())
        if path.name == "UserInfo.json":
            records = [{**r, "organizationMultiCurrency": False,
                        "orgDefaultCurrencyIsoCode": "USD", "userDefaultCurrencyIsoCode": None}
                       for r in records]
        else:
            records = [{k: v for k, v in r.items() if k != "CurrencyIsoCode"} for r in records]
        path.write_text(json.dumps(records))
    return target


def _close(folder, path):
    source = SnapshotSource(folder)
    with connect(path) as conn:
        land_snapshot(conn, source, datetime(2026, 7, 1, 6), request_id="test")
        build_canonical(conn)
        build_finance(conn, Policy(), AS_OF)
        contracts = conn.execute("""
            select c.contract_id, c.version, c.currency, l.contract_line_id, l.amount
            from canonical.contracts c join canonical.contract_lines l using (contract_id)
            order by all""").fetchall()
        ledger = conn.execute("""
            select period, account, sum(debit), sum(credit) from finance.journal_lines
            where legal_entity = 'US01' group by all order by all""").fetchall()
        currencies = conn.execute(
            "select distinct currency from canonical.contracts order by 1").fetchall()
    return contracts, ledger, currencies


@pytest.fixture(scope="module")
def closes(sample_company, tmp_path_factory):
    root = tmp_path_factory.mktemp("orgs")
    twin = _single_currency_twin(sample_company, root / "single")
    return _close(sample_company, root / "multi.duckdb"), _close(twin, root / "single.duckdb")


def test_a_single_currency_org_maps_every_record_to_the_orgs_currency(closes):
    (_, _, multi_currencies), (_, _, single_currencies) = closes
    assert multi_currencies == [("EUR",), ("GBP",), ("USD",)]
    assert single_currencies == [("USD",)]  # none quarantined for a missing currency


def test_the_usd_business_closes_with_the_same_contracts_and_ledger_in_either_org(closes):
    (multi, multi_ledger, _), (single, single_ledger, _) = closes
    usd = {row[0] for row in multi if row[2] == "USD"}
    assert [r for r in single if r[0] in usd] == [r for r in multi if r[0] in usd]
    assert len(usd) >= 9  # the accepted USD contracts of the sample
    # US01 sells only in USD: every journal line of it is the same, period by period
    assert single_ledger == multi_ledger and len(multi_ledger) > 20
