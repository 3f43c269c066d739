"""The vectorized schedule core agrees, row for row, with the plain per-row implementation."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from q2c_pipeline.revenue.reference import spread_with_loop
from q2c_pipeline.revenue.schedules import spread_amounts


def _rows(frame: pd.DataFrame) -> list[tuple[int, int, int]]:
    return list(zip(frame["item"].tolist(), frame["month"].tolist(), frame["amount"].tolist(),
                    strict=True))


def test_day_spread_matches_the_reference_on_thousands_of_random_obligations():
    # Why: the vectorized core looks shares up per month length instead of dividing per row;
    # month boundaries, leap years, partial last days and negative amounts must not change a cent.
    rng = np.random.default_rng(20261126)
    count = 3_000
    start = pd.Timestamp("2023-11-15") + pd.to_timedelta(rng.integers(0, 1_200, count), unit="D")
    start = start + pd.to_timedelta(rng.integers(0, 86_400, count) * (rng.random(count) < 0.2),
                                    unit="s")
    length = pd.to_timedelta(rng.integers(1, 1_500, count), unit="D")
    items = pd.DataFrame({
        "amount": rng.integers(-50_000_000, 500_000_000, count, dtype=np.int64),
        "start": start,
        "end": start + length,
    })
    assert _rows(spread_amounts(items, "day")) == spread_with_loop(items)


@settings(max_examples=60, deadline=None)
@given(
    amount=st.integers(min_value=-10**12, max_value=10**12),
    start_day=st.integers(min_value=0, max_value=3_000),
    days=st.integers(min_value=1, max_value=2_000),
)
def test_day_spread_matches_the_reference_for_any_single_obligation(amount, start_day, days):
    start = pd.Timestamp("2020-01-01") + pd.Timedelta(days=start_day)
    items = pd.DataFrame({"amount": [amount], "start": [start],
                          "end": [start + pd.Timedelta(days=days)]})
    result = spread_amounts(items, "day")
    assert _rows(result) == spread_with_loop(items)
    assert int(result["amount"].sum()) == amount
