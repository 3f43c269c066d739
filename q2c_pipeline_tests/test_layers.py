"""The package's layering holds: core imports neither revenue nor accounting, and revenue and
accounting never import each other (q2c_pipeline/core/__init__.py)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "q2c_pipeline"

# package -> packages of q2c_pipeline it must never import
FORBIDDEN = {
    "core": ("revenue", "accounting", "engine", "defs", "sources", "schemas", "stages"),
    "revenue": ("accounting", "engine", "defs", "sources", "stages"),
    "accounting": ("revenue", "engine", "defs", "sources", "stages"),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_never_imports_the_layers_it_must_not_know(package):
    offending = []
    for path in sorted((PACKAGE / package).rglob("*.py")):
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] == "q2c_pipeline" and len(parts) > 1 and parts[1] in FORBIDDEN[package]:
                offending.append(f"{path.relative_to(PACKAGE)} imports {name}")
            if parts[0] == "dagster" or parts[0].startswith("dagster_"):
                offending.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert offending == []
