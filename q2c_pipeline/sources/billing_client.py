"""Live billing extraction from Stripe through the official client (stripe-python 16.1.0).

Records are the API objects as plain dicts, exactly the JSON Stripe sent (the response body is
parsed again rather than converted from StripeObjects), so the raw -> canonical mappers read live
extracts and snapshot files alike. Invoices and credit notes come back with *all* their lines:
when the embedded `lines` list has more, the `/lines` sub-list is paged and spliced in (the
embedded list then reads `has_more: false` with every line in `data`).

The API version is pinned (`BILLING_API_VERSION`): the mappers are written against its shapes.
stripe-python retries 409 and 5xx itself (`max_network_retries`) but never 429 without
`Stripe-Should-Retry`; each page request is therefore wrapped in a bounded backoff of our own that
also covers 5xx beyond the client's retries, then fails loudly.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import stripe

from q2c_pipeline.sources.retry import RetryPolicy, call_with_backoff

logger = logging.getLogger(__name__)

# The version stripe-python 16.1.0 is generated against; pinned so shapes never drift under us.
BILLING_API_VERSION = "2026-10-28.endive"
DEFAULT_BASE_URL = "https://api.stripe.com"

RESOURCES = (
    "customers", "products", "prices", "subscriptions", "invoices", "credit_notes",
    "invoice_payments", "refunds", "billing_meters",
)
# List paths that are not /v1/<resource>; lists with no `created` filter are read whole.
_PATHS = {"billing_meters": "/v1/billing/meters"}
_UNFILTERED = {"billing_meters"}
# Stripe omits these from a price unless expanded; rating needs both (usage_pricing).
_EXPAND = {"prices": ["data.tiers", "data.currency_options"]}
_LINED = ("invoices", "credit_notes")
_RESOURCE_BY_OBJECT = {
    "customer": "customers", "product": "products", "price": "prices",
    "subscription": "subscriptions", "invoice": "invoices", "credit_note": "credit_notes",
    "invoice_payment": "invoice_payments", "refund": "refunds",
    "billing.meter": "billing_meters",
}
# Event types that change an object the pipeline lands. Stripe's `types` filter takes at most
# 20 names, so the feed is read in batches of 20 and merged in event order.
CHANGE_EVENT_TYPES = (
    "invoice.created", "invoice.finalized", "invoice.updated", "invoice.paid",
    "invoice.voided", "invoice.marked_uncollectible", "invoice.payment_succeeded",
    "invoice.deleted", "invoice.overdue", "invoice.payment_failed",
    "credit_note.created", "credit_note.updated", "credit_note.voided",
    "customer.created", "customer.updated", "customer.deleted",
    "customer.subscription.created", "customer.subscription.updated",
    "customer.subscription.deleted", "customer.subscription.paused",
    "customer.subscription.resumed",
    "refund.created", "refund.updated", "refund.failed",
    "invoice_payment.paid",
    "product.created", "product.updated", "product.deleted",
    "price.created", "price.updated", "price.deleted",
    "billing.meter.created", "billing.meter.updated", "billing.meter.deactivated",
    "billing.meter.reactivated",
)
MAX_TYPES_PER_REQUEST = 20
# The object is gone (a deleted draft invoice, customer, product or price): tombstoned. A
# subscription's *.deleted is a status (canceled), its object is kept.
_DELETION_EVENTS = {"customer.deleted", "invoice.deleted", "product.deleted", "price.deleted"}


class EventCursorExpired(RuntimeError):
    """The stored event cursor names an event Stripe no longer keeps (events are retained 30
    days): what changed since cannot be read from the feed."""


@dataclass(frozen=True)
class BillingConfig:
    """Stripe connection settings. `api_key` is excluded from repr."""

    api_key: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    api_version: str = BILLING_API_VERSION
    max_network_retries: int = 2  # the client's own retries (409, 5xx, connection errors)
    page_size: int = 100
    max_retries: int = 5  # our retries on 429 and on 5xx left over by the client
    backoff_base: float = 1.0

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_retries=self.max_retries, backoff_base=self.backoff_base)


@dataclass(frozen=True)
class BillingExtract:
    """One resource's objects (API order: newest first) and the Stripe request ids used."""

    resource: str
    records: list[dict[str, Any]]
    request_ids: list[str]


