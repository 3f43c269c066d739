"""Wire-format helpers shared by the raw -> canonical mappers.

Salesforce and Stripe speak JSON with binary-float money, their own timestamp forms and ids;
these helpers turn those values into the canonical in-memory representation
(docs/pipeline-contract.md): integer minor units, naive-UTC timestamps, qualified string ids.
A value that cannot be read becomes ``None`` so validation can reject the row with its payload.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import pandas as pd

from q2c_pipeline.core.money import to_minor

_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"

# Column kinds understood by build_frame: the in-memory dtype of each canonical column kind.
STR = "str"
INT = "int"  # money in minor units and other integers (nullable Int64 until validated)
FLOAT = "float"
BOOL = "bool"
TIMESTAMP = "timestamp"
PAYLOAD_COLUMN = "_payload"


def checksum_salesforce_id(record_id: str) -> str:
    """15-character case-sensitive Salesforce id -> its 18-character form (18 stays as is).

    Per 5-character chunk, bit i is set when position i is an upper-case A-Z letter; the bitmask
    indexes ``A..Z0..5``.
    """
    if len(record_id) != 15:
        return record_id
    suffix = ""
    for chunk_start in range(0, 15, 5):
        chunk = record_id[chunk_start : chunk_start + 5]
        bits = sum(1 << i for i, char in enumerate(chunk) if "A" <= char <= "Z")
        suffix += _CHECKSUM_ALPHABET[bits]
    return record_id + suffix


def normalize_salesforce_id(value: Any) -> str | None:
    """Any Salesforce id (15 or 18 characters) -> 18 characters; blank -> None."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value).strip()
    return checksum_salesforce_id(text) if text else None


def qualify(system_prefix: str, value: Any) -> str | None:
    """Source id -> canonical id (``sf:800...``, ``stripe:in_...``); blank -> None."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value).strip()
    return f"{system_prefix}:{text}" if text else None


def to_payload(record: Any) -> str:
    """The source record as compact JSON with sorted keys (what quarantine stores)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date | pd.Timestamp):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def payloads_from_frame(frame: pd.DataFrame) -> list[str]:
    """One compact JSON object per row, keys sorted (vectorized through pandas' JSON writer)."""
    if frame.empty:
        return []
    ordered = frame[sorted(frame.columns)]
    text = ordered.to_json(orient="records", lines=True, date_format="iso", date_unit="s")
    return text.splitlines()


def decimal_from_wire(value: Any) -> Decimal | None:
    """JSON number (float, int, Decimal) or decimal string -> Decimal, exactly as written.

    Floats are read through ``str`` (the shortest repr round-trips the JSON text), never through
    binary arithmetic. Booleans and unparseable text give None.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        if pd.isna(value):
            return None
        value = repr(value)
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return result if result.is_finite() else None


def minor_from_wire(value: Any, currency: str | None) -> int | None:
    """Major-unit wire amount -> minor units of ``currency`` (half-up); None if unreadable."""
    amount = decimal_from_wire(value)
    if amount is None:
        return None
    return to_minor(amount, currency or "")


def int_from_wire(value: Any) -> int | None:
    """Stripe integer amount (already minor units) -> int; anything non-integral -> None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    amount = decimal_from_wire(value)
    if amount is None or amount != amount.to_integral_value():
        return None
    return int(amount)


def timestamp_from_wire(value: Any) -> pd.Timestamp | None:
    """Salesforce datetime/date text, ISO text or a ``datetime`` -> naive UTC Timestamp."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    elif isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    else:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return pd.Timestamp(parsed)


def unreadable_dates(record: Mapping[str, Any], fields: Sequence[str]) -> str | None:
    """Which of ``fields`` hold a value that is not an ISO 8601 date or datetime (what
    Salesforce sends: ``YYYY-MM-DD``, ``YYYY-MM-DDThh:mm:ss.sss+0000``), in words; None when
    all are readable or empty. A mapper never replaces such a value with another date."""
    bad = [f"field {name!r} value {record.get(name)!r} is not an ISO 8601 date or datetime"
           for name in fields
           if isinstance(record.get(name), str) and record.get(name).strip()
           and timestamp_from_wire(record.get(name)) is None]
    return "; ".join(bad) or None


def timestamp_from_unix(value: Any) -> pd.Timestamp | None:
    """Stripe Unix seconds -> naive UTC Timestamp (None when not an instant q2c reads: the
    mapper's ``FieldProblems.instant`` says why)."""
    seconds = int_from_wire(value)
    if seconds is None or not 0 <= seconds <= MAX_UNIX_SECONDS:
        return None
    return pd.Timestamp(datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None))


def upper_or_none(value: Any) -> str | None:
    """Currency code as sent (``usd``) -> canonical upper case; blank -> None."""
    if value is None or not isinstance(value, str) or not value.strip():
        return None
    return value.strip().upper()


