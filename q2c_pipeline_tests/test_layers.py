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


def test_no_asset_asks_whether_a_source_is_live():
    # live and snapshot sources implement one protocol (q2c_pipeline/sources/protocol.py); only
    # the resources choose which one a run gets
    asking = [str(path.relative_to(PACKAGE)) for path in sorted((PACKAGE / "defs").rglob("*.py"))
              if path.name != "resources.py" and ".is_live" in path.read_text(encoding="utf-8")]
    assert asking == []


def test_live_and_snapshot_sources_answer_the_same_calls():
    import inspect

    from q2c_pipeline.sources import protocol

    for interface, implementations in (
            (protocol.SalesforceSource, (protocol.LiveSalesforce, protocol.SnapshotSalesforce)),
            (protocol.BillingSource, (protocol.LiveBilling, protocol.SnapshotBilling))):
        calls = {name for name, _ in inspect.getmembers(interface, inspect.isfunction)
                 if not name.startswith("_")}
        for implementation in implementations:
            for name in calls:
                assert inspect.signature(getattr(implementation, name)) == inspect.signature(
                    getattr(interface, name)), (implementation.__name__, name)