@dataclass(frozen=True)
class BillingChanges:
    """Objects changed by events after a cursor: the latest state per object (from the newest
    event that carried it), ids deleted, the events read oldest first, and the next cursor (the
    newest event id, or the given cursor when nothing happened)."""

    objects: dict[str, list[dict[str, Any]]]
    deleted_ids: dict[str, list[str]]
    event_ids: list[str]
    cursor: str | int | None
    request_ids: list[str]


def build_stripe_client(config: BillingConfig) -> stripe.StripeClient:
    """A StripeClient pinned to the configured API version and base URL."""
    return stripe.StripeClient(
        config.api_key,
        stripe_version=config.api_version,
        base_addresses={"api": config.base_url},
        max_network_retries=config.max_network_retries,
    )


def _is_retryable(error: BaseException) -> bool:
    """429, connection faults (a body cut mid-transfer included), 5xx the client left over, and
    a response whose JSON stops half-way."""
    if isinstance(error, json.JSONDecodeError):
        return True
    if isinstance(error, (stripe.RateLimitError, stripe.APIConnectionError)):
        return True
    if isinstance(error, stripe.APIError):
        if "Invalid response body from API" in str(error):
            return True  # stripe-python could not parse what arrived (a body stopped half-way)
        return error.http_status is None or int(error.http_status) >= 500
    return False


def _epoch(moment: datetime | int | None) -> int | None:
    if moment is None or isinstance(moment, int):
        return moment
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp())


