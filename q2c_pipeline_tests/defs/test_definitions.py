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
