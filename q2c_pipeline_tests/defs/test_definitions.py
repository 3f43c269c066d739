"""The code location loads, and every job, schedule, sensor and check resolves."""

from __future__ import annotations

import dagster as dg

from q2c_pipeline.cli import load_definitions


def test_definitions_load_with_every_job_schedule_and_asset():
    defs = load_definitions()
    job = defs.resolve_job_def("month_end_close_job")
    assert job is not None
    for schedule in defs.schedules or []:
        defs.resolve_schedule_def(schedule.name)
    for sensor in defs.sensors or []:
        defs.resolve_sensor_def(sensor.name)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    for expected in (
        "raw/salesforce_contracts",
        "raw/stripe_invoices",
        "canonical/invoices",
        "canonical/quarantine",
        "finance/journal_lines",
        "finance/revenue_schedule",
        "marts/fct_deferred_revenue_rollforward",
        "marts/fct_invoice_ar_reconciliation",
        "marts/fct_close_summary",
    ):
        assert expected in keys, expected
    check_names = {k.name for k in defs.resolve_asset_graph().asset_check_keys}
    assert {
        "journal_lines_balance",
        "revenue_schedule_sums_to_allocation",
        "canonical_rows_conserved",
        "journal_lines_avoid_closed_periods",
    } <= check_names
    assert isinstance(defs, dg.Definitions)


def test_the_ui_names_an_owner_and_a_description_for_everything():
    """Every asset has its team; every check, sensor, schedule and job says what it does; the
    close jobs' config fields say what to type; canonical tables depend on what feeds them."""
    defs = load_definitions()
    graph = defs.resolve_asset_graph()
    teams = {"team:sales_ops", "team:billing_ops", "team:controllership"}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.owners and set(node.owners) <= teams, key
    owners = {k.to_user_string(): graph.get(k).owners for k in graph.get_all_asset_keys()}
    assert owners["raw/salesforce_contracts"] == ["team:sales_ops"]
    assert owners["canonical/invoices"] == ["team:billing_ops"]
    assert owners["marts/fct_work_queue"] == ["team:controllership"]
    for check_key in graph.asset_check_keys:
        assert graph.get_check_spec(check_key).description, check_key
    for schedule in defs.schedules or []:
        assert defs.resolve_schedule_def(schedule.name).description, schedule.name
    for sensor in defs.sensors or []:
        assert defs.resolve_sensor_def(sensor.name).description, sensor.name
    for name in ("close_period_job", "reopen_period_job", "exception_decision_job"):
        job = defs.resolve_job_def(name)
        assert job.description, name
        [node] = job.graph.node_defs
        fields = node.config_schema.as_field().config_type.fields
        assert all(f.description for f in fields.values()), name
    parents = {k.to_user_string() for k in
               graph.get(dg.AssetKey(["canonical", "invoices"])).parent_keys}
    assert "raw/stripe_invoices" in parents and not any(
        p.startswith("raw/salesforce") for p in parents)
    # the close schedule's cron says what its description says: days 3-5 at 18:00 UTC
    close = defs.resolve_schedule_def("monthly_close_period_schedule")
    assert close.cron_schedule == "0 18 3-5 * *" and "Days 3-5" in close.description
