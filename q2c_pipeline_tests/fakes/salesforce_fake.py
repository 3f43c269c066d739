"""A wire-level Salesforce fake for simple-salesforce 1.12.10 (source-apis.md §1, §2, §7.2).

Plain HTTP on 127.0.0.1 (ephemeral port), started in-process. The real client reaches it through
a `requests.Session` whose https adapter rewrites every URL to the fake (Option B of §2.1), so
SOAP login to login.salesforce.com, OAuth to a My Domain and data calls to the instance all run
unchanged.

Speaks: SOAP partner login; OAuth password, client-credentials and JWT-bearer grants; a bearer check
answering 401 with a JSON *list*; query/queryAll with nextRecordsUrl paging; restricted SOQL
(see soql.py); global and per-object describe generated from the seed records; Bulk 2.0 query jobs
with CSV pages, `Sforce-NumberOfRecords` and `Sforce-Locator`; sObject collections PATCH;
`Sforce-Limit-Info`. Fault switches: session expiry after k calls, 500/503/403 bursts, org without
CPQ, org without multi-currency.
"""

from __future__ import annotations

import base64
import copy
import csv
import io
import itertools
import json
import re
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import jwt
import requests
from requests.adapters import HTTPAdapter

from q2c_pipeline_tests.fakes.soql import (
    Query,
    SoqlError,
    coerce_value,
    evaluate,
    parse_datetime_literal,
    parse_soql,
)

