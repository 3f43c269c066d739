"""Live Salesforce and billing behind the resources, against the wire-level fakes seeded from the
generated sample company: the live path lands what the snapshot path lands, faults recover or
fail loudly with nothing half-written, and completeness is checked per object."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import requests

from q2c_pipeline.defs.canonical import canonical_tables
from q2c_pipeline.defs.extraction import billing_raw, erp_raw, salesforce_raw, usage_events_raw
from q2c_pipeline.defs.live_checks import CHECK_NAME, completeness_checks
from q2c_pipeline.defs.resources import (
    BillingResource,
    CloseSettingsResource,
    SalesforceResource,
    SourceSnapshotResource,
    WarehouseResource,
)
from q2c_pipeline.schemas.validation import VALIDATION_ORDER
from q2c_pipeline.sources.extract import read_state
from q2c_pipeline.sources.retry import RetriesExhausted
from q2c_pipeline_tests.fakes.salesforce_fake import (
    LoopbackAdapter,
    SalesforceFakeOrg,
    SalesforceFakeServer,
    rest_datetime,
)
from q2c_pipeline_tests.fakes.stripe_fake import StripeFakeAccount, StripeFakeServer

API_KEY = "sk_test_q2c_fake"
POSTING_FIELDS = {"Contract": {"Q2C_Posting_Status__c": "string",
                               "Q2C_Posting_Message__c": "string"}}
RAW_ASSETS = [salesforce_raw, billing_raw, erp_raw, usage_events_raw]


class LoopbackSalesforceResource(SalesforceResource):
    """The live resource with its HTTP session sent to a fake on 127.0.0.1."""

    fake_port: int

    def build_session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        session.mount("https://", LoopbackAdapter(self.fake_port))
        return session


def live_folder(sample: Path, target: Path) -> Path:
    """The sample company as a live org could hold it: a billing list never repeats an id, so
    the snapshot's deliberately duplicated invoice is kept once (its first version)."""
    shutil.copytree(sample, target)
    path = target / "stripe" / "invoices.json"
    seen: set[str] = set()
    invoices = [i for i in json.loads(path.read_text())
                if not (i["id"] in seen or seen.add(i["id"]))]
    path.write_text(json.dumps(invoices))
    return target


def read_folder(root: Path, system: str) -> dict[str, list[dict]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((root / system).glob("*.json"))}


class Fakes:
    """Both fakes seeded from one snapshot folder, and resources pointed at them."""

    def __init__(self, root: Path, **org_options) -> None:
        self.root = root
        org_options.setdefault("extra_fields", POSTING_FIELDS)
        org_options.setdefault("page_size", 7)
        self.org = SalesforceFakeOrg(read_folder(root, "salesforce"), **org_options)
        self.sf_server = SalesforceFakeServer(self.org).start()
        self.account = StripeFakeAccount(read_folder(root, "stripe"), api_key=API_KEY,
                                         embedded_lines=2)
        self.stripe_server = StripeFakeServer(self.account).start()

    def salesforce(self, **overrides) -> LoopbackSalesforceResource:
        settings = {
            "snapshot_root": str(self.root), "auth_mode": "password",
            "username": "etl@acme.example", "password": "correct-horse",
            "security_token": "TOKEN123", "limit_floor_pct": 0.0, "backoff_base": 0.0,
            "fake_port": self.sf_server.port,
        }
        return LoopbackSalesforceResource(**{**settings, **overrides})

    def billing(self, **overrides) -> BillingResource:
        settings = {
            "snapshot_root": str(self.root), "api_key": API_KEY,
            "base_url": self.stripe_server.base_url, "page_size": 10,
            "max_network_retries": 0, "backoff_base": 0.0,
        }
        return BillingResource(**{**settings, **overrides})

    def resources(self, warehouse: Path, **overrides) -> dict:
        return {
            "warehouse": WarehouseResource(database_path=str(warehouse)),
            "salesforce": overrides.get("salesforce") or self.salesforce(),
            "billing": overrides.get("billing") or self.billing(),
            "erp": SourceSnapshotResource(root=str(self.root)),
            "close_settings": CloseSettingsResource(),
        }

    def stop(self) -> None:
        self.sf_server.stop()
        self.stripe_server.stop()


