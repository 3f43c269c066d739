"""A read-only, wire-level Stripe fake for stripe-python 16.1.0 (source-apis.md §6, §7.3).

Plain HTTP on 127.0.0.1 (ephemeral port); the client reaches it with
`StripeClient(key, base_addresses={"api": fake.base_url})`. Seeded with {resource: [objects]}
in the pinned API version's shapes (the fake does not reshape them).

Lists: `{object: "list", url, has_more, data}`, newest-first by `created` with the id as a stable
tie-break, `limit` 1-100 (default 10), `starting_after` / `ending_before`, `created` and
`created[gt|gte|lt|lte]`, resource filters (`customer`, `subscription`, `invoice`, `status`,
`type` / `types[]` on events). Invoices and credit notes embed their first `embedded_lines` lines
with `has_more` and `total_count`; `/v1/invoices/{id}/lines` pages the rest.
Errors: 401 bad key, 404 `resource_missing`, and injected 429 `rate_limit_error` or 500
`api_error` (with or without `Stripe-Should-Retry`).
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

RESOURCES = (
    "customers", "products", "prices", "subscriptions", "invoices", "credit_notes",
    "invoice_payments", "refunds", "events", "billing_meters", "billing_meter_event_summaries",
)
# Price fields Stripe sends only when expanded (expand[]=data.tiers on a list, tiers on one).
_INCLUDABLE = {"prices": ("tiers", "currency_options")}
_LINED = {"invoices": "invoice", "credit_notes": "credit_note"}
_FILTERS = ("customer", "subscription", "invoice", "status", "type", "product", "active")


class StripeFakeError(Exception):
    def __init__(self, status: int, error: dict[str, Any], headers: Mapping[str, str] | None = None
                 ) -> None:
        super().__init__(status, error)
        self.status = status
        self.error = error
        self.headers = dict(headers or {})


def _missing(resource: str, object_id: str) -> StripeFakeError:
    kind = resource.rstrip("s").replace("_", " ")
    return StripeFakeError(404, {
        "type": "invalid_request_error", "code": "resource_missing", "param": "id",
        "message": f"No such {kind}: '{object_id}'",
    })


@dataclass
class _Fault:
    after: int
    remaining: int
    status: int | str
    should_retry: bool | None


class StripeFakeAccount:
    """The account's objects and switches, independent of HTTP."""

    def __init__(self, objects: Mapping[str, list[dict[str, Any]]], *,
                 api_key: str = "sk_test_q2c_fake", embedded_lines: int = 10) -> None:
        unknown = set(objects) - set(RESOURCES)
        if unknown:
            raise ValueError(f"unknown resources {sorted(unknown)}")
        self.lock = threading.RLock()
        self.objects = {name: copy.deepcopy(list(objects.get(name, []))) for name in RESOURCES}
        self.api_key = api_key
        self.embedded_lines = embedded_lines
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._faults: list[_Fault] = []
        self._request_ids = itertools.count(1)
        self.truncate_next = False

    def inject_faults(self, status: int | str, count: int, *, after: int = 0,
                      should_retry: bool | None = None) -> None:
        """After `after` more requests, fail the next `count` with `status` (429 or 5xx),
        sending `Stripe-Should-Retry` when `should_retry` is not None; status "truncated"
        sends a 200 whose JSON stops half-way."""
        with self.lock:
            self._faults.append(_Fault(after, count, status, should_retry))

    def next_request_id(self) -> str:
        return f"req_fake{next(self._request_ids):08d}"

    def check(self, authorization: str | None) -> None:
        with self.lock:
            key = (authorization or "").removeprefix("Bearer ").strip()
            if key != self.api_key:
                raise StripeFakeError(401, {
                    "type": "invalid_request_error",
                    "message": f"Invalid API Key provided: {key[:8]}***",
                })
            for fault in self._faults:
                if fault.after > 0:
                    fault.after -= 1
                    break
                fault.remaining -= 1
                self._faults = [f for f in self._faults if f.remaining > 0]
                if fault.status == "truncated":
                    self.truncate_next = True
                    return
                headers = {}
                if fault.should_retry is not None:
                    headers["Stripe-Should-Retry"] = "true" if fault.should_retry else "false"
                if fault.status == 429:
                    raise StripeFakeError(429, {
                        "type": "rate_limit_error", "code": "rate_limit",
                        "message": "Too many requests hit the API too quickly.",
                    }, headers)
                raise StripeFakeError(fault.status, {
                    "type": "api_error", "message": "An unknown error occurred.",
                }, headers)

    # ------------------------------------------------------------------ views
    def _present(self, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(obj)
        if resource in _LINED:
            lines = list((obj.get("lines") or {}).get("data", []))
            out["lines"] = {
                "object": "list",
                "url": f"/v1/{resource}/{obj['id']}/lines",
                "has_more": len(lines) > self.embedded_lines,
                "total_count": len(lines),
                "data": lines[: self.embedded_lines],
            }
        return out

    def retrieve(self, resource: str, object_id: str,
                 params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        with self.lock:
            for obj in self.objects[resource]:
                if obj.get("id") == object_id:
                    expanded = set((params or {}).get("expand") or [])
                    return _includable(resource, self._present(resource, obj), expanded)
        raise _missing(resource, object_id)

    def list(self, resource: str, params: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            everything = sorted(self.objects[resource], key=_order_key, reverse=True)
        items = [o for o in everything if self._matches(resource, o, params)]
        expanded = {e.removeprefix("data.") for e in params.get("expand") or []}
        shown = [_includable(resource, self._present(resource, o), expanded) for o in items]
        path = "/v1/billing/meters" if resource == "billing_meters" else f"/v1/{resource}"
        return self._page(path, shown, params, resource, everything)

    def meter_event_summaries(self, meter_id: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """``GET /v1/billing/meters/{id}/event_summaries``: ``customer``, ``start_time`` and
        ``end_time`` required (day-aligned for ``value_grouping_window=day``); the summaries
        name no customer (Stripe's shape)."""
        with self.lock:
            if not any(m.get("id") == meter_id for m in self.objects["billing_meters"]):
                raise _missing("billing_meters", meter_id)
            stored = list(self.objects["billing_meter_event_summaries"])
        for name in ("customer", "start_time", "end_time"):
            if name not in params:
                raise StripeFakeError(400, {"type": "invalid_request_error", "param": name,
                                            "message": f"Missing required param: {name}."})
        start, end = int(params["start_time"]), int(params["end_time"])
        if params.get("value_grouping_window") == "day" and (start % 86_400 or end % 86_400):
            raise StripeFakeError(400, {"type": "invalid_request_error",
                                        "message": "start_time and end_time must be aligned "
                                                   "to day boundaries (UTC)."})
        items = [{k: v for k, v in o.items() if k != "customer"} for o in sorted(
            stored, key=lambda o: (-int(o["start_time"]), o["id"]))
            if o.get("meter") == meter_id and o.get("customer") == params["customer"]
            and start <= int(o["start_time"]) and int(o["end_time"]) <= end]
        return self._page(f"/v1/billing/meters/{meter_id}/event_summaries", items, params,
                          "billing_meter_event_summaries", items)

    def lines(self, resource: str, object_id: str, params: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            owner = next((o for o in self.objects[resource] if o.get("id") == object_id), None)
        if owner is None:
            raise _missing(resource, object_id)
        data = copy.deepcopy(list((owner.get("lines") or {}).get("data", [])))
        return self._page(f"/v1/{resource}/{object_id}/lines", data, params, resource, data)

    @staticmethod
    def _matches(resource: str, obj: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
        created = int(obj.get("created") or 0)
        bounds = params.get("created")
        if isinstance(bounds, str):
            if created != int(bounds):
                return False
        elif isinstance(bounds, Mapping):
            for op, value in bounds.items():
                limit = int(value)
                if (op == "gt" and not created > limit) or (op == "gte" and not created >= limit) \
                        or (op == "lt" and not created < limit) \
                        or (op == "lte" and not created <= limit):
                    return False
        for name in _FILTERS:
            if name not in params:
                continue
            wanted = params[name]
            if resource == "subscriptions" and name == "status" and wanted == "all":
                continue
            actual = obj.get(name)
            if name == "subscription" and resource == "invoices":
                parent = (obj.get("parent") or {}).get("subscription_details") or {}
                actual = parent.get("subscription")
            if isinstance(actual, bool):
                actual = "true" if actual else "false"
            if actual != wanted:
                return False
        if resource == "subscriptions" and params.get("status") is None \
                and obj.get("status") == "canceled":
            return False  # Stripe lists canceled subscriptions only with status=all/canceled
        types = params.get("types")
        if types is not None and obj.get("type") not in types:
            return False
        return True

    @staticmethod
    def _page(url: str, items: list[dict[str, Any]], params: Mapping[str, Any], resource: str,
              universe: list[dict[str, Any]]) -> dict[str, Any]:
        """One page of `items` (already in list order). Cursors are located in `universe` (the
        unfiltered list), so a cursor object the filters exclude still marks a position."""
        limit = int(params.get("limit", 10))
        if not 1 <= limit <= 100:
            raise StripeFakeError(400, {"type": "invalid_request_error", "param": "limit",
                                        "message": "Invalid integer: limit must be 1..100"})
        after, before = params.get("starting_after"), params.get("ending_before")
        if after and before:
            raise StripeFakeError(400, {"type": "invalid_request_error",
                                        "message": "starting_after and ending_before are "
                                                   "mutually exclusive"})
        cursor = after or before
        if cursor:
            index_of = {obj.get("id"): index for index, obj in enumerate(universe)}
            if cursor not in index_of:
                raise _missing(resource, str(cursor))
            mark = index_of[cursor]
            ranked = [(index_of[obj.get("id")], obj) for obj in items]
            if after:
                rest = [obj for rank, obj in ranked if rank > mark]
                page, has_more = rest[:limit], len(rest) > limit
            else:
                newer = [obj for rank, obj in ranked if rank < mark]
                page, has_more = newer[-limit:], len(newer) > limit
        else:
            page, has_more = items[:limit], len(items) > limit
        return {"object": "list", "url": url, "has_more": has_more, "data": page}


def _includable(resource: str, obj: dict[str, Any], expanded: set[str]) -> dict[str, Any]:
    """Drop the fields Stripe sends only when expanded: a price's ``tiers`` and
    ``currency_options``, and each option's ``tiers`` (``currency_options.<ccy>.tiers``)."""
    for name in _INCLUDABLE.get(resource, ()):
        if name not in expanded:
            obj.pop(name, None)
    options = obj.get("currency_options")
    if isinstance(options, dict):
        for code, option in options.items():
            if isinstance(option, dict) and f"currency_options.{code}.tiers" not in expanded:
                option.pop("tiers", None)
    return obj


def _order_key(obj: Mapping[str, Any]) -> tuple[int, str]:
    return int(obj.get("created") or 0), str(obj.get("id"))


def parse_stripe_query(query: str) -> dict[str, Any]:
    """`created[gte]=1&types[0]=a&types[1]=b&expand[]=x` -> {"created": {"gte": "1"},
    "types": ["a", "b"], "expand": ["x"]}."""
    out: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        match = re.fullmatch(r"(\w+)\[(\w*)\]", key)
        if match is None:
            out[key] = value
            continue
        name, sub = match.groups()
        if sub == "" or sub.isdigit():
            out.setdefault(name, []).append(value)
        else:
            out.setdefault(name, {})[sub] = value
    return out


class _Handler(BaseHTTPRequestHandler):
    server: _FakeHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return

    def _send(self, status: int, body: Any, headers: Mapping[str, str]) -> None:
        payload = json.dumps(body).encode()
        account = self.server.account
        with account.lock:
            truncate, account.truncate_next = account.truncate_next, False
        if truncate:
            payload = payload[: len(payload) // 2]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        account = self.server.account
        parts = urlsplit(self.path)
        params = parse_stripe_query(parts.query)
        request_id = account.next_request_id()
        with account.lock:
            account.requests.append((parts.path, params))
        try:
            account.check(self.headers.get("Authorization"))
            segments = parts.path.strip("/").split("/")
            if segments[:2] == ["v1", "billing"] and len(segments) >= 3 \
                    and segments[2] == "meters":
                if len(segments) == 3:
                    body = account.list("billing_meters", params)
                elif len(segments) == 4:
                    body = account.retrieve("billing_meters", segments[3])
                elif len(segments) == 5 and segments[4] == "event_summaries":
                    body = account.meter_event_summaries(segments[3], params)
                else:
                    raise StripeFakeError(404, {"type": "invalid_request_error",
                                                "message": "Unrecognized request URL"})
                self._send(200, body, {"Request-Id": request_id})
                return
            if len(segments) < 2 or segments[0] != "v1" or segments[1] not in RESOURCES:
                raise StripeFakeError(404, {"type": "invalid_request_error",
                                            "message": f"Unrecognized request URL (GET: "
                                                       f"{parts.path})"})
            resource = segments[1]
            if len(segments) == 2:
                body = account.list(resource, params)
            elif len(segments) == 3:
                body = account.retrieve(resource, segments[2], params)
            elif len(segments) == 4 and segments[3] == "lines" and resource in _LINED:
                body = account.lines(resource, segments[2], params)
            else:
                raise StripeFakeError(404, {"type": "invalid_request_error",
                                            "message": "Unrecognized request URL"})
            self._send(200, body, {"Request-Id": request_id})
        except StripeFakeError as error:
            self._send(error.status, {"error": error.error},
                       {"Request-Id": request_id, **error.headers})


class _FakeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, account: StripeFakeAccount) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.account = account


class StripeFakeServer:
    """Runs a StripeFakeAccount on 127.0.0.1:<ephemeral> in a daemon thread."""

    def __init__(self, account: StripeFakeAccount) -> None:
        self.account = account
        self._server = _FakeHTTPServer(account)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> StripeFakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
