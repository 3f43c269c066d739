"""Resources: the warehouse file, the source systems and dbt, bound once for the code location.

Secrets arrive only through ``dg.EnvVar`` (live connectors, issue 3); the sample company is read
from a snapshot folder written by ``q2c generate``.
"""


from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource

from q2c_pipeline import settings
from q2c_pipeline.sources.snapshot import SnapshotSource
from q2c_pipeline.warehouse import connect


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB file holding raw landing, canonical, finance and the dbt marts."""

    database_path: str

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with connect(self.database_path) as conn:
            yield conn


class SourceSnapshotResource(dg.ConfigurableResource):
    """A folder holding each source system's state in its own wire shape.

    ``q2c generate`` writes one for the embedded sample company: ``salesforce/<Object>.json``
    (REST query records), ``stripe/<resource>.json`` (API objects at the pinned version),
    ``usage/usage_events_<day>.parquet`` and ``erp/*.csv`` reference data.
    """

    root: str

    def get_source(self) -> SnapshotSource:
        return SnapshotSource(self.root)


@dg.definitions
def resources() -> dg.Definitions:
    snapshot = SourceSnapshotResource(root=settings.sample_dir())
    return dg.Definitions(
        resources={
            "warehouse": WarehouseResource(database_path=settings.duckdb_path()),
            "salesforce": snapshot,
            "billing": snapshot,
            "erp": snapshot,
            "dbt": DbtCliResource(
                project_dir=str(settings.DBT_PROJECT_DIR),
                profiles_dir=str(settings.DBT_PROJECT_DIR),
            ),
        }
    )
