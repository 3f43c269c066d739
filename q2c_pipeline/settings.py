"""Non-secret, environment-driven defaults (paths). Secrets never come through here."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_models"


def _path(env: str, default: Path) -> str:
    value = os.getenv(env)
    path = Path(value) if value else default
    if not path.is_absolute():
        path = REPO_ROOT / path
    return str(path)


def duckdb_path() -> str:
    """``Q2C_DUCKDB_PATH``, default ``data/warehouse.duckdb`` (made absolute for dbt)."""
    return _path("Q2C_DUCKDB_PATH", REPO_ROOT / "data" / "warehouse.duckdb")


def sample_dir() -> str:
    """``Q2C_SAMPLE_DIR``: the snapshot of the source systems, default ``data/sample``."""
    return _path("Q2C_SAMPLE_DIR", REPO_ROOT / "data" / "sample")
