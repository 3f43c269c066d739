"""Obligations from every revenue driver, and their schedules (vectorized).

Drivers: contract lines (allocated amounts), invoice lines that name no contract line (their own
obligation over their own service period), usage rows (recognized when they occur) and payments
with no invoice (one-time charges recognized when paid).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from q2c_pipeline.revenue.policy import Policy
from q2c_pipeline.revenue.schedules import month_index, spread_amounts

OBLIGATION_COLUMNS = [
    "source_type", "source_id", "component_id", "contract_id", "legal_entity", "customer_id",
    "correlation_id", "currency", "amount", "start", "end", "booking_date", "position_key",
    "schedule_version", "treatment",
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
    modified = comp.groupby("obligation_id")["is_delta"].transform("any")
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
        "treatment": np.where(modified, "prospective", "original"),
    })
    return out[OBLIGATION_COLUMNS]


def build_schedule(obligations: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """One row per obligation (source_type, source_id) and month, with obligation attributes.

    With ``catch_up`` a month before the booking month is recognized in the booking month.
    """
    obligations = obligations.reset_index(drop=True)
    spread = spread_amounts(obligations[["amount", "start", "end"]], policy.amortization)
    months = spread["month"].to_numpy()
    if policy.catch_up and len(spread):
        booked = month_index(obligations["booking_date"].to_numpy())[spread["item"].to_numpy()]
        months = np.maximum(months, booked)
    rows = pd.DataFrame({
        "source_type": obligations["source_type"].to_numpy()[spread["item"].to_numpy()],
        "source_id": obligations["source_id"].to_numpy()[spread["item"].to_numpy()],
        "month": months, "amount": spread["amount"].to_numpy(),
    })
    summed = rows.groupby(["source_type", "source_id", "month"], as_index=False, sort=True)[
        "amount"].sum()
    attrs = obligations.drop_duplicates(["source_type", "source_id"], keep="first").drop(
        columns=["amount", "start", "end", "component_id"])
    return summed.merge(attrs, on=["source_type", "source_id"], how="left", validate="many_to_one")
