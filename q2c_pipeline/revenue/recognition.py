"""Obligations from every revenue driver, and their schedules (vectorized).

Drivers: contract lines (allocated amounts), invoice lines that name no contract line (their own
obligation over their own service period), usage rows (recognized when they occur) and payments
with no invoice (one-time charges recognized when paid).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from q2c_pipeline.core.calendar import month_index
from q2c_pipeline.core.policy import Policy
from q2c_pipeline.revenue.schedules import spread_amounts

OBLIGATION_COLUMNS = [
    "source_type", "source_id", "component_id", "contract_id", "legal_entity", "customer_id",
    "correlation_id", "currency", "amount", "start", "end", "booking_date", "position_key",
    "schedule_version", "treatment", "recognize_from",
]


def contract_line_obligations(components: pd.DataFrame) -> pd.DataFrame:
    """Schedulable components of contract-line obligations (usage lines excluded)."""
    comp = components[components["revenue_pattern"] != "usage"].copy()
    if len(comp) == 0:
        return pd.DataFrame(columns=OBLIGATION_COLUMNS)
    booked = comp["first_signed_date"].where(~comp["is_delta"], comp["signed_date"])
    ratable = (comp["revenue_pattern"] == "ratable") & comp["service_start"].notna() \
        & comp["service_end"].notna()
    point_at = comp["service_start"].where(comp["service_start"].notna(), booked)
    out = pd.DataFrame({
        "source_type": "contract_line", "source_id": comp["obligation_id"],
        "component_id": comp["contract_line_id"], "contract_id": comp["contract_id"],
        "legal_entity": comp["legal_entity"], "customer_id": comp["customer_id"],
        "correlation_id": comp["correlation_id"], "currency": comp["currency"],
        "amount": comp["allocated"].astype("int64"),
        "start": pd.to_datetime(point_at.where(~ratable, comp["service_start"])),
        "end": pd.to_datetime(comp["service_end"].where(ratable, pd.NaT)),
        "booking_date": pd.to_datetime(booked), "position_key": comp["contract_id"],
        "schedule_version": comp["version"].astype("int64"),
        "treatment": comp["treatment"],
        "recognize_from": pd.to_datetime(comp["recognize_from"]),
    })
    return out[OBLIGATION_COLUMNS]


def build_schedule(obligations: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """One row per obligation (source_type, source_id) and month, with obligation attributes.

    With ``catch_up`` a month before the booking month is recognized in the booking month; a
    component with ``recognize_from`` (a cumulative catch-up modification) recognizes the months
    before that date's month in that month, whatever the policy. A row carries the
    ``schedule_version`` and ``treatment`` of the latest contract version that put an amount in
    it, so an amendment leaves the rows of months it does not touch exactly as they were.
    """
    obligations = obligations.reset_index(drop=True)
    spread = spread_amounts(obligations[["amount", "start", "end"]], policy.amortization)
    item = spread["item"].to_numpy()
    months = spread["month"].to_numpy()
    if policy.catch_up and len(spread):
        booked = month_index(obligations["booking_date"].to_numpy())[item]
        months = np.maximum(months, booked)
    floor = obligations["recognize_from"].to_numpy(dtype="datetime64[ns]")[item]
    has_floor = ~np.isnat(floor)
    if has_floor.any():
        months = np.where(has_floor, np.maximum(months, month_index(
            np.where(has_floor, floor, np.datetime64(0, "ns")))), months)
    versions = obligations["schedule_version"].to_numpy(dtype=np.int64)[item]
    rows = pd.DataFrame({
        "source_type": obligations["source_type"].to_numpy()[item],
        "source_id": obligations["source_id"].to_numpy()[item],
        "month": months, "amount": spread["amount"].to_numpy(),
        "schedule_version": np.where(spread["amount"].to_numpy() != 0, versions, 0),
        "treatment": obligations["treatment"].to_numpy()[item],
    })
    keys = ["source_type", "source_id", "month"]
    summed = rows.groupby(keys, as_index=False, sort=True)["amount"].sum()
    latest = rows.sort_values(keys + ["schedule_version"], kind="mergesort").drop_duplicates(
        keys, keep="last")[keys + ["schedule_version", "treatment"]]
    first_version = obligations.groupby(["source_type", "source_id"])["schedule_version"].min()
    summed = summed.merge(latest, on=keys, how="left", validate="one_to_one")
    fallback = pd.MultiIndex.from_frame(summed[["source_type", "source_id"]]).map(first_version)
    summed["schedule_version"] = summed["schedule_version"].where(
        summed["schedule_version"] > 0, fallback).astype("int64")
    attrs = obligations.drop_duplicates(["source_type", "source_id"], keep="first").drop(
        columns=["amount", "start", "end", "component_id", "schedule_version", "treatment",
                 "recognize_from"])
    return summed.merge(attrs, on=["source_type", "source_id"], how="left", validate="many_to_one")
