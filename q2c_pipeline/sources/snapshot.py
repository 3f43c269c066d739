"""Fixture-backed twin of the live source clients: reads a snapshot folder written by
``q2c_pipeline.sources.sample_company.generate_company`` (or recorded from real systems).

Layout: ``salesforce/<Object>.json`` and ``stripe/<resource>.json`` (JSON lists of records in
their wire shapes), ``usage/usage_events_YYYY-MM-DD.parquet``, ``erp/<table>.csv`` and
``manifest.json``. A missing file means none of that kind: empty results, never an error.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

USAGE_FILE_PATTERN = re.compile(r"^usage_events_(\d{4}-\d{2}-\d{2})\.parquet$")
# The columns without which a file cannot be read as what it is (others are optional): a file
# lacking one is refused as a file, rather than every row of it failing the same way.
ERP_REQUIRED_COLUMNS = {
    "legal_entities": ("legal_entity", "functional_currency"),
    "chart_of_accounts": ("legal_entity", "account", "gl_account"),
    "accounting_periods": ("legal_entity", "period", "status"),
    "products": ("product_code", "revenue_pattern"),
    "tax_codes": ("tax_code", "rate_bps"),
    "fx_rates": ("rate_date", "from_currency", "to_currency", "rate"),
    "customers": ("erp_customer_id", "sf_account_id", "legal_entity", "currency"),
}
USAGE_REQUIRED_COLUMNS = ("event_id", "stripe_customer_id", "product_code", "quantity",
                          "timestamp")


def _require_columns(path: Path, present, required) -> None:
    missing = [c for c in required if c not in set(present)]
    if missing:
        raise SnapshotFileError(path, "missing_column", "the header",
                                f"lacks the column(s) {', '.join(missing)}")


class SnapshotFileError(ValueError):
    """A source file that cannot be read as what it must be: quarantined as a file (``rule``,
    the path, where in it), never the run's failure."""

    rule = "unreadable_file"

    def __init__(self, path: Path, rule: str, where: str, why: str) -> None:
        super().__init__(f"{path}: {why} ({where}) [{rule}]")
        self.path, self.rule, self.where, self.why = Path(path), rule, where, why


class IncompleteSnapshot(SnapshotFileError):
    """A saved source file that says it is not the whole list (Stripe's ``has_more: true``):
    landing it would silently lose the rest."""

    rule = "incomplete_page"

    def __init__(self, message: str, path: Path | None = None) -> None:
        ValueError.__init__(self, message)
        self.path, self.where, self.why = Path(path or ""), "the list envelope", message


