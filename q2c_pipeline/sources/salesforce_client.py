"""Live Salesforce extraction through simple-salesforce 1.12.10 (REST query/queryAll, Bulk API 2.0).

Records come back exactly as the REST API returns them (dicts with `attributes`, parent
relationships nested), whichever path fetched them, so the raw -> canonical mappers read live
extracts and snapshot files alike.

Numbers: the client is built with `parse_float=decimal.Decimal`, so currency/double values arrive as
exact Decimals (integral JSON numbers stay int). Bulk CSV text is converted to the same types using
the object's describe. Snapshot files hold JSON numbers; a mapper that parses through `str(value)`
gets the same decimal text from a Decimal, an int or a float read from a snapshot, and the landing
layer hashes all three forms identically (see landing.py).

Incremental windows are `SystemModstamp >= mark ORDER BY SystemModstamp, Id` over queryAll, so rows
sharing the boundary timestamp are fetched again rather than lost, deletions arrive as
`IsDeleted = true` rows, and duplicates are removed by Id. The mark is truncated to whole seconds
(a superset of the window; re-landing identical versions adds nothing).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape as xml_escape

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from q2c_pipeline.sources.retry import RetryPolicy, call_with_backoff

logger = logging.getLogger(__name__)

DEFAULT_API_VERSION = "59.0"
POSTING_STATUS_FIELD = "Q2C_Posting_Status__c"
POSTING_MESSAGE_FIELD = "Q2C_Posting_Message__c"
POSTING_MESSAGE_MAX = 255
COLLECTION_LIMIT = 200  # sObject collections take at most 200 records per call
_ALWAYS_SELECTED = ("Id", "IsDeleted", "SystemModstamp")
_NUMBER_TYPES = {"double", "currency", "percent"}
_INTEGER_TYPES = {"int", "long"}
_SALESFORCE_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
_MANAGED_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*__\w+__[a-z]+$")  # e.g. SBQQ__Quantity__c


class AuthMode(str, Enum):
    """How the pipeline logs in to Salesforce."""

    PASSWORD = "password"  # username + password + security token (SOAP partner login)
    CLIENT_CREDENTIALS = "client_credentials"  # connected app key/secret on a My Domain
    JWT = "jwt"  # connected app key + RSA private key, acting as `username`


@dataclass(frozen=True)
class SalesforceConfig:
    """Connection and extraction settings. Secret fields are excluded from repr."""

    auth_mode: AuthMode
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    consumer_key: str | None = None
    consumer_secret: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)
    domain: str = "login"
    api_version: str = DEFAULT_API_VERSION
    bulk_threshold: int = 10_000  # windows with more rows than this go through Bulk API 2.0
    bulk_page_size: int = 50_000  # maxRecords per Bulk 2.0 results page
    query_batch_size: int = 2_000  # Sforce-Query-Options batchSize for REST pages
    bulk_poll_wait: float = 2.0  # seconds simple-salesforce sleeps before polling a bulk job
    limit_floor_pct: float = 10.0  # stop when less than this share of the daily API quota is left
    # each window starts this long before the stored mark: a change committed after the previous
    # window was read, with a SystemModstamp before its end, is read again (landing keeps one
    # version per content, so what was already landed is not duplicated)
    overlap_seconds: int = 300
    max_retries: int = 5
    backoff_base: float = 1.0

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_retries=self.max_retries, backoff_base=self.backoff_base)


class SalesforceApiBudgetExhausted(RuntimeError):
    """The org's remaining daily API quota fell under `limit_floor_pct`: extraction pauses (the
    next run resumes from the last landed high-water mark)."""


class IncompleteExtraction(RuntimeError):
    """Fewer rows arrived than Salesforce reported for the window."""


class SalesforceObjectUnavailable(RuntimeError):
    """A standard object (or a required field) the pipeline needs is not in the org's describe."""


class ContractStatusWriteError(RuntimeError):
    """Salesforce rejected some posting-status updates; `failures` lists them."""

    def __init__(self, failures: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(failures)} contract status update(s) failed: {failures[:3]}")
        self.failures = failures