class BillingExtractor:
    """Pages Stripe list endpoints with bounded retries and returns plain JSON dicts."""

    def __init__(
        self,
        config: BillingConfig,
        client: stripe.StripeClient | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.client = client or build_stripe_client(config)
        self._sleep = sleep
        self._clock = clock

    def _get(self, path: str, params: Mapping[str, Any], request_ids: list[str]) -> dict[str, Any]:
        def call() -> dict[str, Any]:
            response = self.client.raw_request("get", path, **dict(params))
            return response, json.loads(response.body)

        response, body = call_with_backoff(
            call,
            policy=self.config.retry_policy,
            is_retryable=_is_retryable,
            what=f"stripe GET {path}",
            sleep=self._sleep,
        )
        if response.request_id:
            request_ids.append(response.request_id)
        return body

    def _page_all(self, path: str, params: Mapping[str, Any], request_ids: list[str]
                  ) -> list[dict[str, Any]]:
        """Every object of a list endpoint, following `starting_after` while `has_more`."""
        items: list[dict[str, Any]] = []
        query = {**params, "limit": self.config.page_size}
        while True:
            page = self._get(path, query, request_ids)
            items.extend(page["data"])
            if not page.get("has_more") or not page["data"]:
                return items
            query = {**query, "starting_after": page["data"][-1]["id"]}

    def complete_lines(self, resource: str, obj: dict[str, Any], request_ids: list[str]
                       ) -> dict[str, Any]:
        """Return `obj` with every line in `lines.data` (paging `/lines` when `has_more`)."""
        lines = obj.get("lines")
        if resource not in _LINED or not isinstance(lines, dict) or not lines.get("has_more"):
            return obj
        all_lines = self._page_all(f"/v1/{resource}/{obj['id']}/lines", {}, request_ids)
        return {**obj, "lines": {**lines, "data": all_lines, "has_more": False}}

    def complete_tiers(self, price: dict[str, Any], request_ids: list[str]) -> dict[str, Any]:
        """A tiered price with every currency's tiers: Stripe sends ``currency_options.<ccy>.
        tiers`` only when that very path is expanded (a list cannot expand it for every
        currency), so such a price is retrieved again with one expansion per currency."""
        options = price.get("currency_options")
        if price.get("billing_scheme") != "tiered" or not isinstance(options, Mapping) \
                or all("tiers" in (option or {}) for option in options.values()):
            return price
        expand = ["tiers", "currency_options",
                  *(f"currency_options.{code}.tiers" for code in sorted(options))]
        return self._get(f"/v1/prices/{price['id']}", {"expand": expand}, request_ids)

    def extract(
        self,
        resource: str,
        created_gte: datetime | int | None = None,
        created_lt: datetime | int | None = None,
    ) -> BillingExtract:
        """All objects of `resource` created in [created_gte, created_lt) (unbounded when None)."""
        if resource not in RESOURCES:
            raise ValueError(f"unknown billing resource {resource!r}; expected one of {RESOURCES}")
        params: dict[str, Any] = {}
        if resource in _EXPAND:
            params["expand"] = list(_EXPAND[resource])
        created: dict[str, int | None] = {}
        if created_gte is not None:
            created["gte"] = _epoch(created_gte)
        if created_lt is not None:
            created["lt"] = _epoch(created_lt)
        if created and resource not in _UNFILTERED:
            params["created"] = created
        if resource == "subscriptions":
            params["status"] = "all"  # canceled subscriptions are listed only on request
        request_ids: list[str] = []
        # Cursor paging (starting_after an object id) neither repeats nor skips objects when new
        # ones arrive meanwhile, so records are kept exactly as listed: were an id ever repeated,
        # validation (not extraction) decides what to do with it.
        records = [
            self.complete_lines(resource, record, request_ids)
            for record in self._page_all(_PATHS.get(resource, f"/v1/{resource}"), params,
                                         request_ids)
        ]
        if resource == "prices":
            records = [self.complete_tiers(price, request_ids) for price in records]
        logger.info("stripe: %s %d objects in %d requests", resource, len(records),
                    len(request_ids))
        return BillingExtract(resource, records, request_ids)

    def meter_event_summaries(
        self, meters: Iterable[Mapping[str, Any]], subscriptions: Iterable[Mapping[str, Any]],
        end: datetime | int,
    ) -> BillingExtract:
        """Daily event summaries of every meter for every customer whose subscription bills a
        price on it, from the subscription's start day to ``end`` (floored to a UTC day: only
        whole days). Stripe's summary names no customer; each record gains the ``customer`` it
        was asked for (the only field q2c adds to a landed object)."""
        request_ids: list[str] = []
        end_day = (_epoch(end) or 0) // 86_400 * 86_400
        active = {str(m.get("id")) for m in meters if m.get("status", "active") == "active"}
        wanted: dict[tuple[str, str], int] = {}
        for subscription in subscriptions:
            customer = subscription.get("customer")
            customer = customer.get("id") if isinstance(customer, Mapping) else customer
            start = int(subscription.get("start_date") or subscription.get("created") or 0)
            for item in (subscription.get("items") or {}).get("data") or []:
                price = item.get("price") if isinstance(item.get("price"), Mapping) else {}
                meter = (price.get("recurring") or {}).get("meter")
                if meter in active and customer:
                    key = (str(meter), str(customer))
                    wanted[key] = min(wanted.get(key, start), start)
        records: list[dict[str, Any]] = []
        for (meter, customer), start in sorted(wanted.items()):
            start_day = start // 86_400 * 86_400
            if start_day >= end_day:
                continue
            params = {"customer": customer, "start_time": start_day, "end_time": end_day,
                      "value_grouping_window": "day"}
            for summary in self._page_all(f"/v1/billing/meters/{meter}/event_summaries",
                                          params, request_ids):
                records.append({**summary, "customer": customer})
        logger.info("stripe: %d meter event summaries in %d requests", len(records),
                    len(request_ids))
        return BillingExtract("billing_meter_event_summaries", records, request_ids)

    def changes_since(self, cursor: str | int | datetime | None) -> BillingChanges:
        """Objects changed by events after `cursor`: an event id (`evt_...`, exclusive), a Unix
        time or datetime (events created after it), or None (all retained events).

        An event's `data.object` is rendered at the API version current when the event was
        created (the event's `api_version`), not at the pinned one, and never changes. Any
        object from an event at another version is therefore retrieved again, at the pinned
        version, before it is landed; an object that no longer exists is deleted."""
        request_ids: list[str] = []
        chronological: list[dict[str, Any]] = []
        # every batch reads the same slice of the feed: events created before the second this
        # read began. Without that bound an event arriving between two batches could fall
        # behind the cursor the newest batch sets, and never be read.
        before = int(self._clock())
        for start in range(0, len(CHANGE_EVENT_TYPES), MAX_TYPES_PER_REQUEST):
            types = list(CHANGE_EVENT_TYPES[start:start + MAX_TYPES_PER_REQUEST])
            try:
                chronological.extend(self._events_since(cursor, types, before, request_ids))
            except stripe.InvalidRequestError as error:
                if isinstance(cursor, str) and getattr(error, "code", None) == "resource_missing":
                    raise EventCursorExpired(
                        f"the stored Stripe event cursor {cursor!r} is no longer kept by Stripe "
                        "(events are retained 30 days), so changes since it cannot be read from "
                        "the feed: run billing_raw with config full_refresh: true to read every "
                        "object again") from error
                raise
        # one feed in event order; within a second Stripe's own list order is kept (a stable
        # sort of each batch, already oldest first): ids carry no order
        chronological.sort(key=lambda e: int(e.get("created") or 0))
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        versions: dict[tuple[str, str], str | None] = {}
        deleted: dict[str, dict[str, None]] = {}
        for event in chronological:
            obj = (event.get("data") or {}).get("object") or {}
            resource = _RESOURCE_BY_OBJECT.get(str(obj.get("object")))
            if resource is None or "id" not in obj:
                continue
            key = (resource, str(obj["id"]))
            if event.get("type") in _DELETION_EVENTS:
                latest.pop(key, None)
                deleted.setdefault(resource, {})[key[1]] = None
            else:
                latest[key] = obj
                versions[key] = event.get("api_version")
                deleted.get(resource, {}).pop(key[1], None)
        objects: dict[str, list[dict[str, Any]]] = {}
        retrieved = 0
        for (resource, object_id), obj in sorted(latest.items()):
            if versions[(resource, object_id)] != self.config.api_version:
                current = self.retrieve(resource, object_id, request_ids)
                retrieved += 1
                if current is None:
                    deleted.setdefault(resource, {})[object_id] = None
                    continue
                obj = current
            objects.setdefault(resource, []).append(
                self.complete_lines(resource, obj, request_ids)
            )
        if retrieved:
            logger.info("stripe: %d objects from events at another API version retrieved "
                        "again at %s", retrieved, self.config.api_version)
        new_cursor = chronological[-1]["id"] if chronological else cursor
        if isinstance(new_cursor, datetime):
            new_cursor = _epoch(new_cursor)
        return BillingChanges(
            objects=objects,
            deleted_ids={resource: sorted(ids) for resource, ids in sorted(deleted.items()) if ids},
            event_ids=[event["id"] for event in chronological],
            cursor=new_cursor,
            request_ids=request_ids,
        )

    def _events_since(self, cursor: str | int | datetime | None, types: list[str],
                      before: int, request_ids: list[str]) -> list[dict[str, Any]]:
        """Events of `types` after `cursor` and created before `before`, oldest first."""
        base: dict[str, Any] = {"types": types, "limit": self.config.page_size,
                                "created": {"lt": before}}
        if isinstance(cursor, str):
            chronological: list[dict[str, Any]] = []
            newest = cursor
            while True:  # ending_before walks towards newer events, one page at a time
                page = self._get("/v1/events", {**base, "ending_before": newest}, request_ids)
                chronological.extend(reversed(page["data"]))
                if not page.get("has_more") or not page["data"]:
                    return chronological
                newest = page["data"][0]["id"]
        params = dict(base)
        since = _epoch(cursor)
        if since is not None:
            params["created"] = {"gt": since, "lt": before}
        return list(reversed(self._page_all("/v1/events", params, request_ids)))

    def retrieve(self, resource: str, object_id: str, request_ids: list[str]
                 ) -> dict[str, Any] | None:
        """One object as it is now, at the pinned API version (None when Stripe no longer has
        it: 404 resource_missing, or a deleted object's `deleted: true` stub)."""
        path = f"{_PATHS.get(resource, f'/v1/{resource}')}/{object_id}"
        params: dict[str, Any] = {}
        if resource in _EXPAND:
            params["expand"] = [e.removeprefix("data.") for e in _EXPAND[resource]]
        try:
            obj = self._get(path, params, request_ids)
        except stripe.InvalidRequestError as error:
            # only Stripe's own "no such object" is a deletion; any other 404 (a wrong account
            # or mode, an unknown URL) fails the run rather than deleting what was landed
            if getattr(error, "http_status", None) == 404 \
                    and getattr(error, "code", None) == "resource_missing":
                return None
            raise
        return None if obj.get("deleted") else obj
