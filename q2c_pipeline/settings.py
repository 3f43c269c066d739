"""Non-secret, environment-driven defaults (paths). Secrets never come through here."""

from __future__ import annotations

import os
import shutil
import sys
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


def as_of() -> str:
    """``Q2C_AS_OF`` (YYYY-MM-DD), read when the code location loads; '' when unset."""
    return os.getenv("Q2C_AS_OF", "")


def policy_path() -> str:
    """``Q2C_POLICY_PATH`` (absolute), read when the code location loads; '' when unset."""
    value = os.getenv("Q2C_POLICY_PATH", "")
    return _path("Q2C_POLICY_PATH", Path(value)) if value else ""


def roles_path() -> str:
    """``Q2C_ROLES_PATH`` (absolute), the roles file; '' = ``roles.yaml`` in the snapshot."""
    value = os.getenv("Q2C_ROLES_PATH", "")
    return _path("Q2C_ROLES_PATH", Path(value)) if value else ""


def erp_output_dir(warehouse_path: str) -> str:
    """``Q2C_ERP_OUTPUT_DIR``, else ``output/erp`` beside the warehouse file."""
    return _path("Q2C_ERP_OUTPUT_DIR", Path(warehouse_path).parent / "output" / "erp")


def dagster_home() -> Path:
    """``DAGSTER_HOME``, else ``.dagster_home`` in the repository (made, with the repository's
    ``dagster.yaml``, when missing): the instance ``dagster dev`` uses when started as the
    README says, so the runs of the ``q2c`` commands show in the UI."""
    value = os.getenv("DAGSTER_HOME")
    home = Path(value) if value else REPO_ROOT / ".dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    return home


def ensure_dbt_on_path() -> None:
    """dagster-dbt runs ``dbt`` from PATH. When q2c runs from a virtualenv that is not activated
    (``.venv/bin/q2c``, ``.venv/bin/dagster dev``), put the interpreter's bin folder first so the
    dbt installed beside it is the one found."""
    if shutil.which("dbt") is None:
        bin_dir = str(Path(sys.executable).parent)
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
