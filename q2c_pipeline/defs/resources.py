"""Resources: the warehouse file, the source systems and dbt, bound once for the code location.

``salesforce`` and ``billing`` are live when credentials are configured and read the snapshot
folder (``Q2C_SAMPLE_DIR``, written by ``q2c generate``) otherwise; ``erp`` is always a folder of
exports. The switch is one helper, ``live_systems()``, reading non-secret environment only:

- Salesforce is live when ``SALESFORCE_AUTH_MODE`` is ``password``, ``client_credentials`` or
  ``jwt``; its secrets (``SALESFORCE_PASSWORD``, ``SALESFORCE_SECURITY_TOKEN``,
  ``SALESFORCE_CLIENT_SECRET``, ``SALESFORCE_PRIVATE_KEY``) arrive through ``dg.EnvVar``.
- Billing is live when ``BILLING_API_TOKEN`` is set; the key itself arrives through
  ``dg.EnvVar("BILLING_API_TOKEN")``, resolved at run time and hidden in the UI.

Both live resources keep ``snapshot_root``: usage events are still read from the usage export
folder, and a resource without credentials is the snapshot twin. Tests reach the fakes by
subclassing and overriding ``build_session`` (Salesforce) or by pointing ``base_url`` at the fake
(billing).
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
import requests
from dagster_dbt import DbtCliResource
from pydantic import Field

from q2c_pipeline import settings
from q2c_pipeline.accounting.erp_files import FileDropErpClient
from q2c_pipeline.close.decisions import roles_path as roles_file_for
from q2c_pipeline.sources.billing_client import (
    BILLING_API_VERSION,
    DEFAULT_BASE_URL,
    BillingConfig,
    BillingExtractor,
)
from q2c_pipeline.sources.protocol import (
    BillingSource,
    LiveBilling,
    LiveSalesforce,
    SalesforceSource,
    SnapshotBilling,
    SnapshotSalesforce,
)
from q2c_pipeline.sources.salesforce_client import (
    DEFAULT_API_VERSION,
    AuthMode,
    SalesforceConfig,
    SalesforceExtractor,
)
from q2c_pipeline.sources.snapshot import SnapshotSource
from q2c_pipeline.warehouse import connect

SALESFORCE_AUTH_MODE_ENV = "SALESFORCE_AUTH_MODE"
BILLING_TOKEN_ENV = "BILLING_API_TOKEN"


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB file holding raw landing, canonical, finance and the dbt marts."""

    database_path: str = Field(description="The warehouse file (Q2C_DUCKDB_PATH, default "
                               "data/warehouse.duckdb), absolute.")

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

    root: str = Field(description="The snapshot folder (Q2C_SAMPLE_DIR, default data/sample): "
                      "ERP reference CSVs, and the sources when they are not live.")

    def get_source(self) -> SnapshotSource:
        return SnapshotSource(self.root)


class ErpPostingResource(dg.ConfigurableResource):
    """Where posted journals go. The sample company's ERP takes import files in a folder."""

    output_dir: str = Field(description="Where the ERP import files go (Q2C_ERP_OUTPUT_DIR, "
                            "else output/erp beside the warehouse file).")

    def get_client(self) -> FileDropErpClient:
        return FileDropErpClient(self.output_dir)


class CloseSettingsResource(dg.ConfigurableResource):
    """The close's standing inputs, fixed when the code location loads (``Q2C_AS_OF``,
    ``Q2C_POLICY_PATH``): nothing reads the environment while a close runs. A run's own
    ``as_of`` config wins over ``as_of`` here; each close records what it used in
    ``ledger.close_runs``."""

    as_of: str = Field(default="", description="Close date YYYY-MM-DD (Q2C_AS_OF); empty: the "
                       "snapshot manifest's as_of, else today in UTC. A run's own as_of wins.")
    policy_path: str = Field(default="", description="Revenue policy file (Q2C_POLICY_PATH); "
                             "empty: policy.yaml in the snapshot folder, else the defaults.")
    roles_path: str = Field(default="", description="Who may act for which team "
                            "(Q2C_ROLES_PATH); empty: roles.yaml in the snapshot folder.")

    def roles_file(self, snapshot_root: str) -> Path:
        """Who may act for which owner (``q2c_pipeline.close.decisions.Roles``)."""
        return roles_file_for(snapshot_root, self.roles_path)


