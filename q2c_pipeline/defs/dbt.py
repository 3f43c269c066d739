"""dbt models (``dbt_models/``) as assets: staging views, reconciliation marts, and their tests
as asset checks. Keys are ``[schema, model]`` so the marts sit beside the tables they reconcile."""


import json
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from q2c_pipeline import settings
from q2c_pipeline.defs.columns import COLUMN_SCHEMA, column_schemas, with_column_schema
from q2c_pipeline.defs.owners import owner_of
from q2c_pipeline.defs.resources import WarehouseResource

settings.ensure_dbt_on_path()
dbt_project = DbtProject(
    project_dir=settings.DBT_PROJECT_DIR,
    profiles_dir=settings.DBT_PROJECT_DIR,
)
dbt_project.prepare_if_dev()


class Q2cDbtTranslator(DagsterDbtTranslator):
    """Sources keep the key of the Python asset that writes them; models become [schema, name]."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        schema = dbt_resource_props.get("config", {}).get("schema") or "marts"
        return dg.AssetKey([schema, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "reconciliation"

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str]:
        return owner_of(self.get_asset_key(dbt_resource_props))

    def get_asset_check_spec(self, asset_spec, manifest, unique_id, project):
        """dbt tests as checks, each saying what it asserts: a singular test its leading
        comment, a generic test its rule and column."""
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None or spec.description:
            return spec
        test = manifest["nodes"].get(unique_id, {})
        return spec._replace(description=describe_test(test))  # a NamedTuple


# The work queues (tag after_posting) read the ERP outbox, so they build after it posts; the
# ERP outbox itself waits for the reconciliation marts and their tests (defs/accounting.py).
AFTER_POSTING = "tag:after_posting"


GENERIC_TESTS = {
    "not_null": "{column} is never null",
    "unique": "{column} is unique",
    "accepted_values": "{column} is one of {values}",
    "relationships": "every {column} is a {field} of {to}",
    "expression_is_true": "every row satisfies {expression}",
    "unique_combination_of_columns": "one row per {combination_of_columns}",
}


def describe_test(test: Mapping[str, Any]) -> str:
    """What a dbt test asserts, in words, for the check's description in the UI."""
    if test.get("description"):
        return test["description"]
    metadata = test.get("test_metadata") or {}
    if metadata:
        kwargs = {k: v for k, v in (metadata.get("kwargs") or {}).items()}
        kwargs.setdefault("column", kwargs.get("column_name", "the column"))
        for key in ("values", "combination_of_columns"):
            if isinstance(kwargs.get(key), list):
                kwargs[key] = ", ".join(map(str, kwargs[key]))
        template = GENERIC_TESTS.get(metadata.get("name", ""), "{name} holds")
        try:
            text = template.format(name=metadata.get("name"), **kwargs)
        except (KeyError, IndexError):
            text = f"{metadata.get('name')} holds"
        severity = (test.get("config") or {}).get("severity", "error").lower()
        return f"{text} (dbt test; {'warns' if severity == 'warn' else 'fails the close'})"
    comment = []
    for line in (test.get("raw_code") or "").splitlines():
        if not line.startswith("--"):
            break
        comment.append(line.removeprefix("--").strip())
    return " ".join(comment) or f"dbt test {test.get('name')}"


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=Q2cDbtTranslator(),
    exclude=AFTER_POSTING,
    pool="warehouse",
)
def q2c_dbt_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
):
    """Build and test the staging, intermediate and reconciliation models in the warehouse file."""
    yield from _build(context, dbt, warehouse)


def _build(context: dg.AssetExecutionContext, dbt: DbtCliResource,
           warehouse: WarehouseResource):
    # profiles.yml takes the warehouse file from the duckdb_path var: this run's resource
    invocation = dbt.cli(["build", "--vars", json.dumps({"duckdb_path": warehouse.database_path})],
                         context=context)
    events = []
    try:
        events.extend(invocation.stream())
    except Exception:
        yield from events  # what dbt built before it failed still shows
        raise
    # each model's columns as DuckDB holds them once dbt is done (it holds the file till then)
    keys = {id(e): context.asset_key_for_output(e.output_name) for e in events
            if isinstance(e, dg.Output)}
    with warehouse.get_connection() as conn:
        schemas = column_schemas(conn, [".".join(k.path) for k in keys.values()])
    specs = context.assets_def.specs_by_key
    for event in events:
        key = keys.get(id(event))
        table = ".".join(key.path) if key is not None else ""
        if table not in schemas:
            yield event
            continue
        # the model's documented columns (its spec, from the manifest) lend their descriptions
        documented = specs[key].metadata.get(COLUMN_SCHEMA) if key in specs else None
        metadata = {**dict(event.metadata), **({COLUMN_SCHEMA: documented} if documented else {})}
        yield event.with_metadata(with_column_schema(metadata, schemas, table))


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=Q2cDbtTranslator(),
    select=AFTER_POSTING,
    name="q2c_dbt_work_queues",
    pool="warehouse",
)
def q2c_dbt_work_queues(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
):
    """Build and test the work queues once the ERP outbox has posted this run's journals."""
    yield from _build(context, dbt, warehouse)