def snapshot_resources(root: Path, warehouse: Path) -> dict:
    return {
        "warehouse": WarehouseResource(database_path=str(warehouse)),
        "salesforce": SalesforceResource(snapshot_root=str(root)),
        "billing": BillingResource(snapshot_root=str(root)),
        "erp": SourceSnapshotResource(root=str(root)),
        "close_settings": CloseSettingsResource(),
    }


@pytest.fixture(scope="module")
def company(sample_company, tmp_path_factory) -> Path:
    return live_folder(sample_company, tmp_path_factory.mktemp("live") / "company")


@pytest.fixture
def fakes(company):
    made = Fakes(company)
    yield made
    made.stop()


def canonical_rows(path: Path) -> dict[str, list[tuple]]:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return {
            table: conn.execute(f"select * from canonical.{table} order by all").fetchall()
            for table in (*VALIDATION_ORDER, "quarantine", "load_audit")
        }
    finally:
        conn.close()


def test_live_path_lands_canonical_tables_identical_to_the_snapshot_path(
    company, fakes, tmp_path
):
    snapshot_db, live_db = tmp_path / "snapshot.duckdb", tmp_path / "live.duckdb"

    from_snapshot = dg.materialize(
        [*RAW_ASSETS, canonical_tables], resources=snapshot_resources(company, snapshot_db)
    )
    from_live = dg.materialize(
        [*RAW_ASSETS, canonical_tables], resources=fakes.resources(live_db)
    )

    assert from_snapshot.success and from_live.success
    snapshot_tables, live_tables = canonical_rows(snapshot_db), canonical_rows(live_db)
    assert set(snapshot_tables) == set(live_tables)
    for table, rows in snapshot_tables.items():
        assert live_tables[table] == rows, table
    assert len(live_tables["contracts"]) == 20 and len(live_tables["invoices"]) == 75
    # the live run really went over HTTP: logins, queries and Stripe list pages were served
    assert fakes.org.logins >= 1 and len(fakes.account.requests) > 8


def test_second_live_run_reads_only_the_window_after_each_mark_and_lands_nothing(
    fakes, tmp_path
):
    warehouse = tmp_path / "w.duckdb"
    resources = fakes.resources(warehouse)
    assert dg.materialize([salesforce_raw, billing_raw], resources=resources).success
    conn = duckdb.connect(str(warehouse))
    contracts = read_state(conn, "salesforce", "Contract")
    invoices = read_state(conn, "stripe", "invoices")
    conn.close()

    again = dg.materialize([salesforce_raw, billing_raw], resources=resources)

    appended = {
        e.asset_key.to_user_string(): e.event_specific_data.materialization.metadata[
            "versions_appended"].value
        for e in again.get_asset_materialization_events()
        if e.event_specific_data.materialization.partition is None  # not a day it marks
    }
    assert set(appended.values()) == {0}
    assert contracts.source_count == 20 and contracts.rows_received == 20
    assert contracts.high_water_mark == max(
        r["SystemModstamp"] for r in fakes.org.records["Contract"]
    )[:19] + "Z"
    assert int(invoices.high_water_mark) == max(
        i["created"] for i in fakes.account.objects["invoices"]
    )
    queries = [p for m, p in fakes.org.request_log if "/queryAll" in p]
    assert queries  # incremental windows go through queryAll, so deletions are seen


def test_expired_sessions_and_server_errors_are_retried_to_the_same_landing(
    fakes, tmp_path
):
    fakes.org.expire_session_after(5)
    fakes.org.inject_faults("503", 2, after=3)
    fakes.account.inject_faults(429, 3, after=4)
    fakes.account.inject_faults(500, 2, after=10)

    result = dg.materialize(
        [salesforce_raw, billing_raw], resources=fakes.resources(tmp_path / "w.duckdb")
    )

    assert result.success
    assert fakes.org.logins >= 2  # logged in again after the session expired
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    assert conn.execute("select count(*) from raw.salesforce_contracts").fetchone()[0] == 20
    # 88 invoices and the draft renewal
    assert conn.execute("select count(*) from raw.stripe_invoices").fetchone()[0] == 89