ORG_ID = "00D000000000001EAA"
USER_ID = "005000000000001AAA"
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SF_ID = re.compile(r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")
_MONEY_NAMES = re.compile(r"(Amount|Price|Total|Revenue)", re.IGNORECASE)


class SalesforceFakeError(Exception):
    """An HTTP error answer: status, JSON (or text) body, extra headers."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


def _error(status: int, code: str, message: str) -> SalesforceFakeError:
    return SalesforceFakeError(status, [{"message": message, "errorCode": code}])


def format_rest_datetime(moment: datetime) -> str:
    """`2024-04-01T10:15:00.000+0000`, the REST JSON form."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # The fake's own encoder: seed Decimals go out as JSON numbers, as Salesforce sends them.
        return float(value)
    raise TypeError(f"not JSON serialisable: {value!r}")


@dataclass
class _Fault:
    after: int
    remaining: int
    kind: str  # "500", "503", "403", "cut", "truncated", "locator"


@dataclass
class _BulkJob:
    job_id: str
    operation: str
    object_name: str
    rows: list[dict[str, Any]]
    columns: list[str]
    polls_left: int
    api_version: str
    state: str = "UploadComplete"


class SalesforceFakeOrg:
    """The org's state and behaviour, independent of HTTP. Seeded with {object_name: [records]}
    in REST shape (`attributes` optional). All switches are plain attributes or methods."""

    def __init__(
        self,
        records: Mapping[str, list[dict[str, Any]]],
        *,
        username: str = "etl@acme.example",
        password: str = "correct-horse",
        security_token: str = "TOKEN123",
        consumer_key: str = "3MVG9fake.consumer.key",
        consumer_secret: str = "fake-consumer-secret",
        jwt_public_key: str | bytes | None = None,
        instance_host: str = "acme.my.salesforce.com",
        page_size: int = 2000,
        api_limit: int = 15000,
        cpq_installed: bool = True,
        multi_currency: bool = True,
        default_currency: str = "USD",
        time_zone: str = "America/Los_Angeles",
        bulk_in_progress_polls: int = 1,
        extra_fields: Mapping[str, Mapping[str, str]] | None = None,
        clock: datetime = datetime(2026, 1, 1, tzinfo=timezone.utc),
    ) -> None:
        self.lock = threading.RLock()
        self.records: dict[str, list[dict[str, Any]]] = {
            name: [self._strip(record) for record in rows] for name, rows in records.items()
        }
        for rows in self.records.values():
            for record in rows:
                record.setdefault("IsDeleted", False)
        self.username = username
        self.password = password
        self.security_token = security_token
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.jwt_public_key = jwt_public_key
        self.instance_host = instance_host
        self.page_size = page_size
        self.api_limit = api_limit
        self.cpq_installed = cpq_installed
        self.multi_currency = multi_currency
        self.default_currency = default_currency
        self.time_zone = time_zone
        self.bulk_in_progress_polls = bulk_in_progress_polls
        self.extra_fields = {name: dict(fields) for name, fields in (extra_fields or {}).items()}
        self.clock = clock
        self.api_used = 0
        self.data_calls = 0
        self.logins = 0
        self.request_log: list[tuple[str, str]] = []
        self._tokens: set[str] = set()
        self._token_counter = itertools.count(1)
        self._cursors: dict[str, list[dict[str, Any]]] = {}
        self._cursor_counter = itertools.count(1)
        self._jobs: dict[str, _BulkJob] = {}
        self._job_counter = itertools.count(1)
        self._expire_after: int | None = None
        self._faults: list[_Fault] = []
        self.transport_fault: str | None = None
        self.bulk_queries: list[str] = []  # the SOQL of every Bulk 2.0 job created
        self.user_info_fault: str | None = None  # a lasting SOAP fault code for getUserInfo
        self.user_info_calls = 0

    @staticmethod
    def _strip(record: Mapping[str, Any]) -> dict[str, Any]:
        return {key: copy.deepcopy(value) for key, value in record.items() if key != "attributes"}

    # ----------------------------------------------------------------- fault switches
    def expire_session_after(self, calls: int) -> None:
        """After `calls` more authenticated data calls, every issued session becomes invalid."""
        with self.lock:
            self._expire_after = self.data_calls + calls

    def inject_faults(self, kind: str, count: int, *, after: int = 0) -> None:
        """After `after` more data calls, the next `count` fail: kind "500" (UNKNOWN_EXCEPTION
        JSON), "503" (HTML body), "403" (REQUEST_LIMIT_EXCEEDED), "cut" (the body ends before
        its Content-Length and the connection closes), "truncated" (a 200 whose JSON stops
        half-way) or "locator" (the query's cursor has expired: INVALID_QUERY_LOCATOR on the
        next page)."""
        if kind not in ("500", "503", "403", "cut", "truncated", "locator"):
            raise ValueError(f"unknown fault kind {kind!r}")
        with self.lock:
            self._faults.append(_Fault(after=after, remaining=count, kind=kind))

    # ----------------------------------------------------------------- auth
    def _issue_token(self) -> str:
        token = f"{ORG_ID[:15]}!AQ{next(self._token_counter):06d}.fake"
        self._tokens.add(token)
        self.logins += 1
        return token

    def soap_user_info(self, body: str) -> tuple[int, str]:
        """SOAP ``getUserInfo`` (session in the SessionHeader): the org's currency and time zone
        as Salesforce states them (``orgDefaultCurrencyIsoCode`` only in a single-currency org,
        nil otherwise; developer.salesforce.com getUserInfoResult)."""
        session = re.search(r"<(?:\w+:)?sessionId>(.*?)</(?:\w+:)?sessionId>", body, re.S)
        with self.lock:
            self.user_info_calls += 1
            if session is None or session.group(1) not in self._tokens:
                return 500, _SOAP_INVALID_SESSION
            if self.user_info_fault:
                return 500, _SOAP_INVALID_SESSION.replace(
                    "INVALID_SESSION_ID: Invalid Session ID found in SessionHeader",
                    f"{self.user_info_fault}: API is not enabled for this Organization").replace(
                    "sf:INVALID_SESSION_ID", f"sf:{self.user_info_fault}")
        currency = ('<orgDefaultCurrencyIsoCode xsi:nil="true"/>' if self.multi_currency
                    else f"<orgDefaultCurrencyIsoCode>{self.default_currency}"
                         "</orgDefaultCurrencyIsoCode>")
        return 200, _SOAP_USER_INFO.format(
            org=ORG_ID, currency=currency, multi="true" if self.multi_currency else "false",
            time_zone=self.time_zone, user_id=USER_ID)

    def soap_login(self, body: str) -> tuple[int, str]:
        username = re.search(r"<(?:\w+:)?username>(.*?)</(?:\w+:)?username>", body, re.S)
        password = re.search(r"<(?:\w+:)?password>(.*?)</(?:\w+:)?password>", body, re.S)
        version = "59.0"
        with self.lock:
            if (
                username is None
                or password is None
                or username.group(1) != self.username
                or password.group(1) != self.password + self.security_token
            ):
                return 500, _SOAP_FAULT
            token = self._issue_token()
        server_url = f"https://{self.instance_host}/services/Soap/u/{version}/{ORG_ID[:15]}"
        return 200, _SOAP_SUCCESS.format(
            server_url=server_url, session_id=token, user_id=USER_ID, host=self.instance_host,
            version=version, org=ORG_ID[:15],
        )

    def oauth_token(self, form: Mapping[str, str], authorization: str | None) -> tuple[int, Any]:
        grant = form.get("grant_type", "")
        denied = {"error": "invalid_grant", "error_description": "authentication failure"}
        with self.lock:
            if grant == "password":
                ok = (
                    form.get("client_id") == self.consumer_key
                    and form.get("client_secret") == self.consumer_secret
                    and form.get("username") == self.username
                    and form.get("password") == self.password + self.security_token
                )
            elif grant == "client_credentials":
                expected = base64.b64encode(
                    f"{self.consumer_key}:{self.consumer_secret}".encode()
                ).decode()
                ok = authorization == f"Basic {expected}"
            elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
                ok = self._verify_assertion(form.get("assertion", ""))
            else:
                return 400, {"error": "unsupported_grant_type", "error_description": grant}
            if not ok:
                return 400, denied
            token = self._issue_token()
        return 200, {
            "access_token": token,
            "instance_url": f"https://{self.instance_host}",
            "id": f"https://login.salesforce.com/id/{ORG_ID}/{USER_ID}",
            "token_type": "Bearer",
            "issued_at": "1711929600000",
            "signature": "ZmFrZQ==",
        }

    def _verify_assertion(self, assertion: str) -> bool:
        if self.jwt_public_key is None:
            return False
        try:
            claims = jwt.decode(
                assertion,
                self.jwt_public_key,
                algorithms=["RS256"],
                options={"verify_aud": False, "require": ["iss", "sub", "aud", "exp"]},
            )
        except jwt.PyJWTError:
            return False
        audience = str(claims.get("aud", ""))
        return (
            claims.get("iss") == self.consumer_key
            and claims.get("sub") == self.username
            and re.fullmatch(r"https://[A-Za-z0-9.-]+\.salesforce\.com", audience) is not None
        )

    def authorize_data_call(self, authorization: str | None) -> dict[str, str]:
        """Bearer check, usage accounting and fault injection for one data call.

        Returns the `Sforce-Limit-Info` header, or raises SalesforceFakeError."""
        with self.lock:
            token = (authorization or "").removeprefix("Bearer ").strip()
            if token not in self._tokens:
                raise _error(401, "INVALID_SESSION_ID", "Session expired or invalid")
            if self._expire_after is not None and self.data_calls >= self._expire_after:
                self._expire_after = None
                self._tokens.clear()
                raise _error(401, "INVALID_SESSION_ID", "Session expired or invalid")
            self.data_calls += 1
            self.api_used += 1
            limit_header = {"Sforce-Limit-Info": f"api-usage={self.api_used}/{self.api_limit}"}
            for fault in self._faults:
                if fault.after > 0:
                    fault.after -= 1
                    break
                if fault.remaining > 0:
                    fault.remaining -= 1
                    self._faults = [f for f in self._faults if f.remaining > 0]
                    if fault.kind in ("cut", "truncated"):
                        self.transport_fault = fault.kind  # applied to this response's body
                        break
                    if fault.kind == "locator":
                        self._cursors.clear()  # every open query locator expires
                        break
                    if fault.kind == "500":
                        raise SalesforceFakeError(
                            500,
                            [{"message": "An unexpected error occurred.",
                              "errorCode": "UNKNOWN_EXCEPTION"}],
                            limit_header,
                        )
                    if fault.kind == "503":
                        raise SalesforceFakeError(
                            503, "<html><body>Service Unavailable</body></html>", limit_header
                        )
                    raise SalesforceFakeError(
                        403,
                        [{"message": "TotalRequests Limit exceeded.",
                          "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
                        limit_header,
                    )
            if self.api_used > self.api_limit:
                raise SalesforceFakeError(
                    403,
                    [{"message": "TotalRequests Limit exceeded.",
                      "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
                    limit_header,
                )
            return limit_header

    # ----------------------------------------------------------------- schema
    def _visible_objects(self) -> list[str]:
        names = set(self.records) | set(self.extra_fields)
        if not self.cpq_installed:
            names = {name for name in names if not name.startswith("SBQQ__")}
        return sorted(names)

    def _key_prefix(self, object_name: str) -> str:
        for record in self.records.get(object_name, []):
            if record.get("Id"):
                return str(record["Id"])[:3]
        # An object known only through extra_fields: a custom-object style prefix.
        return "a0" + str(self._visible_objects().index(object_name) % 10)

    def _object_for_id(self, value: str) -> str | None:
        for name in self._visible_objects():
            if value[:3] == self._key_prefix(name):
                return name
        return None

    def field_types(self, object_name: str) -> dict[str, dict[str, Any]]:
        """{field: {"type", "referenceTo", "relationshipName"}} as describe would report."""
        if object_name not in self._visible_objects():
            raise _error(404, "NOT_FOUND", "The requested resource does not exist")
        fields: dict[str, dict[str, Any]] = {
            "Id": {"type": "id", "referenceTo": [], "relationshipName": None},
            "IsDeleted": {"type": "boolean", "referenceTo": [], "relationshipName": None},
        }
        samples: dict[str, Any] = {}
        for record in self.records.get(object_name, []):
            for key, value in record.items():
                if key not in samples or samples[key] is None:
                    samples[key] = value
        for key, value in samples.items():
            if key in fields:
                continue
            fields[key] = self._infer_field(key, value)
        for key, field_type in self.extra_fields.get(object_name, {}).items():
            fields[key] = {"type": field_type, "referenceTo": [], "relationshipName": None}
        if not self.multi_currency:
            fields.pop("CurrencyIsoCode", None)
        if not self.cpq_installed:
            fields = {key: spec for key, spec in fields.items() if not key.startswith("SBQQ__")}
        return fields

    def _infer_field(self, name: str, value: Any) -> dict[str, Any]:
        spec: dict[str, Any] = {"type": "string", "referenceTo": [], "relationshipName": None}
        if isinstance(value, bool):
            spec["type"] = "boolean"
        elif isinstance(value, int):
            spec["type"] = "int"
        elif isinstance(value, (float, Decimal)):
            spec["type"] = "currency" if _MONEY_NAMES.search(name) else "double"
        elif isinstance(value, str) and _DATETIME.match(value):
            spec["type"] = "datetime"
        elif isinstance(value, str) and _DATE.match(value):
            spec["type"] = "date"
        elif (
            isinstance(value, str)
            and (name.endswith("Id") or name.endswith("__c"))
            and _SF_ID.match(value)
            and self._object_for_id(value)
        ):
            spec["type"] = "reference"
            spec["referenceTo"] = [self._object_for_id(value)]
            spec["relationshipName"] = name[:-2] if name.endswith("Id") else name[:-3] + "__r"
        return spec

    def global_describe(self, version: str) -> dict[str, Any]:
        return {
            "encoding": "UTF-8",
            "maxBatchSize": 200,
            "sobjects": [
                {
                    "name": name,
                    "label": name,
                    "keyPrefix": self._key_prefix(name),
                    "custom": name.endswith("__c"),
                    "queryable": True,
                    "urls": {
                        "sobject": f"/services/data/v{version}/sobjects/{name}",
                        "describe": f"/services/data/v{version}/sobjects/{name}/describe",
                    },
                }
                for name in self._visible_objects()
            ],
        }

    def describe(self, object_name: str, version: str) -> dict[str, Any]:
        fields = self.field_types(object_name)
        return {
            "name": object_name,
            "label": object_name,
            "keyPrefix": self._key_prefix(object_name),
            "queryable": True,
            "custom": object_name.endswith("__c"),
            "urls": {"sobject": f"/services/data/v{version}/sobjects/{object_name}"},
            "fields": [
                {
                    "name": name,
                    "type": spec["type"],
                    "length": 255 if spec["type"] == "string" else 0,
                    "precision": 18 if spec["type"] in ("currency", "double") else 0,
                    "scale": 2 if spec["type"] == "currency" else 0,
                    "nillable": name not in ("Id", "IsDeleted"),
                    "custom": name.endswith("__c"),
                    "calculated": False,
                    "referenceTo": spec["referenceTo"],
                    "relationshipName": spec["relationshipName"],
                    "picklistValues": [],
                    "filterable": True,
                }
                for name, spec in fields.items()
            ],
            "childRelationships": [],
        }

    # ----------------------------------------------------------------- query
    def _resolve(self, object_name: str, fields: dict[str, dict[str, Any]], name: str) -> str:
        """The field type of `name` (plain or `Relationship.Field`), or INVALID_FIELD."""
        if "." not in name:
            if name not in fields:
                raise _error(400, "INVALID_FIELD",
                             f"No such column '{name}' on entity '{object_name}'.")
            return fields[name]["type"]
        relationship, parent_field = name.split(".", 1)
        for spec in fields.values():
            if spec["relationshipName"] == relationship and spec["referenceTo"]:
                parent_fields = self.field_types(spec["referenceTo"][0])
                return self._resolve(spec["referenceTo"][0], parent_fields, parent_field)
        raise _error(400, "INVALID_FIELD",
                     f"Didn't understand relationship '{relationship}' on '{object_name}'.")

    def _parent(self, record: Mapping[str, Any], fields: Mapping[str, Any], relationship: str
                ) -> tuple[str, dict[str, Any]] | None:
        for name, spec in fields.items():
            if spec["relationshipName"] == relationship and spec["referenceTo"]:
                parent_id = record.get(name)
                target = spec["referenceTo"][0]
                for parent in self.records.get(target, []):
                    if parent.get("Id") == parent_id:
                        return target, parent
                return None
        return None

    def run_query(self, soql: str, *, include_deleted: bool) -> tuple[Query, list[dict[str, Any]]]:
        """Parse, check and evaluate `soql`; returns matching raw records (before projection)."""
        try:
            query = parse_soql(soql)
        except SoqlError as error:
            raise _error(400, "MALFORMED_QUERY", str(error)) from error
        if query.object_name not in self._visible_objects():
            raise _error(400, "INVALID_TYPE",
                         f"sObject type '{query.object_name}' is not supported.")
        fields = self.field_types(query.object_name)
        types = {name: self._resolve(query.object_name, fields, name)
                 for name in query.referenced_fields()}
        with self.lock:
            rows = [r for r in self.records.get(query.object_name, [])
                    if include_deleted or not r.get("IsDeleted")]

        def lookup_for(record: Mapping[str, Any]) -> Any:
            def lookup(name: str) -> Any:
                return coerce_value(self._value(record, fields, name), types[name])
            return lookup

        try:
            if query.where is not None:
                rows = [r for r in rows if evaluate(query.where, lookup_for(r))]
            for key in reversed(query.order_by):
                present = [r for r in rows if lookup_for(r)(key.field) is not None]
                missing = [r for r in rows if lookup_for(r)(key.field) is None]
                present.sort(key=lambda r, f=key.field: lookup_for(r)(f), reverse=key.descending)
                rows = present + missing if key.nulls_last else missing + present
        except SoqlError as error:
            raise _error(400, "MALFORMED_QUERY", str(error)) from error
        if query.limit is not None:
            rows = rows[: query.limit]
        return query, rows

    def _value(self, record: Mapping[str, Any], fields: Mapping[str, Any], name: str) -> Any:
        if "." not in name:
            return record.get(name)
        relationship, parent_field = name.split(".", 1)
        parent = self._parent(record, fields, relationship)
        return None if parent is None else parent[1].get(parent_field)

    def project(self, query: Query, record: Mapping[str, Any], version: str) -> dict[str, Any]:
        """A record in REST JSON shape: attributes first, then fields in SELECT order."""
        fields = self.field_types(query.object_name)
        out: dict[str, Any] = {"attributes": {
            "type": query.object_name,
            "url": f"/services/data/v{version}/sobjects/{query.object_name}/{record.get('Id')}",
        }}
        for name in query.fields:
            if "." not in name:
                out[name] = copy.deepcopy(record.get(name))
                continue
            relationship, parent_field = name.split(".", 1)
            parent = self._parent(record, fields, relationship)
            if parent is None:
                out[relationship] = None
                continue
            target, parent_record = parent
            nested = out.get(relationship) or {"attributes": {
                "type": target,
                "url": f"/services/data/v{version}/sobjects/{target}/{parent_record.get('Id')}",
            }}
            nested[parent_field] = copy.deepcopy(parent_record.get(parent_field))
            out[relationship] = nested
        return out

    def query_page(self, soql: str, *, include_deleted: bool, version: str,
                   batch_size: int | None) -> dict[str, Any]:
        query, rows = self.run_query(soql, include_deleted=include_deleted)
        if query.is_count:
            return {"totalSize": len(rows), "done": True, "records": []}
        projected = [self.project(query, row, version) for row in rows]
        with self.lock:
            locator = f"01gD{next(self._cursor_counter):014d}"
            self._cursors[locator] = projected
        endpoint = "queryAll" if include_deleted else "query"
        return self._page(locator, 0, endpoint, version, batch_size)

    def _page(self, locator: str, offset: int, endpoint: str, version: str,
              batch_size: int | None) -> dict[str, Any]:
        with self.lock:
            if locator not in self._cursors:
                raise _error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            rows = self._cursors[locator]
        size = min(self.page_size, batch_size or self.page_size)
        page = rows[offset: offset + size]
        done = offset + size >= len(rows)
        body: dict[str, Any] = {"totalSize": len(rows), "done": done, "records": page}
        if not done:
            body["nextRecordsUrl"] = (
                f"/services/data/v{version}/{endpoint}/{locator}-{offset + size}"
            )
        else:
            with self.lock:
                self._cursors.pop(locator, None)
        return body

    def query_more(self, endpoint: str, cursor: str, version: str,
                   batch_size: int | None) -> dict[str, Any]:
        locator, _, offset = cursor.rpartition("-")
        if not offset.isdigit():
            raise _error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(locator, int(offset), endpoint, version, batch_size)

    # ----------------------------------------------------------------- bulk 2.0
    def create_bulk_job(self, body: Mapping[str, Any], version: str) -> dict[str, Any]:
        operation = body.get("operation")
        if operation not in ("query", "queryAll"):
            raise _error(400, "INVALIDJOB", f"unsupported operation {operation!r}")
        with self.lock:
            self.bulk_queries.append(str(body.get("query", "")))
        query, rows = self.run_query(str(body.get("query", "")),
                                     include_deleted=operation == "queryAll")
        if query.is_count:
            raise _error(400, "INVALIDJOB", "Aggregate queries are not supported by Bulk API 2.0")
        fields = self.field_types(query.object_name)
        csv_rows = [
            {name: self._csv_value(self._value(row, fields, name)) for name in query.fields}
            for row in rows
        ]
        with self.lock:
            job_id = f"750R{next(self._job_counter):011d}AAA"
            self._jobs[job_id] = _BulkJob(
                job_id, str(operation), query.object_name, csv_rows, list(query.fields),
                self.bulk_in_progress_polls, version,
            )
        stamp = format_rest_datetime(self.clock)
        return {
            "id": job_id, "operation": operation, "object": query.object_name,
            "createdById": USER_ID, "createdDate": stamp, "systemModstamp": stamp,
            "state": "UploadComplete", "concurrencyMode": "Parallel", "contentType": "CSV",
            "apiVersion": float(version), "lineEnding": "LF", "columnDelimiter": "COMMA",
        }

    @staticmethod
    def _csv_value(value: Any) -> str:
        if value is None:
            return ""
        if value is True:
            return "true"
        if value is False:
            return "false"
        if isinstance(value, float):
            return repr(value)
        if isinstance(value, str) and _DATETIME.match(value):
            moment = parse_datetime_literal(value)
            return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
        return str(value)

    def _job(self, job_id: str, version: str) -> _BulkJob:
        job = self._jobs.get(job_id)
        if job is None:
            raise _error(404, "NOT_FOUND", "The requested resource does not exist")
        if job.api_version != version:
            raise _error(409, "INVALIDJOB", "Job was created with a different API version")
        return job

    def bulk_job_info(self, job_id: str, version: str) -> dict[str, Any]:
        with self.lock:
            job = self._job(job_id, version)
            if job.polls_left > 0:
                job.polls_left -= 1
                job.state = "InProgress"
            else:
                job.state = "JobComplete"
        info = {"id": job.job_id, "operation": job.operation, "object": job.object_name,
                "state": job.state, "jobType": "V2Query", "apiVersion": float(version),
                "retries": 0, "totalProcessingTime": 1}
        if job.state == "JobComplete":
            info["numberRecordsProcessed"] = len(job.rows)
        return info

    def bulk_results(self, job_id: str, version: str, max_records: int,
                     locator: str | None) -> tuple[str, dict[str, str]]:
        with self.lock:
            job = self._job(job_id, version)
            if job.state != "JobComplete":
                raise _error(400, "INVALIDJOB", "Job is not complete")
        offset = 0
        if locator:
            try:
                offset = int(base64.b64decode(locator.encode()).decode())
            except ValueError as error:
                raise _error(400, "INVALID_LOCATOR", "invalid locator") from error
        page = job.rows[offset: offset + max_records]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=job.columns, quoting=csv.QUOTE_ALL,
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(page)
        following = offset + len(page)
        next_locator = (
            base64.b64encode(str(following).encode()).decode() if following < len(job.rows)
            else "null"
        )
        return buffer.getvalue(), {
            "Sforce-NumberOfRecords": str(len(page)),
            "Sforce-Locator": next_locator,
        }

    # ----------------------------------------------------------------- writes
    def update_collection(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        """PATCH composite/sobjects: update up to 200 records by id."""
        records = body.get("records") or []
        if len(records) > 200:
            raise _error(400, "EXCEEDED_ID_LIMIT", "record limit reached; cannot submit > 200")
        results = []
        with self.lock:
            for item in records:
                object_name = (item.get("attributes") or {}).get("type")
                record_id = item.get("id") or item.get("Id")
                fields = self.field_types(str(object_name))
                unknown = [k for k in item if k not in ("attributes", "id", "Id")
                           and k not in fields]
                target = next((r for r in self.records.get(str(object_name), [])
                               if r.get("Id") == record_id), None)
                if unknown or target is None:
                    code = "INVALID_FIELD" if unknown else "ENTITY_IS_DELETED"
                    results.append({"id": record_id, "success": False, "errors": [
                        {"statusCode": code, "message": f"cannot update {record_id}",
                         "fields": unknown}]})
                    continue
                for key, value in item.items():
                    if key not in ("attributes", "id", "Id"):
                        target[key] = value
                target["SystemModstamp"] = format_rest_datetime(self.clock)
                results.append({"id": record_id, "success": True, "errors": []})
        return results


_SOAP_SUCCESS = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" \
xmlns="urn:partner.soap.sforce.com">
 <soapenv:Body><loginResponse><result>
  <metadataServerUrl>https://{host}/services/Soap/m/{version}/{org}</metadataServerUrl>
  <passwordExpired>false</passwordExpired><sandbox>false</sandbox>
  <serverUrl>{server_url}</serverUrl>
  <sessionId>{session_id}</sessionId>
  <userId>{user_id}</userId>
 </result></loginResponse></soapenv:Body></soapenv:Envelope>"""

_SOAP_USER_INFO = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" \
xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body><getUserInfoResponse><result>
  <accessibilityMode>false</accessibilityMode><currencySymbol>$</currencySymbol>
  {currency}
  <organizationId>{org}</organizationId>
  <organizationMultiCurrency>{multi}</organizationMultiCurrency>
  <organizationName>Q2C Software</organizationName>
  <userDefaultCurrencyIsoCode xsi:nil="true"/>
  <userId>{user_id}</userId>
  <userTimeZone>{time_zone}</userTimeZone>
 </result></getUserInfoResponse></soapenv:Body></soapenv:Envelope>"""

_SOAP_INVALID_SESSION = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" \
xmlns:sf="urn:fault.partner.soap.sforce.com">
 <soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_SESSION_ID</faultcode>
  <faultstring>INVALID_SESSION_ID: Invalid Session ID found in SessionHeader</faultstring>
 </soapenv:Fault></soapenv:Body></soapenv:Envelope>"""

_SOAP_FAULT = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" \
xmlns:sf="urn:fault.partner.soap.sforce.com">
 <soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_LOGIN</faultcode>
  <faultstring>INVALID_LOGIN: Invalid username, password, security token; or user locked out.\
</faultstring>
  <detail><sf:LoginFault><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>
   <sf:exceptionMessage>Invalid username, password, security token; or user locked out.\
</sf:exceptionMessage>
  </sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"""

_DATA_PATH = re.compile(r"^/services/data/v(?P<version>\d+\.\d+)/(?P<rest>.*)$")


class _Handler(BaseHTTPRequestHandler):
    server: _FakeHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return

    def _send(self, status: int, body: Any, headers: Mapping[str, str] | None = None,
              content_type: str = "application/json;charset=UTF-8") -> None:
        if isinstance(body, (dict, list)):
            payload = json.dumps(body, default=_json_default).encode()
        else:
            payload = str(body).encode()
            if content_type.startswith("application/json"):
                content_type = "text/html"
        org = self.server.org
        with org.lock:
            fault, org.transport_fault = org.transport_fault, None
        length = len(payload)
        if fault == "truncated":  # a complete response whose JSON stops half-way
            payload = payload[: max(1, len(payload) // 2)]
            length = len(payload)
        elif fault == "cut":  # the connection drops before the announced length arrives
            payload = payload[: max(1, len(payload) // 2)]
            self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    def _dispatch(self, method: str) -> None:
        org = self.server.org
        parts = urlsplit(self.path)
        with org.lock:
            org.request_log.append((method, parts.path))
        try:
            if method == "POST" and parts.path.startswith("/services/Soap/u/"):
                body = self._body().decode()
                status, text = (org.soap_user_info(body) if "getUserInfo" in body
                                else org.soap_login(body))
                self._send(status, text, content_type="text/xml;charset=UTF-8")
                return
            if method == "POST" and parts.path == "/services/oauth2/token":
                form = {k: v[0] for k, v in parse_qs(self._body().decode()).items()}
                status, body = org.oauth_token(form, self.headers.get("Authorization"))
                self._send(status, body)
                return
            match = _DATA_PATH.match(parts.path)
            if match is None:
                raise _error(404, "NOT_FOUND", "The requested resource does not exist")
            limit_header = org.authorize_data_call(self.headers.get("Authorization"))
            status, body, headers, content_type = self._data(
                method, match.group("version"), match.group("rest").rstrip("/"),
                {k: v[0] for k, v in parse_qs(parts.query).items()},
            )
            self._send(status, body, {**limit_header, **headers}, content_type)
        except SalesforceFakeError as error:
            self._send(error.status, error.body, error.headers)

    def _batch_size(self) -> int | None:
        options = self.headers.get("Sforce-Query-Options") or ""
        found = re.search(r"batchSize=(\d+)", options)
        return int(found.group(1)) if found else None

    def _data(self, method: str, version: str, rest: str, params: Mapping[str, str]
              ) -> tuple[int, Any, dict[str, str], str]:
        org = self.server.org
        json_type = "application/json;charset=UTF-8"
        segments = rest.split("/")
        if method == "GET" and rest == "sobjects":
            return 200, org.global_describe(version), {}, json_type
        if method == "GET" and len(segments) == 3 and segments[0] == "sobjects" \
                and segments[2] == "describe":
            return 200, org.describe(segments[1], version), {}, json_type
        if method == "GET" and segments[0] in ("query", "queryAll"):
            include_deleted = segments[0] == "queryAll"
            if len(segments) == 1:
                if "q" not in params:
                    raise _error(400, "MALFORMED_QUERY", "missing q")
                body = org.query_page(params["q"], include_deleted=include_deleted,
                                      version=version, batch_size=self._batch_size())
            else:
                body = org.query_more(segments[0], segments[1], version, self._batch_size())
            return 200, body, {}, json_type
        if segments[:2] == ["jobs", "query"]:
            if method == "POST" and len(segments) == 2:
                return 200, org.create_bulk_job(json.loads(self._body()), version), {}, json_type
            if method == "GET" and len(segments) == 3:
                return 200, org.bulk_job_info(segments[2], version), {}, json_type
            if method == "GET" and len(segments) == 4 and segments[3] == "results":
                text, headers = org.bulk_results(
                    segments[2], version, int(params.get("maxRecords", "50000")),
                    params.get("locator"),
                )
                return 200, text, headers, "text/csv"
        if method == "PATCH" and rest == "composite/sobjects":
            return 200, org.update_collection(json.loads(self._body())), {}, json_type
        raise _error(404, "NOT_FOUND", "The requested resource does not exist")


class _FakeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, org: SalesforceFakeOrg) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.org = org


class SalesforceFakeServer:
    """Runs a SalesforceFakeOrg on 127.0.0.1:<ephemeral> in a daemon thread."""

    def __init__(self, org: SalesforceFakeOrg, tls: ssl.SSLContext | None = None) -> None:
        self.org = org
        self._server = _FakeHTTPServer(org)
        if tls is not None:  # serve HTTPS, as Salesforce does (simple-salesforce forces https)
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> SalesforceFakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def session(self) -> requests.Session:
        """A requests.Session that sends every https:// request to this fake over plain HTTP."""
        session = requests.Session()
        session.trust_env = False
        session.mount("https://", LoopbackAdapter(self.port))
        return session


class LoopbackAdapter(HTTPAdapter):
    """Rewrites every request URL to http://127.0.0.1:<port>, keeping path and query."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url or "")
        request.url = urlunsplit(("http", f"127.0.0.1:{self.port}", parts.path, parts.query, ""))
        kwargs["proxies"] = {}
        return super().send(request, **kwargs)


def rest_datetime(moment: datetime | date | str) -> str:
    """Convenience for seeds: a datetime (or ISO text) in the REST `+0000` form."""
    if isinstance(moment, str):
        moment = parse_datetime_literal(moment)
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day, tzinfo=timezone.utc)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return format_rest_datetime(moment)
