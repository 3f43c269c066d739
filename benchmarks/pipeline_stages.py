"""Benchmark: generate a company at a given scale and run each pipeline stage, printing rows,
seconds and peak memory per stage.

Each stage runs in its own fresh process (spawned), so its peak resident memory (VmHWM) is its
own and not the high-water mark of an earlier stage. Stages call the same functions the Dagster
assets call (``q2c_pipeline.stages``).

    .venv/bin/python benchmarks/pipeline_stages.py --scale 1 --scale 10
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from measure import peak_rss_mib  # noqa: E402  (benchmarks/ is the script folder)


def stage_generate(work: Path, scale: int) -> int:
    from q2c_pipeline.sources.sample_company import generate_company

    summary = generate_company(work / "sample", seed=7, scale=scale)
    counts = summary.get("counts", summary)
    return int(sum(v for v in counts.values() if isinstance(v, int)))


def stage_land(work: Path, scale: int) -> int:
    from datetime import datetime

    from q2c_pipeline.sources.registry import ERP_TABLES, SALESFORCE_SOURCES, STRIPE_RESOURCES
    from q2c_pipeline.sources.snapshot import SnapshotSource
    from q2c_pipeline.stages import land_source_objects, land_usage_events, snapshot_records
    from q2c_pipeline.warehouse import connect

    source = SnapshotSource(work / "sample")
    stamp = str(source.manifest()["extracted_at"]).replace("Z", "+00:00")
    extracted_at = datetime.fromisoformat(stamp)

    with connect(work / "warehouse.duckdb") as conn:
        landed = land_source_objects(
            conn, (*SALESFORCE_SOURCES, *STRIPE_RESOURCES, *ERP_TABLES),
            lambda obj: snapshot_records(source, obj),
            request_id="benchmark", extracted_at=extracted_at,
        )
        events = land_usage_events(conn, (source.usage_events(d) for d in source.usage_days()))
    return sum(item.received for item in landed) + events


def stage_canonical(work: Path, scale: int) -> int:
    from q2c_pipeline.stages import build_canonical
    from q2c_pipeline.warehouse import connect

    with connect(work / "warehouse.duckdb") as conn:
        result = build_canonical(conn)
    return sum(c["rows_in"] for c in result.counts().values())


def stage_finance(work: Path, scale: int) -> int:
    from datetime import date

    from q2c_pipeline.core.policy import Policy
    from q2c_pipeline.sources.snapshot import SnapshotSource
    from q2c_pipeline.stages import build_finance
    from q2c_pipeline.warehouse import connect

    as_of = date.fromisoformat(str(SnapshotSource(work / "sample").manifest()["as_of"]))
    with connect(work / "warehouse.duckdb") as conn:
        result = build_finance(conn, Policy(), as_of)
    return len(result.revenue_schedule) + len(result.journal_lines)


def stage_dbt(work: Path, scale: int) -> int:
    import os

    from dbt.cli.main import dbtRunner

    os.environ["Q2C_DUCKDB_PATH"] = str(work / "warehouse.duckdb")
    project = str(REPO / "dbt_models")
    result = dbtRunner().invoke(
        ["build", "--project-dir", project, "--profiles-dir", project,
         "--target-path", str(work / "dbt_target"), "--log-path", str(work / "dbt_logs"), "--quiet"]
    )
    if not result.success:
        raise RuntimeError(f"dbt build failed: {result.exception}")
    import duckdb

    # dbt-duckdb keeps its connection open in this process: open the file the same way.
    conn = duckdb.connect(str(work / "warehouse.duckdb"))
    try:
        tables = conn.execute(
            "select table_name from information_schema.tables where table_schema = 'marts'"
        ).fetchall()
        return sum(
            conn.execute(f"select count(*) from marts.{name}").fetchall()[0][0]
            for (name,) in tables
        )
    finally:
        conn.close()


STAGES = [
    ("generate", stage_generate),
    ("land raw", stage_land),
    ("canonical + quarantine", stage_canonical),
    ("revenue + ledger engine", stage_finance),
    ("dbt build (marts + tests)", stage_dbt),
]


def _child(name: str, work: str, scale: int, queue) -> None:
    fn = dict(STAGES)[name]
    started = time.perf_counter()
    try:
        rows = fn(Path(work), scale)
        queue.put((rows, time.perf_counter() - started, peak_rss_mib(), None))
    except Exception as err:  # reported by the parent, which exits non-zero
        queue.put((0, time.perf_counter() - started, peak_rss_mib(), repr(err)))


def run(scale: int) -> bool:
    ctx = mp.get_context("spawn")
    print(f"\nscale {scale}")
    print(f"{'stage':<28}{'rows':>12}{'seconds':>10}{'peak MiB':>10}")
    ok = True
    total = 0.0
    with tempfile.TemporaryDirectory(prefix=f"q2c-bench-{scale}-") as work:
        for name, _ in STAGES:
            queue = ctx.Queue()
            proc = ctx.Process(target=_child, args=(name, work, scale, queue))
            proc.start()
            rows, seconds, peak, error = queue.get()
            proc.join()
            total += seconds
            print(f"{name:<28}{rows:>12}{seconds:>10.2f}{peak:>10.0f}")
            if error:
                print(f"  failed: {error}")
                ok = False
                break
    print(f"{'total':<28}{'':>12}{total:>10.2f}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, action="append", help="repeatable; default 1 and 10")
    args = parser.parse_args()
    results = [run(scale) for scale in (args.scale or [1, 10])]
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