def test_billing_errors_beyond_the_retries_fail_loudly_and_leave_the_mark_where_it_was(
    fakes, tmp_path
):
    warehouse = tmp_path / "w.duckdb"
    # 2 events-feed pages... then customers, products, prices and subscriptions list fine; the
    # faults start within the invoice pages and outlast 5 retries
    fakes.account.inject_faults(500, 50, after=12)

    with pytest.raises(RetriesExhausted):
        dg.materialize([billing_raw], resources=fakes.resources(warehouse))

    conn = duckdb.connect(str(warehouse))
    landed = {
        table: conn.execute(f"select count(*) from raw.{table}").fetchone()[0]
        for (table,) in conn.execute(
            "select table_name from information_schema.tables where table_schema = 'raw' "
            "and table_name like 'stripe_%'"
        ).fetchall()
    }
    marks = {name for (name,) in conn.execute(
        "select object_name from raw._extraction_state where source_system = 'stripe'"
    ).fetchall()}
    conn.close()
    assert "_events" not in marks  # the event cursor moves only after every resource landed
    for name in marks:  # each resource with a mark landed completely before the failure
        assert landed[f"stripe_{name}"] == len(fakes.account.objects[name]), name
    assert "invoices" not in marks

    fakes.account._faults.clear()  # noqa: SLF001 - the outage is over
    assert dg.materialize([billing_raw], resources=fakes.resources(warehouse)).success
    conn = duckdb.connect(str(warehouse))
    # 88 invoices and the draft renewal
    assert conn.execute("select count(*) from raw.stripe_invoices").fetchone()[0] == 89
    conn.close()


def _check_results(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()
        if e.check_name == CHECK_NAME
    }


def test_completeness_check_fails_when_an_incremental_window_missed_rows(fakes, tmp_path):
    warehouse = tmp_path / "w.duckdb"
    resources = fakes.resources(warehouse)
    first = _check_results(dg.materialize([salesforce_raw, *completeness_checks],
                                          resources=resources))
    # a contract restored from the recycle bin keeps its old SystemModstamp, older than the mark
    restored = dict(fakes.org.records["Contract"][0], Id="800Hp00000ZZZZZIAA",
                    ContractNumber="00009999",
                    SystemModstamp=rest_datetime("2025-12-01T00:00:00Z"))
    fakes.org.records["Contract"].append(restored)

    second = _check_results(dg.materialize([salesforce_raw, *completeness_checks],
                                           resources=resources))
    repaired = _check_results(dg.materialize(
        [salesforce_raw, *completeness_checks], resources=resources,
        run_config={"ops": {"salesforce_raw": {"config": {"full_refresh": True}}}},
    ))

    assert all(e.passed for e in first.values()) and len(first) == 6
    failed = second["salesforce_contracts"]
    assert not failed.passed
    assert failed.metadata["salesforce_count"].value == 21
    assert failed.metadata["landed"].value == 20
    assert failed.metadata["missing"].value == 1
    assert all(e.passed for k, e in second.items() if k != "salesforce_contracts")
    assert repaired["salesforce_contracts"].passed


def test_cpq_objects_are_skipped_when_the_org_has_no_cpq(company, tmp_path):
    fakes = Fakes(company, cpq_installed=False)
    try:
        records = fakes.org.records
        records["Contract"] = [
            {k: v for k, v in r.items() if not k.startswith("SBQQ__")} for r in records["Contract"]
        ]
        result = dg.materialize([salesforce_raw, *completeness_checks],
                                resources=fakes.resources(tmp_path / "w.duckdb"))
    finally:
        fakes.stop()

    assert result.success
    subscriptions = next(
        e for e in result.get_asset_materialization_events()
        if e.asset_key.path[-1] == "salesforce_subscriptions"
    ).event_specific_data.materialization.metadata
    assert subscriptions["available"].value is False
    assert subscriptions["records_received"].value == 0
    assert _check_results(result)["salesforce_subscriptions"].passed