@dataclass(frozen=True)
class ExtractResult:
    """One object's extraction window.

    `records` holds every row of the window in REST shape, deleted ones included (they carry
    `IsDeleted: true`); `deleted_ids` lists those. `reported_total` is what Salesforce said the
    window holds (COUNT() or totalSize); `request_ids` are the query locators or Bulk job ids used.
    `available` is False when the object is absent from the org (e.g. CPQ not installed).
    """

    object_name: str
    records: list[dict[str, Any]]
    deleted_ids: list[str]
    new_high_water_mark: datetime | None
    reported_total: int
    request_ids: list[str]
    fields: list[str] = field(default_factory=list)
    path: str = "rest"
    available: bool = True


@dataclass(frozen=True)
class StatusWriteResult:
    """Posting statuses written back to Contract: how many changed and how many were current."""

    updated: int
    unchanged: int


def build_salesforce(config: SalesforceConfig, session: requests.Session) -> Salesforce:
    """Log in with the configured auth mode on the injected session and return the client."""
    common: dict[str, Any] = {
        "session": session,
        "version": config.api_version,
        "domain": config.domain,
        "parse_float": Decimal,
    }
    if config.auth_mode is AuthMode.PASSWORD:
        return Salesforce(
            username=config.username,
            password=config.password,
            security_token=config.security_token,
            **common,
        )
    if config.auth_mode is AuthMode.CLIENT_CREDENTIALS:
        if config.domain in ("login", "test"):
            raise ValueError("client credentials need a My Domain (e.g. 'acme.my'), not login/test")
        return Salesforce(
            consumer_key=config.consumer_key,
            consumer_secret=config.consumer_secret,
            **common,
        )
    if config.auth_mode is AuthMode.JWT:
        return Salesforce(
            username=config.username,
            consumer_key=config.consumer_key,
            privatekey=config.private_key,
            **common,
        )
    raise ValueError(f"unknown auth mode {config.auth_mode!r}")


_XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"


def parse_user_info(text: str) -> dict[str, Any]:
    """A SOAP ``getUserInfoResponse`` (or a login response's ``userInfo``) -> a flat record:
    element names as keys, ``true``/``false`` as booleans, ``xsi:nil`` as None."""
    root = ElementTree.fromstring(text)
    result = None
    for element in root.iter():
        name = element.tag.rsplit("}", 1)[-1]
        if name in ("userInfo", "result") and any(
                child.tag.endswith("organizationId") for child in element):
            result = element
            break
    if result is None:
        raise ValueError("not a getUserInfo response: no organizationId in it")
    out: dict[str, Any] = {}
    for child in result:
        name = child.tag.rsplit("}", 1)[-1]
        value: Any = None if child.get(_XSI_NIL) == "true" else (child.text or "").strip()
        if value in ("true", "false"):
            value = value == "true"
        out[name] = value
    return out


def format_soql_datetime(moment: datetime) -> str:
    """A SOQL datetime literal in UTC, truncated to whole seconds: 2024-04-01T10:15:00Z."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_salesforce_datetime(text: str) -> datetime:
    """`2024-04-01T10:15:00.000+0000` (REST) or `...Z` (Bulk) -> naive UTC datetime."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def is_managed_package_name(name: str) -> bool:
    """True for names in an installed package's namespace (SBQQ__Subscription__c, SBQQ__X__r)."""
    return _MANAGED_NAME.match(name) is not None


def _is_retryable(error: BaseException) -> bool:
    """Transient faults: 5xx, REQUEST_LIMIT_EXCEEDED, an expired session, a connection that
    dropped or timed out, a body cut mid-transfer, a response whose JSON stops half-way."""
    if isinstance(error, (requests.exceptions.ChunkedEncodingError,
                          requests.exceptions.ContentDecodingError, json.JSONDecodeError)):
        return True
    if isinstance(error, SalesforceGeneralError):
        return int(error.status) >= 500
    if isinstance(error, SalesforceRefusedRequest):
        return "REQUEST_LIMIT_EXCEEDED" in str(error.content)
    if isinstance(error, SalesforceExpiredSession):
        return True
    return isinstance(error, (requests.ConnectionError, requests.Timeout))


