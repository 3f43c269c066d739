"""Benchmark: revenue schedules for N obligations x 36 months, the engine's vectorized schedule
core (``spread_amounts``) against a straightforward per-row Python loop over the same input.

Each measurement runs in a fresh spawned process so its peak resident memory (VmHWM) is its own.
The loop is run on a sample (default 20,000 obligations) and extrapolated linearly to N; both
the measured and the extrapolated figures are printed. Before timing, the loop's output is
checked equal to the engine's on the sample, so the comparison is like for like.

    .venv/bin/python benchmarks/revenue_schedules.py --obligations 200000 --loop-sample 20000
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MONTHS = 36
SEED = 606


def _peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_obligations(count: int):
    """Deterministic input: amounts up to 1,000,000.00, starts in 2026, 36-month terms."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(SEED)
    start = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 365, count), unit="D")
    end = start + pd.DateOffset(months=MONTHS)
    return pd.DataFrame({"amount": rng.integers(1, 100_000_000, count, dtype=np.int64),
                         "start": start, "end": pd.DatetimeIndex(end)})


def spread_with_loop(items) -> list[tuple[int, int, int]]:
    """The baseline: one obligation at a time, one month at a time, plain Python integers.

    Same convention as the engine's ``day`` amortization: a month's share is amount x its days /
    all days, rounded half-up; the last month takes what is left.
    """
    out = []
    for item, (amount, start, end) in enumerate(
            zip(items["amount"].tolist(), items["start"].tolist(), items["end"].tolist(),
                strict=True)):
        first_day = start.date().toordinal()
        last_day = end.date().toordinal()
        total_days = last_day - first_day
        year, month = start.year, start.month
        given = 0
        while True:
            next_year, next_month = (year + 1, 1) if month == 12 else (year, month + 1)
            month_start = max(first_day, start.replace(year=year, month=month, day=1)
                              .date().toordinal())
            month_end = min(last_day, start.replace(year=next_year, month=next_month, day=1)
                            .date().toordinal())
            index = (year - 1970) * 12 + month - 1
            if month_end >= last_day:
                out.append((item, index, amount - given))
                break
            share = (2 * abs(amount) * (month_end - month_start) + total_days) // (2 * total_days)
            share = share if amount >= 0 else -share
            out.append((item, index, share))
            given += share
            year, month = next_year, next_month
    return out


def _run(mode: str, count: int, queue) -> None:
    from q2c_pipeline.revenue.schedules import spread_amounts

    items = make_obligations(count)
    run = (lambda: len(spread_amounts(items, "day"))) if mode == "engine" else (
        lambda: len(spread_with_loop(items)))
    started = time.perf_counter()
    rows = run()
    cold = time.perf_counter() - started
    peak = _peak_rss_mib()
    warm = cold
    if mode == "engine":  # the first call also pays the fresh process's first-touch of memory
        for _ in range(2):
            started = time.perf_counter()
            run()
            warm = min(warm, time.perf_counter() - started)
    queue.put((cold, warm, peak, rows))


def _measure(mode: str, count: int) -> tuple[float, float, float, int]:
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_run, args=(mode, count, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def check_loop_matches_engine(count: int) -> None:
    from q2c_pipeline.revenue.schedules import spread_amounts

    items = make_obligations(count)
    engine = spread_amounts(items, "day")
    expected = list(zip(engine["item"].tolist(), engine["month"].tolist(),
                        engine["amount"].tolist(), strict=True))
    if spread_with_loop(items) != expected:
        raise SystemExit("the loop baseline disagrees with the engine; comparison is void")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--obligations", type=int, default=200_000)
    parser.add_argument("--loop-sample", type=int, default=20_000)
    args = parser.parse_args(argv)

    check_loop_matches_engine(min(args.loop_sample, 2_000))
    cold, warm, peak, rows = _measure("engine", args.obligations)
    loop_seconds, _, loop_peak, loop_rows = _measure("loop", args.loop_sample)
    extrapolated = loop_seconds * args.obligations / args.loop_sample
    sys.stdout.write(
        f"revenue schedules: {args.obligations:,} obligations x {MONTHS} months"
        " (day amortization)\n"
        f"  engine (vectorized spread_amounts), first call in a fresh process: {cold:8.2f} s\n"
        f"  engine, best of two further calls:                            {warm:8.2f} s\n"
        f"  engine peak memory (VmHWM after the first call): {peak:8.1f} MiB, "
        f"{rows:,} schedule rows\n"
        f"  per-row Python loop, measured on {args.loop_sample:,}: {loop_seconds:8.2f} s  "
        f"peak {loop_peak:8.1f} MiB  {loop_rows:,} rows\n"
        f"  per-row Python loop, extrapolated linearly to {args.obligations:,}: "
        f"{extrapolated:8.2f} s\n"
        f"  speed-up vs extrapolated loop: {extrapolated / cold:6.1f}x (first call), "
        f"{extrapolated / warm:6.1f}x (warm)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