def test_snapshot_resources_are_bound_when_no_credentials_are_set(monkeypatch):
    from q2c_pipeline.defs.resources import build_billing_resource, build_salesforce_resource

    monkeypatch.delenv("SALESFORCE_AUTH_MODE", raising=False)
    monkeypatch.delenv("BILLING_API_TOKEN", raising=False)
    assert not build_salesforce_resource("/data/sample").is_live
    assert not build_billing_resource("/data/sample").is_live

    monkeypatch.setenv("SALESFORCE_AUTH_MODE", "password")
    monkeypatch.setenv("SALESFORCE_USERNAME", "etl@acme.example")
    monkeypatch.setenv("SALESFORCE_PASSWORD", "secret-from-env")
    monkeypatch.setenv("BILLING_API_TOKEN", "sk_live_from_env")
    salesforce = build_salesforce_resource("/data/sample")
    billing = build_billing_resource("/data/sample")

    assert salesforce.is_live and billing.is_live
    # secrets are bound as EnvVar references, resolved at run time, never as literal values
    assert isinstance(salesforce.password, dg.EnvVar) or "EnvVar" in repr(salesforce.password)
    assert "sk_live_from_env" not in repr(billing.api_key)


def test_the_weekly_id_comparison_repairs_a_restored_record_without_a_full_refresh(
        fakes, tmp_path):
    warehouse = tmp_path / "w.duckdb"
    resources = fakes.resources(warehouse)
    assert dg.materialize([salesforce_raw], resources=resources).success
    restored = dict(fakes.org.records["Contract"][0], Id="800Hp00000ZZZZZIAA",
                    ContractNumber="00009999",
                    SystemModstamp=rest_datetime("2025-12-01T00:00:00Z"))
    fakes.org.records["Contract"].append(restored)
    compared = dg.materialize(
        [salesforce_raw, *completeness_checks], resources=resources,
        run_config={"ops": {"salesforce_raw": {"config": {"compare_ids": True}}}})
    assert compared.success
    checks = _check_results(compared)
    assert checks["salesforce_contracts"].passed  # 21 in Salesforce, 21 landed
    landed = compared.asset_materializations_for_node("salesforce_raw")
    contracts = next(m for m in landed if m.asset_key.path[-1] == "salesforce_contracts")
    assert contracts.metadata["id_comparison_missing"].value == 1
    assert contracts.metadata["id_comparison_checked"].value == 21


def test_a_product_fixed_at_the_source_reaches_q2c_through_product_updated(fakes, tmp_path):
    # why: the README's "fix it at the source and run again" must hold for a product too: a
    # product is listed once (by its created mark), so only the event brings the fix
    import time

    from q2c_pipeline.sources.billing_client import BILLING_API_VERSION

    api = next(p for p in fakes.account.objects["products"]
               if p["metadata"].get("sf_product_code") == "API-CALLS")
    api["metadata"]["sf_product_code"] = "API-CALL"  # mistyped in Stripe
    warehouse = tmp_path / "w.duckdb"
    resources = fakes.resources(warehouse)
    assert dg.materialize([*RAW_ASSETS, canonical_tables], resources=resources).success
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        held = conn.execute("""select count(*) from canonical.quarantine
                               where rule = 'unknown_product_code' and reason like '%API-CALL%'
                               and source_table = 'invoice_lines'""").fetchone()[0]
    assert held >= 1
    api["metadata"]["sf_product_code"] = "API-CALLS"  # billing ops fix it in Stripe
    fakes.account.objects["events"].append({
        "id": "evt_1ProductFixed", "object": "event", "type": "product.updated",
        "api_version": BILLING_API_VERSION, "created": int(time.time()) - 5,
        "data": {"object": dict(api), "previous_attributes": {
            "metadata": {"sf_product_code": "API-CALL"}}}})
    assert dg.materialize([*RAW_ASSETS, canonical_tables], resources=resources).success
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        left = conn.execute("""select count(*) from canonical.quarantine
                               where reason like '%API-CALL''%'""").fetchone()[0]
        billed = conn.execute("""select count(*) from canonical.invoice_lines
                                 where product_code = 'API-CALLS'""").fetchone()[0]
    assert left == 0 and billed == 8  # every usage invoice line of the sample, released