class SalesforceExtractor:
    """Extracts object windows with describe-driven field selection, retries and limit checks."""

    def __init__(
        self,
        config: SalesforceConfig,
        session: requests.Session,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.session = session
        self._sleep = sleep
        self.sf = self._call("login", lambda: build_salesforce(config, session), relogin=False)
        self._object_names: set[str] | None = None
        self._describes: dict[str, dict[str, dict[str, Any]]] = {}

    # ------------------------------------------------------------------ plumbing
    def relogin(self) -> None:
        """Open a fresh session (Bulk 2.0 never refreshes an expired one by itself)."""
        logger.info("salesforce: logging in again")
        self.sf = build_salesforce(self.config, self.session)

    def _call(self, what: str, fn: Callable[[], Any], *, relogin: bool = True) -> Any:
        def on_retry(error: BaseException) -> None:
            if relogin and isinstance(error, SalesforceExpiredSession):
                self.relogin()

        return call_with_backoff(
            fn,
            policy=self.config.retry_policy,
            is_retryable=_is_retryable,
            what=f"salesforce {what}",
            on_retry=on_retry,
            sleep=self._sleep,
        )

    def check_api_budget(self, api_usage: Mapping[str, Any] | None = None) -> None:
        """Log `Sforce-Limit-Info` usage (the client's, or `api_usage` parsed by an SFType);
        raise SalesforceApiBudgetExhausted when the remaining share is under the floor."""
        usage = (self.sf.api_usage if api_usage is None else api_usage).get("api-usage")
        if usage is None:
            return
        used, total = int(usage.used), int(usage.total)
        logger.info("salesforce api usage %d/%d", used, total)
        if total > 0 and (total - used) * 100 < self.config.limit_floor_pct * total:
            raise SalesforceApiBudgetExhausted(
                f"salesforce api usage {used}/{total} leaves less than "
                f"{self.config.limit_floor_pct}% of the daily quota; pausing extraction"
            )

    def _rest(self, what: str, fn: Callable[[], Any]) -> Any:
        result = self._call(what, fn)
        self.check_api_budget()
        return result

    # ------------------------------------------------------------------ the org
    def user_info(self) -> dict[str, Any]:
        """The org as SOAP ``getUserInfo`` states it, on the current session (any auth mode):
        ``organizationId``, ``organizationName``, ``organizationMultiCurrency``,
        ``orgDefaultCurrencyIsoCode`` (the currency of every record in a single-currency org,
        which has no ``CurrencyIsoCode`` field; nil in a multi-currency one) and
        ``userTimeZone``. Landed as ``raw.salesforce_user_info`` (record id: the org id)."""
        url = f"https://{self.sf.sf_instance}/services/Soap/u/{self.config.api_version}"
        envelope = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:urn="urn:partner.soap.sforce.com"><soapenv:Header><urn:SessionHeader>'
            f"<urn:sessionId>{xml_escape(self.sf.session_id)}</urn:sessionId>"
            "</urn:SessionHeader></soapenv:Header><soapenv:Body><urn:getUserInfo/>"
            "</soapenv:Body></soapenv:Envelope>")

        def call() -> dict[str, Any]:
            response = self.session.post(url, data=envelope.encode(), headers={
                "Content-Type": "text/xml; charset=UTF-8", "SOAPAction": "getUserInfo"},
                timeout=60)
            if "INVALID_SESSION_ID" in response.text:
                raise SalesforceExpiredSession(url, response.status_code, "getUserInfo",
                                               response.text[:200])
            fault = re.search(r"<faultstring>(.*?)</faultstring>", response.text, re.S)
            if fault is not None:  # SOAP faults come as HTTP 500 but say what they are
                raise SalesforceObjectUnavailable(
                    f"getUserInfo refused: {fault.group(1).strip()[:200]}")
            if response.status_code >= 500:
                raise SalesforceGeneralError(url, response.status_code, "getUserInfo",
                                             response.text[:200])
            return parse_user_info(response.text)

        return self._call("getUserInfo", call)

    # ------------------------------------------------------------------ describe
    def object_names(self) -> set[str]:
        """Names in the org's global describe (cached)."""
        if self._object_names is None:
            described = self._rest("describe", lambda: self.sf.describe())
            self._object_names = {item["name"] for item in described["sobjects"]}
        return self._object_names

    def describe_fields(self, object_name: str) -> dict[str, dict[str, Any]]:
        """{field name: describe field entry} for `object_name` (cached)."""
        if object_name not in self._describes:
            used: list[Any] = []

            def describe() -> Any:
                used.append(getattr(self.sf, object_name))  # the current client, after relogins
                return used[-1].describe()

            described = self._call(f"describe {object_name}", describe)
            self.check_api_budget(used[-1].api_usage)  # an SFType keeps its own usage
            self._describes[object_name] = {
                item["name"]: dict(item) for item in described["fields"]
            }
        return self._describes[object_name]

    def _relationship(self, object_name: str, relationship: str) -> dict[str, Any] | None:
        for spec in self.describe_fields(object_name).values():
            if spec.get("relationshipName") == relationship and spec.get("referenceTo"):
                return spec
        return None

    def select_fields(self, object_name: str, fields: Sequence[str] | None) -> list[str]:
        """The SELECT list: the requested fields the org has (all describe fields when None),
        plus Id, IsDeleted, SystemModstamp and the reference field behind each parent field.

        Optional fields that may be absent (`CurrencyIsoCode` outside multi-currency orgs,
        managed-package fields such as `SBQQ__*` without CPQ) are dropped; any other missing
        field raises SalesforceObjectUnavailable.
        """
        described = self.describe_fields(object_name)
        wanted = list(described) if fields is None else list(fields)
        selected: list[str] = []
        for name in list(_ALWAYS_SELECTED) + wanted:
            if name in selected:
                continue
            if "." in name:
                relationship, parent_field = name.split(".", 1)
                spec = self._relationship(object_name, relationship)
                parent_ok = spec is not None and parent_field in self.describe_fields(
                    spec["referenceTo"][0]
                )
                if not parent_ok:
                    self._drop_or_fail(object_name, name, relationship, parent_field)
                    continue
                if spec["name"] not in selected:
                    selected.append(spec["name"])
                selected.append(name)
            elif name in described:
                selected.append(name)
            else:
                self._drop_or_fail(object_name, name, name)
        return selected

    @staticmethod
    def _drop_or_fail(object_name: str, name: str, *parts: str) -> None:
        if any(part == "CurrencyIsoCode" or is_managed_package_name(part) for part in parts):
            logger.info("salesforce: %s.%s not in this org; not selected", object_name, name)
            return
        raise SalesforceObjectUnavailable(f"{object_name}.{name} is not in the org's describe")

    # ------------------------------------------------------------------ extraction
    def extract(
        self,
        object_name: str,
        fields: Sequence[str] | None = None,
        high_water_mark: datetime | None = None,
    ) -> ExtractResult:
        """Extract the window `SystemModstamp >= high_water_mark` (everything when None)."""
        if object_name not in self.object_names():
            if is_managed_package_name(object_name):
                logger.info("salesforce: %s not installed in this org; skipped", object_name)
                return ExtractResult(object_name, [], [], high_water_mark, 0, [], [], "none", False)
            raise SalesforceObjectUnavailable(f"{object_name} is not in the org's describe")
        selected = self.select_fields(object_name, fields)
        since = (high_water_mark - timedelta(seconds=self.config.overlap_seconds)
                 if high_water_mark is not None else None)
        where = (
            f" WHERE SystemModstamp >= {format_soql_datetime(since)}"
            if since is not None
            else ""
        )
        count = self._rest(
            f"count {object_name}",
            lambda: self.sf.query(f"SELECT COUNT() FROM {object_name}{where}",
                                  include_deleted=True),
        )
        reported_total = int(count["totalSize"])
        soql = f"SELECT {', '.join(selected)} FROM {object_name}{where}"
        if reported_total > self.config.bulk_threshold:
            # no ORDER BY on Bulk 2.0: it disables PK chunking and risks time-outs on exactly
            # the large objects (Salesforce, Bulk API 2.0 query considerations); rows are
            # sorted after they arrive (_deduplicate)
            rows, request_ids = self._call(
                f"bulk query {object_name}", lambda: self._bulk_rows(object_name, soql)
            )
            path = "bulk"
        else:
            rows, request_ids, reported_total = self._rest_rows(
                f"{soql} ORDER BY SystemModstamp, Id")
            path = "rest"
        if len(rows) < reported_total:
            raise IncompleteExtraction(
                f"{object_name}: Salesforce reported {reported_total} rows, received {len(rows)}"
            )
        records = self._deduplicate(rows)
        deleted_ids = [str(r["Id"]) for r in records if r.get("IsDeleted") is True]
        stamps = [parse_salesforce_datetime(r["SystemModstamp"]) for r in records
                  if r.get("SystemModstamp")]
        new_mark = max([*stamps, *([high_water_mark] if high_water_mark else [])],
                       default=None)  # the overlap never moves the mark back
        logger.info(
            "salesforce: %s %d rows (%d deleted) via %s, reported %d",
            object_name, len(records), len(deleted_ids), path, reported_total,
        )
        return ExtractResult(
            object_name, records, deleted_ids, new_mark, reported_total, request_ids,
            selected, path,
        )

    def id_stamps(self, object_name: str) -> dict[str, tuple[str | None, bool]]:
        """Every record of the object Salesforce holds (deleted ones in the recycle bin too):
        Id -> (SystemModstamp, IsDeleted), through the same window code as an extraction (REST
        or Bulk 2.0 by size), so the periodic comparison costs a few pages of ids."""
        result = self.extract(object_name, [])
        return {str(r["Id"]): (r.get("SystemModstamp"), r.get("IsDeleted") is True)
                for r in result.records}

    def extract_ids(self, object_name: str, fields: Sequence[str] | None, ids: Sequence[str]
                    ) -> list[dict[str, Any]]:
        """The records with these Ids (queryAll, 200 Ids a query), deleted ones included."""
        selected = self.select_fields(object_name, fields)
        rows: list[dict[str, Any]] = []
        for start in range(0, len(ids), 200):
            chunk = list(ids[start:start + 200])
            soql = (f"SELECT {', '.join(selected)} FROM {object_name} "
                    f"WHERE Id IN ({_soql_id_list(chunk)})")
            found, _, _ = self._rest_rows(soql)
            rows.extend(found)
        return self._deduplicate(rows)

    @staticmethod
    def _deduplicate(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """One row per Id (the latest SystemModstamp; the later row on ties), ordered by
        (SystemModstamp, Id)."""
        latest: dict[str, dict[str, Any]] = {}
        for row in rows:
            key = str(row["Id"])
            current = latest.get(key)
            if current is None or str(row.get("SystemModstamp") or "") >= str(
                current.get("SystemModstamp") or ""
            ):
                latest[key] = row
        return sorted(latest.values(),
                      key=lambda r: (parse_salesforce_datetime(r["SystemModstamp"])
                                     if r.get("SystemModstamp") else datetime.min, str(r["Id"])))

    def _rest_rows(self, soql: str) -> tuple[list[dict[str, Any]], list[str], int]:
        """Every page of a REST queryAll. A query locator that expires before its last page
        (INVALID_QUERY_LOCATOR: Salesforce keeps a cursor about 15 minutes, and only so many
        per user) cannot be resumed: the query starts again, a bounded number of times."""
        for attempt in range(self.config.max_retries + 1):
            try:
                return self._rest_pages(soql)
            except SalesforceMalformedRequest as error:
                if "INVALID_QUERY_LOCATOR" not in str(error.content) \
                        or attempt == self.config.max_retries:
                    raise
                logger.warning("salesforce: query locator expired; querying again (%d/%d)",
                               attempt + 1, self.config.max_retries)
        raise AssertionError("unreachable")

    def _rest_pages(self, soql: str) -> tuple[list[dict[str, Any]], list[str], int]:
        headers = {"Sforce-Query-Options": f"batchSize={self.config.query_batch_size}"}
        page = self._rest("query", lambda: self.sf.query(soql, include_deleted=True,
                                                         headers=headers))
        reported_total = int(page["totalSize"])
        rows = [dict(record) for record in page["records"]]
        request_ids: list[str] = []
        while not page.get("done", True):
            next_url = page["nextRecordsUrl"]
            locator = next_url.rsplit("/", 1)[-1].rsplit("-", 1)[0]
            if locator not in request_ids:
                request_ids.append(locator)
            page = self._rest(
                "query more",
                lambda url=next_url: self.sf.query_more(url, identifier_is_url=True,
                                                        headers=headers),
            )
            rows.extend(dict(record) for record in page["records"])
        return rows, request_ids, reported_total

    def _bulk_rows(self, object_name: str, soql: str) -> tuple[list[dict[str, Any]], list[str]]:
        """Run a Bulk 2.0 queryAll job and convert its CSV pages to REST-shaped records.

        simple-salesforce does not expose the id of the job its query generator creates, so a
        response hook on the session records the ids of the jobs created meanwhile."""
        self.check_api_budget()
        job_ids: list[str] = []

        def record_job_id(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            request = response.request
            if (request.method == "POST" and (request.path_url or "").rstrip("/").endswith(
                    "/jobs/query") and response.ok):
                job_ids.append(str(response.json().get("id")))

        self.session.hooks["response"].append(record_job_id)
        try:
            bulk_type = getattr(self.sf.bulk2, object_name)
            rows: list[dict[str, Any]] = []
            for page in bulk_type.query_all(soql, max_records=self.config.bulk_page_size,
                                            wait=self.config.bulk_poll_wait):
                rows.extend(
                    self.convert_bulk_rows(object_name, csv.DictReader(io.StringIO(page)))
                )
        finally:
            self.session.hooks["response"].remove(record_job_id)
        return rows, job_ids

    def convert_bulk_rows(self, object_name: str, rows: Iterable[Mapping[str, str]]
                          ) -> list[dict[str, Any]]:
        """Bulk 2.0 CSV rows (all text; empty = null) -> REST JSON shaped records: typed values,
        `+0000` datetimes, `attributes`, parent fields nested under their relationship."""
        described = self.describe_fields(object_name)
        version = self.config.api_version
        out: list[dict[str, Any]] = []
        converters: dict[str, Callable[[str], Any]] = {}
        parents: dict[str, tuple[str, str]] = {}  # relationship -> (parent object, reference field)
        for row in rows:
            if not converters:
                for column in row:
                    if "." in column:
                        relationship, parent_field = column.split(".", 1)
                        spec = self._relationship(object_name, relationship)
                        if spec is None:
                            raise SalesforceObjectUnavailable(f"{object_name}.{column}")
                        parent_object = spec["referenceTo"][0]
                        parents[relationship] = (parent_object, spec["name"])
                        field_type = self.describe_fields(parent_object)[parent_field]["type"]
                    else:
                        field_type = described[column]["type"]
                    converters[column] = _bulk_converter(str(field_type))
            record: dict[str, Any] = {"attributes": {
                "type": object_name,
                "url": f"/services/data/v{version}/sobjects/{object_name}/{row['Id']}",
            }}
            for column, text in row.items():
                value = converters[column](text)
                if "." not in column:
                    record[column] = value
                    continue
                relationship, parent_field = column.split(".", 1)
                nested = record.get(relationship)
                if relationship not in record:
                    parent_object, reference_field = parents[relationship]
                    parent_id = row.get(reference_field) or ""
                    nested = {"attributes": {
                        "type": parent_object,
                        "url": f"/services/data/v{version}/sobjects/{parent_object}/{parent_id}",
                    }} if parent_id else None
                    record[relationship] = nested
                if nested is not None:
                    nested[parent_field] = value
            out.append(record)
        return out


def _bulk_converter(field_type: str) -> Callable[[str], Any]:
    if field_type == "boolean":
        return lambda text: None if text == "" else text == "true"
    if field_type in _INTEGER_TYPES:
        return lambda text: None if text == "" else int(text)
    if field_type in _NUMBER_TYPES:
        return lambda text: None if text == "" else Decimal(text)
    if field_type == "datetime":
        return lambda text: None if text == "" else (
            text[:-1] + "+0000" if text.endswith("Z") else text
        )
    return lambda text: None if text == "" else text


def _soql_id_list(ids: Sequence[str]) -> str:
    for record_id in ids:
        if not _SALESFORCE_ID.match(record_id):
            raise ValueError(f"not a Salesforce id: {record_id!r}")
    return ", ".join(f"'{record_id}'" for record_id in ids)


def write_contract_statuses(
    sf: Salesforce,
    statuses: Sequence[Mapping[str, Any]],
    *,
    retry_policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> StatusWriteResult:
    """Write posting statuses back to Contract (`Q2C_Posting_Status__c`,
    `Q2C_Posting_Message__c`) through the sObject collections API, 200 per call, touching only
    contracts whose values differ from what Salesforce holds (so a re-run writes nothing).

    Each status is `{"contract_id": "800..." or "sf:800...", "status": str, "message": str|None}`;
    messages are cut to 255 characters. Rejected rows raise ContractStatusWriteError after every
    chunk was attempted.
    """
    policy = retry_policy or RetryPolicy()
    desired: dict[str, tuple[str, str | None]] = {}
    for item in statuses:
        contract_id = str(item["contract_id"]).removeprefix("sf:")
        message = item.get("message")
        desired[contract_id] = (
            str(item["status"]),
            None if message in (None, "") else str(message)[:POSTING_MESSAGE_MAX],
        )
    ids = sorted(desired)

    def call(what: str, fn: Callable[[], Any]) -> Any:
        return call_with_backoff(fn, policy=policy, is_retryable=_is_retryable,
                                 what=f"salesforce {what}", sleep=sleep)

    current: dict[str, tuple[Any, Any]] = {}
    for start in range(0, len(ids), COLLECTION_LIMIT):
        chunk = ids[start: start + COLLECTION_LIMIT]
        soql = (
            f"SELECT Id, {POSTING_STATUS_FIELD}, {POSTING_MESSAGE_FIELD} FROM Contract "
            f"WHERE Id IN ({_soql_id_list(chunk)})"
        )
        for record in call("read contract statuses", lambda q=soql: list(sf.query_all_iter(q))):
            current[str(record["Id"])] = (
                record.get(POSTING_STATUS_FIELD), record.get(POSTING_MESSAGE_FIELD)
            )
    changed = [record_id for record_id in ids if current.get(record_id) != desired[record_id]]
    failures: list[dict[str, Any]] = []
    for start in range(0, len(changed), COLLECTION_LIMIT):
        chunk = changed[start: start + COLLECTION_LIMIT]
        payload = {
            "allOrNone": False,
            "records": [
                {
                    "attributes": {"type": "Contract"},
                    "id": record_id,
                    POSTING_STATUS_FIELD: desired[record_id][0],
                    POSTING_MESSAGE_FIELD: desired[record_id][1],
                }
                for record_id in chunk
            ],
        }
        results = call(
            "write contract statuses",
            lambda body=payload: sf.restful("composite/sobjects", method="PATCH", json=body),
        )
        failures.extend(result for result in results or [] if not result.get("success"))
    if failures:
        raise ContractStatusWriteError(failures)
    return StatusWriteResult(updated=len(changed), unchanged=len(ids) - len(changed))
