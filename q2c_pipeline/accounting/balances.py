"""Account balances per entity x period x account x currency, signed by normal balance."""

from __future__ import annotations

import numpy as np
import pandas as pd

from q2c_pipeline.accounting.accounts import normal_sign
from q2c_pipeline.core.calendar import month_index, period_labels

BALANCE_COLUMNS = [
    "legal_entity", "period", "account", "currency", "movement", "closing_balance",
    "movement_functional", "closing_balance_functional", "functional_currency",
]


def _month_of_label(labels: pd.Series) -> np.ndarray:
    return month_index(pd.to_datetime(labels.astype(str) + "-01").to_numpy())


def build_account_balances(journal_lines: pd.DataFrame, through_period: str) -> pd.DataFrame:
    """Movement and closing balance for every period from an account's first movement on.

    The grid runs to ``through_period`` (the as-of period) or to the latest posted period if a
    closed-period shift pushed lines later. ``+`` increases the account (normal balance).
    """
    if len(journal_lines) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in BALANCE_COLUMNS})
    lines = journal_lines.copy()
    sign = lines["account"].map(normal_sign).astype("int64")
    lines["movement"] = sign * (lines["debit"] - lines["credit"])
    lines["movement_functional"] = sign * (lines["debit_functional"] - lines["credit_functional"])
    lines["month"] = _month_of_label(lines["period"])
    keys = ["legal_entity", "account", "currency", "functional_currency"]
    moved = lines.groupby(keys + ["month"], as_index=False)[
        ["movement", "movement_functional"]].sum()
    last = max(int(_month_of_label(pd.Series([through_period]))[0]), int(moved["month"].max()))
    first = moved.groupby(keys, as_index=False)["month"].min()
    count = last - first["month"].to_numpy() + 1
    grid = first.loc[first.index.repeat(count)].reset_index(drop=True)
    grid["month"] = grid["month"] + grid.groupby(keys).cumcount()
    grid = grid.merge(moved, on=keys + ["month"], how="left")
    grid[["movement", "movement_functional"]] = grid[
        ["movement", "movement_functional"]].fillna(0).astype("int64")
    grid = grid.sort_values(keys + ["month"], kind="mergesort")
    grid["closing_balance"] = grid.groupby(keys)["movement"].cumsum().astype("int64")
    grid["closing_balance_functional"] = grid.groupby(keys)["movement_functional"].cumsum()
    grid["closing_balance_functional"] = grid["closing_balance_functional"].astype("int64")
    grid["period"] = period_labels(grid["month"].to_numpy())
    grid = grid.sort_values(["legal_entity", "period", "account", "currency"], kind="mergesort")
    return grid[BALANCE_COLUMNS].reset_index(drop=True)