class SnapshotSource:
    """Read-only access to one snapshot folder, by source system."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def salesforce_records(self, object_name: str) -> list[dict[str, Any]]:
        """Records of one Salesforce object (``Account``, ``SBQQ__Subscription__c``, ...)."""
        return self._json_list(self.root / "salesforce" / f"{object_name}.json")

    def billing_objects(self, resource: str) -> list[dict[str, Any]]:
        """Objects of one Stripe resource (``invoices``, ``invoice_payments``, ...)."""
        return self._json_list(self.root / "stripe" / f"{resource}.json")

    def usage_days(self) -> list[str]:
        """Days (``YYYY-MM-DD``) with a usage file, ascending."""
        folder = self.root / "usage"
        if not folder.is_dir():
            return []
        days = [
            match.group(1)
            for path in folder.iterdir()
            if (match := USAGE_FILE_PATTERN.match(path.name))
        ]
        return sorted(days)

    def usage_events(self, day: str) -> pd.DataFrame:
        """Raw usage events of one day (empty frame when the day has no file)."""
        path = self.root / "usage" / f"usage_events_{day}.parquet"
        if not path.is_file():
            return pd.DataFrame()
        try:
            frame = pq.read_table(path).to_pandas()
        except (OSError, ValueError) as error:  # pyarrow: truncated or not Parquet at all
            raise SnapshotFileError(path, "unreadable_file", f"{path.stat().st_size} bytes",
                                    f"is not a readable Parquet file: {error}") from error
        _require_columns(path, frame.columns, USAGE_REQUIRED_COLUMNS)
        return frame

    def erp_table(self, name: str) -> pd.DataFrame:
        """One ERP export (``customers``, ``fx_rates``, ...), every column as text, blanks ""."""
        path = self.root / "erp" / f"{name}.csv"
        if not path.is_file():
            return pd.DataFrame()
        data = path.read_bytes()
        if not data.strip():
            raise SnapshotFileError(path, "empty_file", "0 bytes",
                                    "is empty: a CSV export needs at least its header line")
        try:
            data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise SnapshotFileError(path, "not_utf8", f"byte {error.start}",
                                    "is not UTF-8 text") from error
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        except pd.errors.ParserError as error:
            line = re.search(r"line (\d+)", str(error))
            raise SnapshotFileError(path, "malformed_csv",
                                    f"line {line.group(1)}" if line else "a line",
                                    f"is not a well-formed CSV: {error}") from error
        _require_columns(path, [c.strip() for c in frame.columns],
                         ERP_REQUIRED_COLUMNS.get(name, ()))
        return frame

    def activity(self) -> dict[str, tuple[str, str]]:
        """The first and last UTC day of the company's dated activity, per kind: ``invoices``
        (Stripe ``created``) and ``usage`` (event days). The manifest's ``activity`` when it
        says, else read from the files; a kind with no records (or an unreadable file) is
        left out: this bounds the UI's partitions and must never stop the code loading."""
        try:
            stated = self.manifest().get("activity") or {}
        except (OSError, ValueError):
            stated = {}
        out = {kind: (str(days[0]), str(days[1])) for kind, days in stated.items()
               if isinstance(days, list | tuple) and len(days) == 2}
        if "usage" not in out and (days := self.usage_days()):
            out["usage"] = (days[0], days[-1])
        if "invoices" not in out:
            try:
                created = sorted(o["created"] for o in self._json_list(
                    self.root / "stripe" / "invoices.json") if isinstance(o.get("created"), int))
            except (OSError, ValueError, TypeError, AttributeError):
                created = []
            if created:
                out["invoices"] = tuple(datetime.fromtimestamp(t, UTC).date().isoformat()
                                        for t in (created[0], created[-1]))
        return out

    def manifest(self) -> dict[str, Any]:
        """The snapshot manifest (seed, scale, as_of, extracted_at, counts); {} when absent."""
        path = self.root / "manifest.json"
        if not path.is_file():
            return {}
        return json.loads(path.read_text(encoding="utf-8"))

    @staticmethod
    def _json_list(path: Path) -> list[dict[str, Any]]:
        if not path.is_file():
            return []
        raw = path.read_bytes()
        if not raw.strip():
            raise SnapshotFileError(path, "empty_file", "0 bytes",
                                    "is empty: a saved list is at least []")
        try:
            text = raw.decode("utf-8-sig")  # a byte-order mark is not part of the JSON
        except UnicodeDecodeError as error:
            raise SnapshotFileError(path, "not_utf8", f"byte {error.start}",
                                    "is not UTF-8 text") from error

        def refuse_constant(name: str) -> Any:
            raise SnapshotFileError(path, "non_finite_number", f"the value {name}",
                                    f"holds {name}, which JSON (RFC 8259) has no number for")

        try:
            data = json.loads(text, parse_constant=refuse_constant)
        except json.JSONDecodeError as error:
            raise SnapshotFileError(
                path, "malformed_json", f"line {error.lineno}, column {error.colno}, byte "
                f"{error.pos}", f"is not well-formed JSON ({error.msg}); it may be cut short"
            ) from error
        if isinstance(data, dict) and not ({"data", "records"} & set(data)):
            raise SnapshotFileError(path, "not_a_list", "the top level",
                                    "is one object, not a list of records (nor a saved list "
                                    "page)")
        if isinstance(data, dict):  # a saved list envelope: {"object": "list", "data": [...]}
            if data.get("has_more") is True or data.get("done") is False:
                # Stripe's list page / Salesforce's query result that has more after it
                raise IncompleteSnapshot(
                    f"{path}: the saved list says it has more records after these "
                    f"({len(data.get('data') or data.get('records') or [])} here; "
                    "'has_more': true / 'done': false) [incomplete_page]: save every page "
                    "(follow starting_after / nextRecordsUrl) and run again", path)
            data = data.get("data") or data.get("records") or []
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise SnapshotFileError(path, "not_a_list", "the top level",
                                    "is not a list of records (nor a saved list page)")
        return list(data)
