"""Benchmark: usage summarization against the bare DuckDB GROUP BY floor.

Generates N rated usage events (default 50 million) over 31 daily Parquet files with DuckDB SQL in
a temporary folder, plus 10,000 customers over three legal entities, then times in fresh
processes (spawned, so each VmHWM is its own):

- ``floor``: the least any summarization must do, one join to the customer's entity and
  ``count(*), sum(amount)`` grouped by entity, day, product and currency;
- ``floor+ids``: the floor that also reads every ``usage_id`` and folds its ``hash`` into one
  ``bit_xor`` per group, the least a summary that fingerprints its events must do (the ids are
  unique, so Parquet stores them plain: reading 50M strings costs about as much CPU as the whole
  floor);
- ``summarize``: ``summarize_usage`` over a view of the same files (exact quantity sums,
  fingerprints, both accounts, line ids) and ``build_usage_journal_lines`` packaging the lines
  into capped, balanced journal entries.

All three read the same files through the same views with the same DuckDB settings (``threads``
= the machine's cores, DuckDB's default; ``preserve_insertion_order`` left at its default, since
turning it off changed neither query measurably; the progress bar off). Each runs ``--repeat``
times, interleaved, and the fastest run is kept (the machine may be shared). Prints events,
seconds, process CPU seconds, events per second, peak memory, the ratios to the floor (wall and
CPU), and a digest of the summary so two runs can be compared byte for byte.

    .venv/bin/python benchmarks/usage_summarization.py --events 5000000
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from measure import peak_rss_mib  # noqa: E402  (benchmarks/ is the script folder)

DAYS = 31
FIRST_DAY = "2026-01-01"
CUSTOMERS = 10_000
PRODUCTS = 40
ENTITIES = (("US1", "USD"), ("UK1", "GBP"), ("DE1", "EUR"))


THREADS = os.cpu_count() or 1


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def generate(work: Path, events: int) -> None:
    """Daily usage Parquet files and a customers Parquet file, all made by DuckDB SQL."""
    import duckdb

    conn = duckdb.connect()
    conn.execute("set enable_progress_bar = false")
    entities = ", ".join(f"('{entity}', '{currency}', {n})"
                         for n, (entity, currency) in enumerate(ENTITIES))
    conn.execute(
        f"""copy (
            select 'cus_' || lpad(cast(i as varchar), 6, '0') as customer_id,
                   e.entity as legal_entity, e.currency
            from range({CUSTOMERS}) t(i) join (values {entities}) e(entity, currency, n)
              on e.n = i % {len(ENTITIES)}
            order by customer_id
        ) to '{work / "customers.parquet"}' (format parquet)"""
    )
    per_day = events // DAYS
    for day in range(DAYS):
        count = per_day + (1 if day < events % DAYS else 0)
        first = day * per_day + min(day, events % DAYS)
        conn.execute(
            f"""copy (
                select 'use_' || lpad(cast(i as varchar), 12, '0') as usage_id,
                       date '{FIRST_DAY}' + interval ({day}) day
                         + to_microseconds(cast((i * 7919) % 86400000000 as bigint))
                         as occurred_at,
                       cast((i % 1000) as double) / 8 as quantity,
                       cast(1 + (i * 31) % 5000 as bigint) as amount,
                       e.currency as currency,
                       cast(null as varchar) as contract_line_id,
                       'cus_' || lpad(cast(i % {CUSTOMERS} as varchar), 6, '0') as customer_id,
                       'prod_' || lpad(cast((i * 13) % {PRODUCTS} as varchar), 3, '0')
                         as product_code,
                       cast(null as varchar) as invoice_line_id
                from range({first}, {first + count}) t(i)
                join (values {entities}) e(entity, currency, n)
                  on e.n = (i % {CUSTOMERS}) % {len(ENTITIES)}
            ) to '{work / f"usage_{day:02d}.parquet"}' (format parquet, row_group_size 1000000)"""
        )
    conn.close()


def _connect(work: Path):
    import duckdb

    conn = duckdb.connect(config={"threads": THREADS})
    conn.execute("set enable_progress_bar = false")
    conn.execute("create schema canonical")
    conn.execute(f"create view canonical.usage as "
                 f"select * from read_parquet('{work / 'usage_*.parquet'}')")
    conn.execute(f"create view canonical.customers as "
                 f"select * from read_parquet('{work / 'customers.parquet'}')")
    return conn


FLOOR_SQL = """
    select c.legal_entity, cast(u.occurred_at as date) as day, u.product_code, u.currency,
           count(*) as events, sum(u.amount) as amount{extra}
    from canonical.usage u join canonical.customers c on c.customer_id = u.customer_id
    group by all"""


def _run_query(work: Path, sql: str) -> dict:
    conn = _connect(work)
    cpu, start = _cpu_seconds(), time.perf_counter()
    rows = conn.execute(sql).fetchall()
    seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    return {"seconds": seconds, "cpu": cpu, "lines": len(rows),
            "events": sum(r[4] for r in rows), "peak_mib": peak_rss_mib()}


def run_floor(work: Path) -> dict:
    return _run_query(work, FLOOR_SQL.format(extra=""))


def run_floor_ids(work: Path) -> dict:
    return _run_query(work, FLOOR_SQL.format(extra=", bit_xor(hash(u.usage_id)) as ids"))


def run_summarize(work: Path) -> dict:
    from q2c_pipeline.accounting.usage_summary import build_usage_journal_lines, summarize_usage

    conn = _connect(work)
    cpu, start = _cpu_seconds(), time.perf_counter()
    summary = summarize_usage(conn)
    journal = build_usage_journal_lines(summary, dict(ENTITIES))
    seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    digest = hashlib.sha256(summary.to_csv(index=False).encode("utf-8")).hexdigest()[:16]
    return {"seconds": seconds, "cpu": cpu, "lines": len(summary),
            "entries": journal["journal_key"].nunique(),
            "events": int(summary["event_count"].sum() // 2), "peak_mib": peak_rss_mib(),
            "digest": digest}


def _child(target, work: Path, queue) -> None:
    queue.put(target(work))


def _in_fresh_process(target, work: Path) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_child, args=(target, work, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000_000)
    parser.add_argument("--repeat", type=int, default=3,
                        help="fresh-process runs of each measurement; the fastest is kept")
    args = parser.parse_args()
    runs = (("floor", run_floor), ("floor+ids", run_floor_ids), ("summarize", run_summarize))
    results: dict[str, list[dict]] = {name: [] for name, _ in runs}
    with tempfile.TemporaryDirectory(prefix="q2c_usage_bench_") as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        generate(work, args.events)
        size = sum(p.stat().st_size for p in work.glob("*.parquet")) / 2**20
        print(f"generated {args.events:,} events in {DAYS} daily files "  # noqa: T201
              f"({size:,.0f} MiB) in {time.perf_counter() - start:.1f}s; "
              f"DuckDB threads {THREADS}, best of {args.repeat}")
        for _ in range(max(1, args.repeat)):
            for name, target in runs:
                results[name].append(_in_fresh_process(target, work))
    best = {name: min(found, key=lambda r: r["seconds"]) for name, found in results.items()}
    digests = {r["digest"] for r in results["summarize"]}
    if len(digests) != 1:
        raise SystemExit(f"summaries of the same files differ between runs: {sorted(digests)}")
    for name, result in best.items():
        extra = (f"  lines {result['lines']:,}  entries {result['entries']:,}  "
                 f"digest {result['digest']}" if name == "summarize" else
                 f"  groups {result['lines']:,}")
        rate = result["events"] / result["seconds"]
        line = (f"{name:<10} events {result['events']:,}  seconds {result['seconds']:.2f}  "
                f"cpu {result['cpu']:.2f}  events/s {rate:,.0f}  "
                f"peak {result['peak_mib']:,.0f} MiB{extra}")
        print(line)  # noqa: T201
    ours, floor, ids = best["summarize"], best["floor"], best["floor+ids"]
    print(f"ratio to floor: {ours['seconds'] / floor['seconds']:.2f}x "  # noqa: T201
          f"(cpu {ours['cpu'] / floor['cpu']:.2f}x); to floor+ids: "
          f"{ours['seconds'] / ids['seconds']:.2f}x (cpu {ours['cpu'] / ids['cpu']:.2f}x)")


if __name__ == "__main__":
    main()