class SalesforceResource(dg.ConfigurableResource):
    """A Salesforce org through simple-salesforce (REST, Bulk 2.0 over ``bulk_threshold`` rows),
    or, with ``auth_mode`` empty, the ``salesforce/`` folder of ``snapshot_root``.

    ``auth_mode``: ``password`` (username + password + security token), ``client_credentials``
    (connected app on a My Domain) or ``jwt`` (connected app + private key acting as username).
    """

    snapshot_root: str = Field(default="", description="The snapshot folder read when the "
                               "org is not live (its salesforce/ files).")
    auth_mode: str = Field(default="", description="password, client_credentials or jwt "
                           "(SALESFORCE_AUTH_MODE); empty: read the snapshot folder.")
    username: str | None = Field(default=None, description="The integration user "
                                 "(SALESFORCE_USERNAME): password and jwt modes.")
    password: str | None = Field(default=None, description="Secret, from EnvVar "
                                 "SALESFORCE_PASSWORD (password mode).")
    security_token: str | None = Field(default=None, description="Secret, from EnvVar "
                                       "SALESFORCE_SECURITY_TOKEN (password mode).")
    consumer_key: str | None = Field(default=None, description="The connected app's client "
                                     "id (SALESFORCE_CLIENT_ID).")
    consumer_secret: str | None = Field(default=None, description="Secret, from EnvVar "
                                        "SALESFORCE_CLIENT_SECRET (client_credentials mode).")
    private_key: str | None = Field(default=None, description="Secret, from EnvVar "
                                    "SALESFORCE_PRIVATE_KEY (jwt mode): the PEM key.")
    domain: str = Field(default="login", description="login, test, or the My Domain "
                        "(SALESFORCE_DOMAIN).")
    api_version: str = Field(default=DEFAULT_API_VERSION, description="REST API version, e.g. "
                             "59.0 (SALESFORCE_API_VERSION).")
    bulk_threshold: int = Field(default=10_000, description="Above this many records an "
                                "object is read with Bulk API 2.0 instead of REST.")
    limit_floor_pct: float = Field(default=10.0, description="Stop before the org's daily "
                                   "API requests remaining fall below this percentage.")
    max_retries: int = Field(default=5, description="Retries of a call that failed for a "
                             "reason worth retrying (429, 5xx, connection), with backoff.")
    backoff_base: float = Field(default=1.0, description="Seconds of the first backoff "
                                "(doubling, at most 60 s).")

    @property
    def is_live(self) -> bool:
        return bool(self.auth_mode)

    def get_source(self) -> SnapshotSource:
        return SnapshotSource(self.snapshot_root)

    def get_config(self) -> SalesforceConfig:
        return SalesforceConfig(
            auth_mode=AuthMode(self.auth_mode),
            username=self.username,
            password=self.password,
            security_token=self.security_token,
            consumer_key=self.consumer_key,
            consumer_secret=self.consumer_secret,
            private_key=self.private_key,
            domain=self.domain,
            api_version=self.api_version,
            bulk_threshold=self.bulk_threshold,
            limit_floor_pct=self.limit_floor_pct,
            max_retries=self.max_retries,
            backoff_base=self.backoff_base,
        )

    def build_session(self) -> requests.Session:
        """The HTTP session every Salesforce call uses (tests return a loopback session)."""
        return requests.Session()

    def get_extractor(self) -> SalesforceExtractor:
        """Log in and return an extractor (its ``sf`` client also writes statuses back)."""
        return SalesforceExtractor(self.get_config(), self.build_session())

    def source(self) -> SalesforceSource:
        """The org (logged in) when credentials are set, else its snapshot folder: the same
        protocol either way (``q2c_pipeline.sources.protocol``)."""
        if self.is_live:
            return LiveSalesforce(self.get_extractor())
        return SnapshotSalesforce(self.get_source())


