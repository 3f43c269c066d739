"""Shared fixtures: a small generated company and one full close run over it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

SEED = 7
SCALE = 1

# The partitions the code location offers are bounded by the snapshot it loads with
# (q2c_pipeline/defs/partitions.py), read once at import. The tests import it with an empty
# snapshot folder, whatever data/sample holds on this machine: every machine sees the same
# partitions (from the start dates, up to today); test_partitions.py loads it over a sample.
os.environ["Q2C_SAMPLE_DIR"] = tempfile.mkdtemp(prefix="q2c-empty-snapshot-")

# Property tests run a fixed budget of examples, the same ones on every machine and run
# (derandomized, no example database): the suite's verdict never depends on luck. Exploring
# new random examples is a separate, deliberate act:
#   HYPOTHESIS_PROFILE=explore .venv/bin/python -m pytest q2c_pipeline_tests/revenue
settings.register_profile("q2c", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.getenv("HYPOTHESIS_PROFILE", "q2c"))


@pytest.fixture(scope="session", autouse=True)
def dagster_home(tmp_path_factory):
    """The `q2c` commands record their runs on the DAGSTER_HOME instance (the one `dagster dev`
    shows); the tests' runs go to a session folder, never the repository's .dagster_home."""
    home = tmp_path_factory.mktemp("q2c_dagster_home")
    saved = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    yield home
    if saved is None:
        os.environ.pop("DAGSTER_HOME", None)
    else:
        os.environ["DAGSTER_HOME"] = saved


@pytest.fixture(scope="session")
def sample_company(tmp_path_factory) -> Path:
    """The default sample company's source systems, written once per test session."""
    from q2c_pipeline.sources.sample_company import generate_company

    root = tmp_path_factory.mktemp("sample")
    generate_company(root, seed=SEED, scale=SCALE)
    return root


@pytest.fixture(scope="session")
def postgres_instance_home(tmp_path_factory):
    """A DAGSTER_HOME whose dagster.yaml is the repository's Postgres template, pointed at the
    machine's PostgreSQL database ``test`` through the environment variables it documents."""
    import shutil

    home = tmp_path_factory.mktemp("dagster_home")
    repo = Path(__file__).resolve().parent.parent
    shutil.copy(repo / "dagster.postgres.yaml", home / "dagster.yaml")
    env = {
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": "5432",
        "DAGSTER_PG_DB": "test",
        "DAGSTER_PG_USERNAME": os.getenv("DAGSTER_PG_USERNAME", "postgres"),
        "DAGSTER_PG_PASSWORD": os.getenv("DAGSTER_PG_PASSWORD", ""),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield home
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def closed_warehouse(sample_company, tmp_path_factory, postgres_instance_home):
    """The whole graph materialized once over the sample company, with the Dagster instance's
    run and event storage on PostgreSQL. Returns (warehouse path, execution result, instance)."""
    import dagster as dg

    from q2c_pipeline.cli import load_definitions

    warehouse = tmp_path_factory.mktemp("warehouse") / "warehouse.duckdb"
    os.environ["Q2C_DUCKDB_PATH"] = str(warehouse)
    os.environ["Q2C_SAMPLE_DIR"] = str(sample_company)
    defs = load_definitions()
    instance = dg.DagsterInstance.from_config(str(postgres_instance_home))
    job = defs.resolve_job_def("month_end_close_job")
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    yield warehouse, result, instance
    instance.dispose()
