"""Sensors: new or changed invoices reach the journal tables within a minute.

``billing_invoice_sensor`` polls the billing events feed every 30 s from the event id kept in its
cursor, and requests ``invoice_partition_job`` only for the daily partitions (UTC created day)
whose invoices changed. The run key is ``invoices:<day>:<fingerprint>``, the fingerprint hashing
the (id, content) of the day's changed invoices: the same invoice state seen again yields the same
key, and a key already run is not requested twice. Days not yet a partition (today, until the
partition definition reaches it) wait in the cursor's ``pending`` map; days before the first
partition are left to the close job's full landing.

``invoices_landed_sensor`` watches ``raw/stripe_invoices_daily`` materializations and requests
``invoice_journals_job`` (canonical, finance, posting status), keyed by the landing run.
"""

import hashlib
import json

import dagster as dg

from q2c_pipeline.defs.extraction import CONTRACT_POSTING_STATUS_KEY, INVOICES_DAILY_KEY
from q2c_pipeline.defs.partitions import invoice_daily_partitions
from q2c_pipeline.defs.resources import BillingResource
from q2c_pipeline.sources.extract import INVOICES, affected_invoice_days

INVOICE_SENSOR_INTERVAL_SECONDS = 30  # half the one-minute invoice-to-journal target
RUN_KEY_TAG = "dagster/run_key"

invoice_partition_job = dg.define_asset_job(
    name="invoice_partition_job",
    selection=dg.AssetSelection.assets(INVOICES_DAILY_KEY),
    partitions_def=invoice_daily_partitions,
    executor_def=dg.in_process_executor,
    description="Land one UTC day's billing invoices into raw.stripe_invoices.",
)

invoice_journals_job = dg.define_asset_job(
    name="invoice_journals_job",
    selection=dg.AssetSelection.groups("canonical", "finance")
    | dg.AssetSelection.assets(CONTRACT_POSTING_STATUS_KEY),
    executor_def=dg.in_process_executor,
    description=(
        "Rebuild canonical tables, revenue, journals and posting status after invoices land."
    ),
)


def parse_cursor(cursor: str | None) -> tuple[str | None, dict[str, str]]:
    """(last event id read, {day: fingerprint} waiting for its partition to exist)."""
    if not cursor:
        return None, {}
    state = json.loads(cursor)
    return state.get("event"), dict(state.get("pending") or {})


def dump_cursor(event: str | None, pending: dict[str, str]) -> str:
    return json.dumps({"event": event, "pending": dict(sorted(pending.items()))}, sort_keys=True)


def combine_fingerprints(earlier: str, later: str) -> str:
    """A waiting day's fingerprint after more of its invoices changed."""
    return hashlib.sha256(f"{earlier}:{later}".encode()).hexdigest()[:16]


def _already_requested(instance: dg.DagsterInstance, run_key: str) -> bool:
    runs = instance.get_run_records(filters=dg.RunsFilter(tags={RUN_KEY_TAG: run_key}), limit=1)
    return bool(runs)


@dg.sensor(
    name="billing_invoice_sensor",
    job=invoice_partition_job,
    minimum_interval_seconds=INVOICE_SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Every 30 s (live billing only): reads Stripe's invoice events since its "
    "cursor and requests the daily invoice partitions they touch, once per content (run key "
    "from the events' fingerprint). Off by default; a snapshot folder has no events.",
)
def billing_invoice_sensor(context: dg.SensorEvaluationContext, billing: BillingResource):
    """Request the invoice day partitions that new, changed or voided invoices fall on."""
    last_event, pending = parse_cursor(context.cursor)
    changes = billing.source().changes_since(last_event)
    if changes is None:
        return dg.SkipReason("billing is read from a snapshot folder; no events feed to poll")
    for day, fingerprint in affected_invoice_days(changes.objects.get(INVOICES.name, [])).items():
        previous = pending.get(day)
        pending[day] = fingerprint if previous is None else combine_fingerprints(
            previous, fingerprint
        )
    requests, waiting = [], {}
    for day, fingerprint in sorted(pending.items()):
        if day < invoice_daily_partitions.start.strftime("%Y-%m-%d"):
            context.log.warning(f"invoices of {day} precede the first partition; left to the close")
            continue
        if not invoice_daily_partitions.has_partition_key(day):
            waiting[day] = fingerprint
            continue
        run_key = f"invoices:{day}:{fingerprint}"
        if _already_requested(context.instance, run_key):
            context.log.info(f"{run_key} already ran; not requested again")
            continue
        requests.append(dg.RunRequest(run_key=run_key, partition_key=day))
    cursor = dump_cursor(None if changes.cursor is None else str(changes.cursor), waiting)
    if not requests:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(
                f"{len(changes.event_ids)} new billing events, no invoice day to land"
            ),
            cursor=cursor,
        )
    return dg.SensorResult(run_requests=requests, cursor=cursor)


@dg.asset_sensor(
    asset_key=INVOICES_DAILY_KEY,
    name="invoices_landed_sensor",
    job=invoice_journals_job,
    minimum_interval_seconds=INVOICE_SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="After an invoice day partition lands: rebuilds canonical, finance, the ERP "
    "outbox and the Salesforce status write-back (invoice_journals_job), once per landing.",
)
def invoices_landed_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    """Rebuild canonical, finance and posting status after an invoice day landed."""
    materialization = asset_event.asset_materialization
    partition = materialization.partition if materialization is not None else None
    return dg.RunRequest(run_key=f"journals:{asset_event.run_id}:{partition}")