def text_or_none(value: Any) -> str | None:
    """Stripped text; blank or missing -> None."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value).strip()
    return text or None


def float_from_wire(value: Any) -> float | None:
    """A quantity (not money) -> float; unreadable -> None."""
    number = decimal_from_wire(value)
    return None if number is None else float(number)


def column_spec(table: str) -> dict[str, str]:
    """The required columns of a canonical table and their kinds, read from its pandera model
    (``q2c_pipeline.schemas.CANONICAL_TABLES``), so mappers never restate the schema."""
    from q2c_pipeline.schemas import CANONICAL_TABLES

    model, _ = CANONICAL_TABLES[table]
    spec = {}
    for name, column in model.to_schema().columns.items():
        if not column.required:
            continue
        dtype = str(column.dtype)
        if dtype.startswith("datetime64"):
            spec[name] = TIMESTAMP
        elif dtype in ("int64", "Int64"):
            spec[name] = INT
        elif dtype == "float64":
            spec[name] = FLOAT
        elif dtype in ("bool", "boolean"):
            spec[name] = BOOL
        else:
            spec[name] = STR
    return spec


def build_frame(rows: list[dict[str, Any]], spec: dict[str, str]) -> pd.DataFrame:
    """Rows -> a frame with exactly the columns of ``spec`` (plus ``_payload``) and their dtypes.

    Money and integers are nullable ``Int64`` here so an unmappable value survives as null until
    validation coerces the column (and rejects the row). Rows carrying ``FIELD_PROBLEMS`` keep
    them in that private column, before the payload.
    """
    columns = [*spec, PAYLOAD_COLUMN]
    frame = pd.DataFrame.from_records(rows, columns=columns)
    for column, kind in spec.items():
        values = frame[column]
        if kind == STR:
            frame[column] = values.astype(object).where(values.notna(), None)
        elif kind == INT:
            frame[column] = pd.array(
                [None if v is None or pd.isna(v) else int(v) for v in values], dtype="Int64"
            )
        elif kind == FLOAT:
            frame[column] = pd.to_numeric(values, errors="coerce").astype("float64")
        elif kind == BOOL:
            frame[column] = pd.array(
                [None if v is None or pd.isna(v) else bool(v) for v in values], dtype="boolean"
            )
        elif kind == TIMESTAMP:
            frame[column] = pd.to_datetime(values, errors="coerce").astype("datetime64[ns]")
        else:
            raise ValueError(f"unknown column kind {kind!r} for {column}")
    frame[PAYLOAD_COLUMN] = frame[PAYLOAD_COLUMN].astype(object)
    if any(row.get(FIELD_PROBLEMS) for row in rows):
        frame.insert(len(frame.columns) - 1, FIELD_PROBLEMS,
                     pd.Series([row.get(FIELD_PROBLEMS) for row in rows], dtype=object))
    return frame


# A private column (not canonical): the problems a mapper found in a record's fields, as
# (rule, source field, words) tuples; validation quarantines the record with the first of them
# (``schemas.validation``), so a value is never silently replaced, truncated or guessed.
FIELD_PROBLEMS = "_field_problems"
# a record no mapper rule could read at all (sources.assemble.guarded)
UNMAPPABLE = "unmappable_record"

# The largest amount q2c posts, in minor units (10^14: USD 1 trillion, IDR 1 trillion, about
# USD 60 million, so no real invoice in a weak currency comes near it): any sum of 90,000 such
# amounts still fits a 64-bit integer, and no SaaS invoice line comes near it.
MAX_MINOR = 10**14
# Unix seconds q2c reads (up to 2255-03-14; nanosecond timestamps end in 2262).
MAX_UNIX_SECONDS = 9_000_000_000


_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


class FieldProblems:
    """Reads a record's fields strictly, keeping in words what it could not read.

    ``stripe_amount`` accepts only a JSON integer of minor units within ``MAX_MINOR`` (Stripe
    sends nothing else; ``444.0`` or ``"44400"`` is an export that converted it), ``instant``
    only integer Unix seconds within ``MAX_UNIX_SECONDS``, ``number`` any JSON number or
    decimal text (Bulk API CSV sends numbers as text) but not words, ``required`` a value that
    is present. Each returns the value read (None when unreadable) and records why not."""

    def __init__(self, record: Mapping[str, Any], where: str = "") -> None:
        self.record = record
        self.where = where  # e.g. "lines[0]." for a nested record
        self.found: list[tuple[str, str, str]] = []

    def add(self, rule: str, field: str, words: str) -> None:
        self.found.append((rule, self.where + field, words))

    def _value(self, field: str) -> Any:
        value = self.record.get(field)
        return None if isinstance(value, float) and value != value else value

    def _integer(self, field: str, low: int, high: int, what: str, beyond: str) -> int | None:
        value = self._value(field)
        if value is None:
            return None
        named = self.where + field
        if isinstance(value, bool) or not isinstance(value, int):
            self.add("invalid_type", field, f"field {named!r} value {value!r} is not {what}")
            return None
        if not low <= value <= high:
            self.add("out_of_range", field, f"field {named!r} value {value} is {beyond}")
            return None
        return value

    def stripe_amount(self, field: str) -> int | None:
        return self._integer(
            field, -MAX_MINOR, MAX_MINOR,
            "an integer of minor units (Stripe sends amounts as JSON integers in the "
            "currency's smallest unit, e.g. 44400 for 444.00)",
            f"beyond ±{MAX_MINOR:,} minor units, the largest amount q2c posts")

    def instant(self, field: str) -> pd.Timestamp | None:
        seconds = self._integer(field, 0, MAX_UNIX_SECONDS, "Unix seconds (an integer)",
                                "not an instant between 1970 and 2255 in Unix seconds")
        return None if seconds is None else timestamp_from_unix(seconds)

    def number(self, field: str) -> Decimal | None:
        value = self._value(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        read = decimal_from_wire(value)
        if isinstance(value, str) and not _DECIMAL_TEXT.fullmatch(value.strip()):
            read = None  # "1_200" or other digits Python reads but no export writes
        if read is None:
            self.add("invalid_type", field,
                     f"field {self.where + field!r} value {value!r} is not a number")
        return read

    def required(self, field: str) -> None:
        value = self._value(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            self.add("missing_value", field, f"field {self.where + field!r} is empty")

    def extend(self, other: FieldProblems) -> None:
        self.found.extend(other.found)

    def result(self) -> list[tuple[str, str, str]] | None:
        return self.found or None