class BillingResource(dg.ConfigurableResource):
    """The billing platform (Stripe) through the official client pinned to ``api_version``, or,
    with ``api_key`` empty, the ``stripe/`` folder of ``snapshot_root``. Usage events are read
    from ``snapshot_root``'s ``usage/`` folder either way."""

    snapshot_root: str = Field(default="", description="The snapshot folder: its stripe/ "
                               "files when billing is not live, its usage/ files always.")
    api_key: str = Field(default="", description="Secret, from EnvVar BILLING_API_TOKEN; "
                         "empty: read the snapshot folder.")
    base_url: str = Field(default=DEFAULT_BASE_URL, description="The API's base URL "
                          "(BILLING_BASE_URL).")
    api_version: str = Field(default=BILLING_API_VERSION, description="The Stripe API "
                             "version every call pins.")
    page_size: int = Field(default=100, description="Objects per list page (Stripe's "
                           "maximum is 100).")
    max_network_retries: int = Field(default=2, description="The Stripe client's own retries "
                                     "of 5xx and connection errors.")
    max_retries: int = Field(default=5, description="q2c's retries of 429 (rate limited) and "
                             "what the client gave up on, with backoff.")
    backoff_base: float = Field(default=1.0, description="Seconds of the first backoff "
                                "(doubling, at most 60 s).")

    @property
    def is_live(self) -> bool:
        return bool(self.api_key)

    def get_source(self) -> SnapshotSource:
        return SnapshotSource(self.snapshot_root)

    def source(self) -> BillingSource:
        """The Stripe account when a key is set, else its snapshot folder (same protocol)."""
        if self.is_live:
            return LiveBilling(self.get_extractor())
        return SnapshotBilling(self.get_source())

    def get_extractor(self) -> BillingExtractor:
        return BillingExtractor(BillingConfig(
            api_key=self.api_key,
            base_url=self.base_url,
            api_version=self.api_version,
            max_network_retries=self.max_network_retries,
            page_size=self.page_size,
            max_retries=self.max_retries,
            backoff_base=self.backoff_base,
        ))


def live_systems() -> set[str]:
    """Which source systems have live credentials configured (non-secret switches only)."""
    live = set()
    if os.getenv(SALESFORCE_AUTH_MODE_ENV, ""):
        live.add("salesforce")
    if os.getenv(BILLING_TOKEN_ENV, ""):
        live.add("billing")
    return live


def _optional_env(name: str) -> dg.EnvVar | None:
    """Bind a secret through EnvVar only when it is set (each auth mode needs a different set)."""
    return dg.EnvVar(name) if os.getenv(name) else None


def build_salesforce_resource(snapshot_root: str) -> SalesforceResource:
    if "salesforce" not in live_systems():
        return SalesforceResource(snapshot_root=snapshot_root)
    return SalesforceResource(
        snapshot_root=snapshot_root,
        auth_mode=os.environ[SALESFORCE_AUTH_MODE_ENV],
        username=os.getenv("SALESFORCE_USERNAME") or None,
        password=_optional_env("SALESFORCE_PASSWORD"),
        security_token=_optional_env("SALESFORCE_SECURITY_TOKEN"),
        consumer_key=os.getenv("SALESFORCE_CLIENT_ID") or None,
        consumer_secret=_optional_env("SALESFORCE_CLIENT_SECRET"),
        private_key=_optional_env("SALESFORCE_PRIVATE_KEY"),
        domain=os.getenv("SALESFORCE_DOMAIN", "login"),
        api_version=os.getenv("SALESFORCE_API_VERSION", DEFAULT_API_VERSION),
        bulk_threshold=int(os.getenv("SALESFORCE_BULK_THRESHOLD", "10000")),
        limit_floor_pct=float(os.getenv("SALESFORCE_API_LIMIT_FLOOR_PCT", "10")),
    )


def build_billing_resource(snapshot_root: str) -> BillingResource:
    if "billing" not in live_systems():
        return BillingResource(snapshot_root=snapshot_root)
    return BillingResource(
        snapshot_root=snapshot_root,
        api_key=dg.EnvVar(BILLING_TOKEN_ENV),
        base_url=os.getenv("BILLING_BASE_URL", DEFAULT_BASE_URL),
    )


def build_resources(duckdb_path: str, sample_dir: str) -> dict:
    """Every resource of the code location for one warehouse file and snapshot folder (the
    ``q2c`` commands pass theirs; ``dagster dev`` uses ``settings``)."""
    return {
        "warehouse": WarehouseResource(database_path=duckdb_path),
        "salesforce": build_salesforce_resource(sample_dir),
        "billing": build_billing_resource(sample_dir),
        "erp": SourceSnapshotResource(root=sample_dir),
        "close_settings": CloseSettingsResource(as_of=settings.as_of(),
                                                policy_path=settings.policy_path(),
                                                roles_path=settings.roles_path()),
        "erp_posting": ErpPostingResource(output_dir=settings.erp_output_dir(duckdb_path)),
        "dbt": DbtCliResource(
            project_dir=str(settings.DBT_PROJECT_DIR),
            profiles_dir=str(settings.DBT_PROJECT_DIR),
        ),
    }


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=build_resources(settings.duckdb_path(),
                                                    settings.sample_dir()))
