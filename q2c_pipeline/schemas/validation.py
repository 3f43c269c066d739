"""Validate canonical candidate frames and split them into accepted rows and the quarantine.

Mappers in ``q2c_pipeline.sources`` turn raw source records into candidate frames with the
columns of the canonical pandera model plus ``_payload`` (the source record as JSON). This module
decides what may post. It checks, in this order, and records the FIRST broken rule of each
record (every other broken rule is appended to its reason):

1. ``duplicate_id``: two or more records share the table's key; all of them are held, because we
   cannot tell which one is right.
2. ``held_by_upstream`` and reference data: legal entity, customer, contract, invoice, product and
   currency must be known and consistent before anything posts (the business diagnosis comes
   before the generic one, so an empty legal entity reads as a missing mapping);
3. the pandera model (types, formats, allowed values, named dataframe checks);
4. ``held_by_upstream`` for contract siblings: a record whose parent (or whose contract sibling)
   is quarantined is held with it, so nothing posts half a contract or the lines of a missing
   invoice.

The result keeps the conservation law: for each table, rows in = rows accepted + rows quarantined.
Everything here is vectorized over frames; Python only builds the message of a failing record.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache

import pandas as pd
import pandera.pandas as pa

from q2c_pipeline.core.money import ISO_4217
from q2c_pipeline.schemas import CANONICAL_TABLES, COLUMN_DEFAULTS, INHERITED_DEFAULTS
from q2c_pipeline.sources.wire import FIELD_PROBLEMS, UNMAPPABLE

PAYLOAD_COLUMN = "_payload"

# Dependency order: parents before children.
VALIDATION_ORDER = [
    "legal_entities",
    "chart_of_accounts",
    "accounting_periods",
    "tax_codes",
    "fx_rates",
    "products",
    "customers",
    "contracts",
    "contract_lines",
    "invoices",
    "invoice_lines",
    "credit_notes",
    "payments",
    "refunds",
    "invoice_events",
    "usage",
]

# Who fixes a record of this table at its source when no rule says otherwise.
DEFAULT_OWNER = {
    "legal_entities": "controllership",
    "chart_of_accounts": "controllership",
    "accounting_periods": "controllership",
    "tax_codes": "controllership",
    "fx_rates": "controllership",
    "products": "controllership",
    "customers": "sales_ops",
    "contracts": "sales_ops",
    "contract_lines": "sales_ops",
    "invoices": "billing_ops",
    "invoice_lines": "billing_ops",
    "credit_notes": "billing_ops",
    "payments": "billing_ops",
    "refunds": "billing_ops",
    "invoice_events": "billing_ops",
    "usage": "billing_ops",
}

# Rules whose owner differs from the table's default owner.
RULE_OWNER = {
    "missing_fx_rate": "controllership",
    "missing_legal_entity_mapping": "controllership",
    "unknown_legal_entity": "controllership",
    "unknown_product_code": "sales_ops",
}

# pandera check name (prefix) -> (rule, field override). Dataframe-level checks name their field.
_PANDERA_RULES: dict[str, tuple[str, str | None]] = {
    "not_nullable": ("missing_value", None),
    "str_length": ("missing_value", None),
    "str_matches": ("invalid_format", None),
    "isin": ("invalid_value", None),
    "greater_than_or_equal_to": ("negative_value", None),
    "greater_than": ("not_positive", None),
    "less_than_or_equal_to": ("out_of_range", None),
    "coerce_dtype": ("invalid_type", None),
    "dtype": ("invalid_type", None),
    "field_uniqueness": ("duplicate_id", None),
    "quantity_negative_only_on_amendments": ("negative_quantity", "quantity"),
    "amount_negative_only_on_amendments": ("negative_price", "amount"),
    "quantity_not_negative_unless_proration": ("negative_quantity", "quantity"),
    "service_end_after_start": ("service_period_inverted", "service_end"),
    "one_row_per_contract_version": ("duplicate_id", "version"),
    "one_mapping_per_entity_account": ("duplicate_id", "account"),
}


@dataclass
class ValidationResult:
    """Accepted canonical frames (payload column dropped) and the quarantine frame."""

    accepted: dict[str, pd.DataFrame]
    quarantine: pd.DataFrame
    rows_in: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, dict[str, int]]:
        """Per table: rows in, accepted, quarantined (the conservation law, as numbers)."""
        quarantined = self.quarantine.groupby("source_table").size().to_dict()
        return {
            table: {
                "rows_in": self.rows_in.get(table, 0),
                "accepted": len(self.accepted.get(table, ())),
                "quarantined": int(quarantined.get(table, 0)),
            }
            for table in VALIDATION_ORDER
        }

    def tables(self) -> ValidatedTables:
        """The accepted frames as ``ValidatedTables`` (what the engine takes)."""
        return ValidatedTables(self.accepted, _VALIDATED)


QUARANTINE_COLUMNS = [
    "source_system",
    "source_table",
    "record_id",
    "field",
    "rule",
    "reason",
    "owner",
    "correlation_id",
    "legal_entity",
    "customer_id",
    "effective_date",
    "payload",
]
# The business date of a record of each table: the date whose period a quarantined record is
# stuck in (a record without one takes its parent invoice's or contract's).
EFFECTIVE_DATE_COLUMNS = {
    "contracts": ("effective_date", "signed_date"), "contract_lines": ("service_start",),
    "invoices": ("finalized_at",), "invoice_lines": ("created_at",),
    "credit_notes": ("issued_at",), "payments": ("paid_at",), "refunds": ("refunded_at",),
    "invoice_events": ("occurred_at",), "usage": ("occurred_at",),
}


def _business_date(record: Mapping, table: str) -> str | None:
    """The first of the table's business-date columns the record has, as YYYY-MM-DD."""
    for column in EFFECTIVE_DATE_COLUMNS.get(table, ()):
        value = _iso_date(record.get(column))
        if value is not None:
            return value
    return None
# Parent references kept while building the quarantine, to attribute a held record to the
# customer and legal entity it belongs to (dropped before the frame is returned).
_PARENT_COLUMNS = ["_invoice_id", "_contract_id"]


class _Failures:
    """Collects (row position, rule, field, message, owner) for one table, first rule wins."""

    def __init__(self, table: str, frame: pd.DataFrame) -> None:
        self.table = table
        self.frame = frame
        self.first: dict[int, tuple[str, str | None, str, str]] = {}
        self.more: dict[int, list[str]] = {}
        self.seen: dict[int, set[tuple[str, str | None]]] = {}

    def add(
        self,
        mask: pd.Series,
        rule: str,
        field_name: str | None,
        describe: Callable[[pd.Series], str],
        owner: str | None = None,
        generic: bool = False,
    ) -> None:
        positions = [int(p) for p in mask.to_numpy().nonzero()[0]]
        for pos in positions:
            seen = self.seen.setdefault(pos, set())
            fields = {f for _, f in seen}
            # One message per rule and field; a generic schema failure on a field that a
            # business rule already explained adds nothing.
            if (rule, field_name) in seen or (generic and field_name in fields):
                continue
            seen.add((rule, field_name))
            row = self.frame.iloc[pos]
            message = f"{rule}: {describe(row)}"
            if pos in self.first:
                self.more.setdefault(pos, []).append(message)
            else:
                resolved = owner or RULE_OWNER.get(rule) or DEFAULT_OWNER[self.table]
                self.first[pos] = (rule, field_name, message, resolved)

    def rejected_mask(self) -> pd.Series:
        mask = pd.Series(False, index=self.frame.index)
        if self.first:
            mask.iloc[sorted(self.first)] = True
        return mask

    def to_frame(self, key_columns: list[str]) -> pd.DataFrame:
        rows = []
        for pos in sorted(self.first):
            rule, field_name, message, owner = self.first[pos]
            record = self.frame.iloc[pos]
            reason = "; ".join([message, *self.more.get(pos, [])])
            rows.append(
                {
                    "source_system": _text(record.get("source_system")) or "erp",
                    "source_table": self.table,
                    "record_id": _record_id(record, key_columns),
                    "field": field_name,
                    "rule": rule,
                    "reason": reason,
                    "owner": owner,
                    "correlation_id": _text(record.get("correlation_id")),
                    "legal_entity": _text(record.get("legal_entity")) or None,
                    "customer_id": _text(record.get("customer_id")) or None,
                    "effective_date": _business_date(record, self.table),
                    "payload": _text(record.get(PAYLOAD_COLUMN)) or _row_json(record),
                    "_invoice_id": _text(record.get("invoice_id")),
                    "_contract_id": _text(record.get("contract_id")),
                }
            )
        return pd.DataFrame(rows, columns=QUARANTINE_COLUMNS + _PARENT_COLUMNS)


def _text(value: object) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return str(value)


def _iso_date(value: object) -> str | None:
    """YYYY-MM-DD of a date or timestamp value; None when absent or unreadable."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    moment = pd.to_datetime(value, errors="coerce", utc=True)
    return None if pd.isna(moment) else moment.strftime("%Y-%m-%d")


def _business_dates(frame: pd.DataFrame | None, table: str, key: str) -> dict[str, str]:
    """key -> YYYY-MM-DD of each record's first business-date column that is set (the last
    version of a key wins), vectorized over the table."""
    columns = [c for c in EFFECTIVE_DATE_COLUMNS.get(table, ()) if frame is not None
               and c in frame]
    if frame is None or frame.empty or not columns:
        return {}
    latest = frame.drop_duplicates(key, keep="last")
    moments = pd.DataFrame({c: pd.to_datetime(latest[c], errors="coerce", utc=True)
                            for c in columns}).bfill(axis=1).iloc[:, 0]
    days = moments.dt.strftime("%Y-%m-%d")
    return {str(k): d for k, d in zip(latest[key], days, strict=True) if isinstance(d, str)}


def _record_id(record: pd.Series, key_columns: list[str]) -> str:
    source_id = _text(record.get("source_id"))
    key = "|".join(_text(record.get(c)) or "" for c in key_columns)
    return key or source_id or "<no id>"


def _row_json(record: pd.Series) -> str:
    data = {k: (None if _text(v) is None else str(v)) for k, v in record.items()}
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def _label(table: str, record: pd.Series, key_columns: list[str]) -> str:
    return f"{table} record {_record_id(record, key_columns)!r}"


def _pandera_failures(
    table: str, model: type[pa.DataFrameModel], frame: pd.DataFrame, failures: _Failures,
    key_columns: list[str],
) -> pd.DataFrame | None:
    """Record the pandera failures; the validated (coerced) frame when every row passes."""
    columns = list(model.to_schema().columns)
    candidate = frame[columns]
    try:
        return model.validate(candidate, lazy=True)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
    cases = cases[cases["index"].notna()]
    for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=True):
        check_name = str(check)
        rule, field_override = next(
            (v for k, v in _PANDERA_RULES.items() if check_name.startswith(k)),
            ("schema_violation", None),
        )
        field_name = field_override or (None if pd.isna(column) else str(column))
        values = dict(zip(group["index"], group["failure_case"], strict=False))
        mask = frame.index.isin(list(values))
        mask_series = pd.Series(mask, index=frame.index)

        def describe(row: pd.Series, _f=field_name, _c=check_name) -> str:
            shown = row.get(_f) if _f in row.index else None
            return (
                f"{_label(table, row, key_columns)}: field {_f!r} value {_text(shown)!r} "
                f"{_check_words(_c)}"
            )

        failures.add(mask_series, rule, field_name, describe, generic=True)


_CHECK_WORDS = (
    (re.compile(r"^isin\(\[(.*)\]\)$"),
     lambda m: "is not one of " + ", ".join(v.strip().strip("'\"") for v in m.group(1).split(","))),
    (re.compile(r"^greater_than_or_equal_to\((.*)\)$"), lambda m: f"must be >= {m.group(1)}"),
    (re.compile(r"^greater_than\((.*)\)$"), lambda m: f"must be > {m.group(1)}"),
    (re.compile(r"^less_than_or_equal_to\((.*)\)$"), lambda m: f"must be <= {m.group(1)}"),
    (re.compile(r"^str_length\(1, None\)$"), lambda m: "must not be empty"),
    (re.compile(r"^not_nullable$"), lambda m: "is required (empty)"),
    (re.compile(r"^field_uniqueness$"), lambda m: "is not unique"),
)


def _check_words(check: str) -> str:
    """A pandera check named for a finance reader: ``isin(['a', 'b'])`` -> "is not one of a,
    b"; other checks keep their name ("fails check <name>")."""
    for pattern, words in _CHECK_WORDS:
        match = pattern.match(check)
        if match:
            return words(match)
    return f"fails check {check}"


def _known(values: pd.Series, allowed: pd.Series) -> pd.Series:
    return values.isin(set(allowed.dropna().astype(str)))


def _field_problem_failures(table: str, frame: pd.DataFrame, failures: _Failures,
                            key_columns: list[str], only: str | None = None) -> None:
    """What the mapper could not read (``sources.wire.FieldProblems``): never replaced or
    guessed. Checked after the references, so a record held with its parent says so first
    (``only``: just that rule, e.g. a record not mapped at all, checked before them)."""
    if FIELD_PROBLEMS not in frame:
        return
    problems = frame[FIELD_PROBLEMS]
    pairs = sorted({(rule, name) for found in problems if isinstance(found, list | tuple)
                    for rule, name, _ in found if only is None or rule == only})
    for rule, name in pairs:
        def words(row: pd.Series, rule: str = rule, name: str = name) -> str:
            said = next(w for r, f, w in row[FIELD_PROBLEMS] if (r, f) == (rule, name))
            return f"{_label(table, row, key_columns)}: {said}"
        failures.add(problems.map(lambda found, rule=rule, name=name: isinstance(
            found, list | tuple) and any((r, f) == (rule, name) for r, f, _ in found)),
            rule, name, words)


def _reference_failures(
    table: str, frame: pd.DataFrame, accepted: Mapping[str, pd.DataFrame],
    quarantined_ids: Mapping[str, Mapping[str, str]], failures: _Failures, key_columns: list[str],
) -> None:
    """Cross-table rules: reference data known, parents present, currencies consistent."""
    if "currency" in frame:
        # a currency no money can be in: never guessed at, never converted
        code = frame["currency"]
        sent = code.notna() & code.astype(str).str.strip().ne("")
        well_formed = code.astype(str).str.fullmatch(r"[A-Z]{3}")
        failures.add(sent & ~well_formed, "invalid_format", "currency",
                     lambda r: f"{_label(table, r, key_columns)}: field 'currency' value "
                               f"{r['currency']!r} is not a three-letter ISO 4217 code")
        failures.add(sent & well_formed & ~code.isin(ISO_4217), "unknown_currency", "currency",
                     lambda r: f"{_label(table, r, key_columns)}: field 'currency' value "
                               f"{r['currency']!r} is not an ISO 4217 currency")
    if "_date_problem" in frame:
        # a date the source sent in another format: never replaced by a neighbouring date
        failures.add(
            frame["_date_problem"].notna(), "invalid_format", None,
            lambda r: f"{_label(table, r, key_columns)}: {r['_date_problem']} (Salesforce "
                      "sends YYYY-MM-DD and YYYY-MM-DDThh:mm:ss.sss+0000)",
        )
    if "_status_problem" in frame:
        # a status none of the source's documented values: never dropped, never guessed
        failures.add(
            frame["_status_problem"].notna(), "unknown_status", "status",
            lambda r: f"{_label(table, r, key_columns)}: {r['_status_problem']}",
        )
    if "_shape_problem" in frame:
        # a source object in another API version's shape: never read as if it were this one's
        failures.add(
            frame["_shape_problem"].notna(), "unsupported_api_version", None,
            lambda r: f"{_label(table, r, key_columns)}: {r['_shape_problem']}",
        )

    def empty(name: str, column: str) -> pd.Series:
        df = accepted.get(name)
        return df[column] if df is not None and column in df else pd.Series([], dtype=object)

    def label(row: pd.Series) -> str:
        return _label(table, row, key_columns)

    def held(column: str, parent: str) -> None:
        """Records pointing at a quarantined parent are held with it (owner: parent's owner)."""
        held_parents = quarantined_ids.get(parent, {})
        if column not in frame or not held_parents:
            return
        mask = frame[column].isin(set(held_parents))
        for owner in sorted(set(held_parents.values())):
            owner_mask = mask & frame[column].map(held_parents).eq(owner)
            failures.add(
                owner_mask, "held_by_upstream", column,
                lambda r, _c=column, _p=parent: (
                    f"{label(r)}: field {_c!r} points at {_p} {r[_c]!r}, which is quarantined"
                ),
                owner=owner,
            )

    def unknown(column: str, parent: str, parent_column: str, rule: str, optional: bool,
                owner: str | None = None) -> None:
        if column not in frame:
            return
        values = frame[column]
        present = values.notna() & values.astype(str).ne("")
        in_quarantine = values.isin(set(quarantined_ids.get(parent, {})))
        bad = ~_known(values.astype(str), empty(parent, parent_column)) & ~in_quarantine
        mask = (present & bad) if optional else (bad | ~present) & ~in_quarantine
        failures.add(
            mask, rule, column,
            lambda r, _c=column: (
                f"{label(r)}: field {_c!r} value {_text(r[_c])!r} is not in {parent}"
                if _text(r[_c]) else f"{label(r)}: field {_c!r} is empty; no {parent} mapping"
            ),
            owner,
        )

    if table == "customers":
        legal = frame["legal_entity"]
        missing = legal.isna() | legal.astype(str).eq("")
        failures.add(
            missing, "missing_legal_entity_mapping", "legal_entity",
            lambda r: f"{label(r)}: no legal-entity mapping in the ERP customer master",
        )
        unknown("legal_entity", "legal_entities", "legal_entity", "unknown_legal_entity", True)
    elif table == "contracts":
        held("customer_id", "customers")
        unknown("customer_id", "customers", "customer_id", "unknown_customer", False)
        unknown("legal_entity", "legal_entities", "legal_entity", "unknown_legal_entity", False)
    elif table == "contract_lines":
        held("contract_id", "contracts")
        unknown("contract_id", "contracts", "contract_id", "unknown_contract", False)
        unknown("product_code", "products", "product_code", "unknown_product_code", False)
    elif table == "invoices":
        held("customer_id", "customers")
        held("contract_id", "contracts")
        unknown("customer_id", "customers", "customer_id", "unknown_customer", False)
        unknown("contract_id", "contracts", "contract_id", "unknown_contract", True)
        contracts = accepted.get("contracts")
        if contracts is not None and len(contracts):
            currency = contracts.drop_duplicates("contract_id", keep="last").set_index(
                "contract_id"
            )["currency"]
            expected = frame["contract_id"].map(currency)
            mismatch = expected.notna() & expected.ne(frame["currency"])
            failures.add(
                mismatch, "currency_mismatch", "currency",
                lambda r: (
                    f"{label(r)}: field 'currency' value {r['currency']!r} differs from "
                    f"contract {r['contract_id']!r} currency {currency[r['contract_id']]!r}"
                ),
            )
    elif table == "invoice_lines":
        held("invoice_id", "invoices")
        held("contract_line_id", "contract_lines")
        unknown("invoice_id", "invoices", "invoice_id", "unknown_invoice", False)
        unknown("product_code", "products", "product_code", "unknown_product_code", True)
        unknown(
            "contract_line_id", "contract_lines", "contract_line_id", "unknown_contract_line", True
        )
    elif table in ("credit_notes", "payments", "refunds", "invoice_events"):
        held("invoice_id", "invoices")
        optional = table in ("credit_notes", "payments")
        unknown("invoice_id", "invoices", "invoice_id", "unknown_invoice", optional)
        invoices = accepted.get("invoices")
        if "currency" in frame and invoices is not None and len(invoices):
            currency = invoices.set_index("invoice_id")["currency"]
            expected = frame["invoice_id"].map(currency)
            mismatch = expected.notna() & expected.ne(frame["currency"])
            failures.add(
                mismatch, "currency_mismatch", "currency",
                lambda r: (
                    f"{label(r)}: field 'currency' value {r['currency']!r} differs from "
                    f"invoice {r['invoice_id']!r} currency {currency[r['invoice_id']]!r}"
                ),
            )
    elif table == "usage":
        held("customer_id", "customers")
        if "_customer_problem" in frame:
            # the event names a Stripe customer no customer is billed as: say which one
            failures.add(
                frame["_customer_problem"].notna(), "unknown_customer", "customer_id",
                lambda r: f"{label(r)}: {r['_customer_problem']}",
            )
        quantity = pd.to_numeric(frame["quantity"], errors="coerce")
        failures.add(
            quantity.lt(0).fillna(False), "negative_quantity", "quantity",
            lambda r: f"{label(r)}: field 'quantity' value {r['quantity']!r} is negative: usage "
                      "counts what happened; a correction is a credit note",
        )
        unknown("customer_id", "customers", "customer_id", "unknown_customer", True)
        # a usage event's product code is what Stripe's meter sent: billing ops map it
        unknown("product_code", "products", "product_code", "unknown_product_code", True,
                "billing_ops")


def _cross_record_failures(table: str, frame: pd.DataFrame, accepted: Mapping[str, pd.DataFrame],
                           failures: _Failures, key_columns: list[str],
                           source_controls: bool = True) -> None:
    """Rules over several records (amounts adding up, a rate for the pair and day, a price to
    rate by): after each record's own fields, which explain a record first."""
    def label(row: pd.Series) -> str:
        return _label(table, row, key_columns)

    if table == "refunds" and source_controls:
        _refunds_beyond_payments(frame, accepted, failures, label)
        _refunds_of_overpayments(frame, accepted, failures, label)
    if table == "payments" and source_controls:
        _payments_beyond_invoices(frame, accepted, failures, label)
    if table == "credit_notes" and source_controls:
        _credits_beyond_invoices(frame, accepted, failures, label)
    if table in _FX_DATED:
        _fx_failures(table, frame, accepted, failures, label)
        if "_price_problem" in frame:
            # the metered price cannot be rated exactly, or there is none: never rated at a guess
            problem = frame["_price_problem"]
            failures.add(
                problem.notna(), "unpriced_usage", "amount",
                lambda r: f"{label(r)}: cannot be rated: {r['_price_problem']}",
            )


def _payments_beyond_invoices(frame: pd.DataFrame, accepted: Mapping[str, pd.DataFrame],
                              failures: _Failures, label: Callable[[pd.Series], str]) -> None:
    """Payments of one invoice adding up to more than it bills (its lines, with exclusive tax)
    plus what Stripe says was overpaid on it (``amount_overpaid``, credited to the customer's
    balance): cash beyond that is a wrong amount, not a payment, and every payment of the
    invoice is held. An overpayment Stripe states posts: the excess is a credit on the
    receivable, presented as ``CustomerCredit`` at the month end."""
    lines = accepted.get("invoice_lines")
    if lines is None or not len(lines) or "invoice_id" not in frame:
        return
    billed = (lines["amount"] + lines["tax_amount"].where(~lines["tax_inclusive"], 0)
              ).groupby(lines["invoice_id"]).sum().astype("float64")
    overpaid = pd.Series(0.0, index=billed.index)
    invoices = accepted.get("invoices")
    if invoices is not None and len(invoices):
        stated = invoices.drop_duplicates("invoice_id").set_index("invoice_id")
        if "amount_overpaid" in stated:
            overpaid = pd.to_numeric(stated["amount_overpaid"], errors="coerce").reindex(
                billed.index).fillna(0).astype("float64")
        if "amount_due" in stated:
            # what Stripe asked for: the total less pre-payment credit notes, plus a positive
            # starting balance carried onto the invoice
            due = pd.to_numeric(stated["amount_due"], errors="coerce").reindex(billed.index)
            billed = due.where(due.notna(), billed).astype("float64")
    # amounts that are not a positive number are their own rules' (invalid_type, not_positive)
    amount = pd.to_numeric(frame["amount"], errors="coerce")
    amount = amount.where(amount > 0)
    total = amount.groupby(frame["invoice_id"]).transform("sum").where(amount.notna())
    limit = pd.to_numeric(frame["invoice_id"].map(billed + overpaid),
                          errors="coerce").astype("float64")
    beyond = (limit.notna() & total.gt(limit)).fillna(False).astype(bool)
    failures.add(
        beyond, "payment_exceeds_invoice", "amount",
        lambda r: (f"{label(r)}: the payments of invoice {r['invoice_id']!r} add up to "
                   f"{int(total[r.name])}, more than it bills ({int(limit[r.name])} minor units, "
                   "with what Stripe states as overpaid); correct the payment at the source"),
    )
    # Stripe's own total: the invoice's amount_paid is what its paid invoice payments add up to
    if invoices is not None and "amount_paid" in invoices:
        stated = pd.to_numeric(frame["invoice_id"].map(
            invoices.drop_duplicates("invoice_id").set_index("invoice_id")["amount_paid"]),
            errors="coerce").astype("float64")
        over = frame["invoice_id"].map(overpaid).fillna(0)
        # Stripe's amount_paid may or may not count what it credits back as overpaid
        differ = (stated.notna() & total.notna() & total.ne(stated)
                  & total.ne(stated + over) & ~beyond).fillna(False)
        failures.add(
            differ.astype(bool), "payments_differ_from_invoice", "amount",
            lambda r: (f"{label(r)}: the payments of invoice {r['invoice_id']!r} add up to "
                       f"{int(total[r.name])} but Stripe says the invoice was paid "
                       f"{int(stated[r.name])} (amount_paid, minor units); an amount was "
                       "altered on the way (major units?) or a payment is missing"),
        )


def _credits_beyond_invoices(frame: pd.DataFrame, accepted: Mapping[str, pd.DataFrame],
                             failures: _Failures, label: Callable[[pd.Series], str]) -> None:
    """Credit notes (not voided) of one invoice adding up to more than the invoice's total (its
    lines with exclusive tax), tax with each note's exclusive tax: Stripe never issues more
    credit than an invoice's total, so the amounts were altered on the way (every live credit
    note of that invoice is held). A note may credit one line beyond that line's amount (a
    concession on the whole invoice keyed to one line): only the invoice bounds it."""
    lines = accepted.get("invoice_lines")
    if lines is None or not len(lines) or "invoice_id" not in frame:
        return
    exclusive = ~lines["tax_inclusive"].astype("boolean").fillna(False).astype(bool)
    billed = (lines["amount"] + lines["tax_amount"].fillna(0).where(exclusive, 0)).groupby(
        lines["invoice_id"]).sum().astype("float64")
    inclusive_by_invoice = lines["tax_inclusive"].astype("boolean").fillna(False).astype(
        bool).groupby(lines["invoice_id"]).all()
    live = frame["voided_at"].isna() if "voided_at" in frame else pd.Series(True, frame.index)
    amount = pd.to_numeric(frame["amount"], errors="coerce")
    tax = pd.to_numeric(frame["tax_amount"], errors="coerce").fillna(0) \
        if "tax_amount" in frame else pd.Series(0.0, index=frame.index)
    inclusive = frame["invoice_id"].map(inclusive_by_invoice).astype("boolean").fillna(False)
    tax = tax.where(~inclusive.astype(bool), 0)
    credited = (amount + tax).where(live & amount.gt(0))
    total = credited.groupby(frame["invoice_id"]).transform("sum").where(credited.notna())
    limit = frame["invoice_id"].map(billed)
    beyond = (limit.notna() & limit.gt(0) & total.gt(limit)).fillna(False).astype(bool)
    failures.add(
        beyond, "credit_exceeds_invoice", "amount",
        lambda r: (f"{label(r)}: the credit notes of invoice {r['invoice_id']!r} add up to "
                   f"{int(total[r.name])}, more than its total ({int(limit[r.name])} minor "
                   "units, with exclusive tax); correct or void the credit notes at the source"),
    )


def _refunds_of_overpayments(frame: pd.DataFrame, accepted: Mapping[str, pd.DataFrame],
                             failures: _Failures, label: Callable[[pd.Series], str]) -> None:
    """A refund on an invoice Stripe says was overpaid: returning the overpayment settles the
    customer's credit (no price change, no tax), returning more is a concession. q2c cannot
    tell the two apart from the refund alone and does not guess: controllership decides."""
    invoices = accepted.get("invoices")
    if invoices is None or not len(invoices) or "amount_overpaid" not in invoices \
            or "invoice_id" not in frame:
        return
    overpaid = pd.to_numeric(invoices.drop_duplicates("invoice_id").set_index("invoice_id")[
        "amount_overpaid"], errors="coerce")
    over = frame["invoice_id"].map(overpaid)
    failures.add(
        over.gt(0).fillna(False).astype(bool), "refund_of_overpayment", "invoice_id",
        lambda r: (f"{label(r)}: invoice {r['invoice_id']!r} was overpaid by "
                   f"{int(over[r.name])} (minor units, Stripe amount_overpaid); a refund of the "
                   "overpayment returns the customer's credit (no revenue or tax effect), more is "
                   "a concession: book it by hand and waive, or correct the source"),
        "controllership",
    )


def _refunds_beyond_payments(frame: pd.DataFrame, accepted: Mapping[str, pd.DataFrame],
                             failures: _Failures, label: Callable[[pd.Series], str]) -> None:
    """Refunds of one payment adding up to more than it paid: no processor refunds what it
    never took, so the amounts are wrong at the source (every refund of that payment is held)."""
    payments = accepted.get("payments")
    if payments is None or not len(payments) or "payment_id" not in frame:
        return
    paid = payments.drop_duplicates("payment_id").set_index("payment_id")["amount"]
    amount = pd.to_numeric(frame["amount"], errors="coerce")
    total = amount.groupby(frame["payment_id"]).transform("sum")
    limit = frame["payment_id"].map(paid)
    beyond = limit.notna() & total.gt(limit)
    failures.add(
        beyond, "refund_exceeds_payment", "amount",
        lambda r: (f"{label(r)}: the refunds of payment {r['payment_id']!r} add up to "
                   f"{int(total[r.name])}, more than it paid ({int(limit[r.name])}, minor "
                   "units)"),
    )


def _undisputed_invoice_lines(candidates: Mapping[str, pd.DataFrame]) -> pd.DataFrame | None:
    """Invoice line candidates that can speak for what Stripe bills: not one of two versions of
    a line or of its invoice (those are held as duplicates and say nothing either way), and not
    on a void invoice (voiding and reissuing is how billing corrects a quantity)."""
    lines = candidates.get("invoice_lines")
    if lines is None or not len(lines):
        return lines
    invoices = candidates.get("invoices")
    if invoices is None or not len(invoices):
        return lines
    set_aside = set(invoices.loc[invoices["invoice_id"].duplicated(keep=False)
                                 | invoices["status"].eq("void"), "invoice_id"])
    return lines[~lines["invoice_line_id"].duplicated(keep=False)
                 & ~lines["invoice_id"].isin(set_aside)]


def _paid_without_payments(frame: pd.DataFrame, payments: pd.DataFrame | None,
                           failures: _Failures, label: Callable[[pd.Series], str]) -> None:
    """An invoice Stripe says was paid through invoice payments (``amount_paid`` less what was
    paid off Stripe) with not one payment of it received: its cash is missing from the export,
    and posting the invoice alone would leave a paid receivable open."""
    if "amount_paid" not in frame:
        return
    stated = pd.to_numeric(frame["amount_paid"], errors="coerce")
    received = set() if payments is None or not len(payments) else set(
        payments["invoice_id"].dropna())
    missing = (stated.gt(0) & ~frame["invoice_id"].isin(received)).fillna(False).astype(bool)
    failures.add(
        missing, "payments_differ_from_invoice", "amount_paid",
        lambda r: (f"{label(r)}: Stripe says it was paid {int(stated[r.name])} (amount_paid, "
                   "minor units) through invoice payments, but none of them was received; land "
                   "the missing invoice payment (it is released when it arrives)"),
    )


def _quantity_mismatches(lines: pd.DataFrame, invoice_lines: pd.DataFrame | None,
                         failures: _Failures, label: Callable[[pd.Series], str]) -> None:
    """A recurring contract line selling another quantity than Stripe bills for it: for each
    billing period (regular, not proration, invoice lines) that starts within the line's term,
    the quantities billed on the line and on the amendment lines revising it must add up to the
    quantity in force at the period start (the line plus the deltas effective by then). A
    difference means Salesforce and Stripe disagree about what was sold; the contract is held
    (whole) until one of them is corrected. One-time and usage lines are not compared (a
    one-time line may be billed in instalments; usage bills what was used)."""
    if invoice_lines is None or not len(invoice_lines) or not len(lines):
        return
    quantity = pd.to_numeric(lines["quantity"], errors="coerce")
    original = lines["revises_line_id"].isna() & lines["revenue_pattern"].eq("ratable") \
        & lines["contract_line_id"].notna() & quantity.notna()
    roots = lines.loc[original, ["contract_line_id", "service_start", "service_end"]].assign(
        sold=quantity[original].astype(float)).drop_duplicates("contract_line_id")
    deltas = lines.loc[lines["revises_line_id"].isin(set(roots["contract_line_id"]))].assign(
        delta=pd.to_numeric(lines["quantity"], errors="coerce"),
        effective=pd.to_datetime(lines["effective_date"].where(
            lines["effective_date"].notna(), lines["service_start"]), errors="coerce"))
    root_of = {**{r: r for r in roots["contract_line_id"]},
               **dict(zip(deltas["contract_line_id"], deltas["revises_line_id"], strict=True))}
    regular = ~invoice_lines["is_proration"].astype("boolean").fillna(False).astype(bool)
    billed = invoice_lines[regular & invoice_lines["contract_line_id"].isin(set(root_of))]
    billed = billed.assign(root=billed["contract_line_id"].map(root_of),
                           qty=pd.to_numeric(billed["quantity"], errors="coerce"),
                           start=pd.to_datetime(billed["service_start"], errors="coerce"))
    billed = billed[billed["qty"].notna() & billed["start"].notna()]
    if not len(billed):
        return
    periods = billed.groupby(["root", "start"], as_index=False).agg(
        billed_qty=("qty", "sum"), invoice_line_id=("invoice_line_id", "min"))
    periods = periods.merge(roots.rename(columns={"contract_line_id": "root"}), on="root")
    term_start = pd.to_datetime(periods["service_start"], errors="coerce")
    term_end = pd.to_datetime(periods["service_end"], errors="coerce")
    periods = periods[(term_start.isna() | (periods["start"] >= term_start))
                      & (term_end.isna() | (periods["start"] < term_end))]
    pairs = periods[["root", "start"]].merge(
        deltas[["revises_line_id", "delta", "effective"]], how="left",
        left_on="root", right_on="revises_line_id")
    pairs["delta"] = pairs["delta"].where(pairs["effective"] <= pairs["start"], 0).fillna(0)
    in_force = pairs.groupby(["root", "start"], as_index=False)["delta"].sum()
    periods = periods.merge(in_force, on=["root", "start"], how="left")
    periods["in_force"] = periods["sold"] + periods["delta"].fillna(0)
    differ = periods[periods["in_force"] != periods["billed_qty"]].sort_values(["root", "start"])
    first = differ.drop_duplicates("root").set_index("root")
    failures.add(
        lines["contract_line_id"].isin(first.index) & original, "quantity_mismatch",
        "quantity",
        lambda r: (f"{label(r)}: Salesforce sells {first.at[r['contract_line_id'], 'in_force']:g} "
                   f"from {first.at[r['contract_line_id'], 'start']:%Y-%m-%d}, but Stripe bills "
                   f"{first.at[r['contract_line_id'], 'billed_qty']:g} for that period (invoice "
                   f"line {first.at[r['contract_line_id'], 'invoice_line_id']!r}); correct the "
                   "quantity in Salesforce or the subscription in Stripe"),
    )


# Tables whose amounts the engine converts to the entity's functional currency, with the date
# their first conversion needs a rate on or before.
_FX_DATED = {"contracts": "signed_date", "invoices": "finalized_at", "credit_notes": "issued_at",
             "payments": "paid_at", "refunds": "refunded_at", "usage": "occurred_at"}


def _fx_failures(table: str, frame: pd.DataFrame, accepted: Mapping[str, pd.DataFrame],
                 failures: _Failures, label: Callable[[pd.Series], str]) -> None:
    """A record in a currency other than its entity's functional one needs an FX rate for the
    pair (or its inverse) on or before its date; without one the engine cannot book it, so the
    record is held for controllership (``missing_fx_rate``) and the rest posts."""
    entities = accepted.get("legal_entities")
    if entities is None or not len(entities) or "currency" not in frame:
        return
    functional = entities.set_index("legal_entity")["functional_currency"]
    customers = accepted.get("customers")
    of_customer = customers.drop_duplicates("customer_id").set_index("customer_id")[
        "legal_entity"] if customers is not None and len(customers) else pd.Series(dtype=object)
    invoices = accepted.get("invoices")
    if table in ("contracts", "invoices"):
        entity = frame["legal_entity"]
        if "customer_id" in frame:
            entity = entity.where(entity.notna() & entity.astype(str).ne(""),
                                  frame["customer_id"].map(of_customer))
    elif table == "usage":
        entity = frame["customer_id"].map(of_customer)
    else:
        of_invoice = invoices.drop_duplicates("invoice_id").set_index("invoice_id")[
            "legal_entity"] if invoices is not None and len(invoices) else pd.Series(dtype=object)
        entity = frame["invoice_id"].map(of_invoice)
        if "customer_id" in frame:
            entity = entity.where(entity.notna(), frame["customer_id"].map(of_customer))
    target = entity.map(functional)
    date = pd.to_datetime(frame[_FX_DATED[table]], errors="coerce")
    foreign = target.notna() & frame["currency"].notna() & target.ne(frame["currency"]) \
        & date.notna()
    if not foreign.any():
        return
    rates = accepted.get("fx_rates")
    earliest = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    if rates is not None and len(rates):
        days = pd.to_datetime(rates["rate_date"])
        # a pair's first rate, either way round (the engine converts through the inverse too)
        pairs = pd.concat([
            pd.DataFrame({"src": rates["from_currency"], "dst": rates["to_currency"], "day": days}),
            pd.DataFrame({"src": rates["to_currency"], "dst": rates["from_currency"], "day": days}),
        ]).groupby(["src", "dst"], as_index=False)["day"].min()
        wanted = pd.DataFrame({"src": frame["currency"].to_numpy(),
                               "dst": target.to_numpy()}, index=frame.index)
        earliest = pd.to_datetime(wanted.reset_index().merge(pairs, how="left", on=[
            "src", "dst"]).set_index("index")["day"].reindex(frame.index))
    # a contract converts nothing when it is signed: it needs the pair at all; a booking needs
    # a rate on or before its own day
    late = earliest > date.dt.normalize() if table != "contracts" else pd.Series(
        False, index=frame.index)
    missing = foreign & (earliest.isna() | late)
    failures.add(
        missing, "missing_fx_rate", "currency",
        lambda r: (f"{label(r)}: no FX rate {r['currency']}->{target[r.name]} (or its inverse) "
                   + ("at all" if table == "contracts" else
                      f"on or before {date[r.name]:%Y-%m-%d}")
                   + f": its entity books in {target[r.name]}; add the rate to the ERP's "
                   "fx_rates and run again"),
    )


@cache
def _empty_validated(model: type[pa.DataFrameModel]) -> pd.DataFrame:
    columns = list(model.to_schema().columns)
    return model.validate(pd.DataFrame({c: pd.Series([], dtype=object) for c in columns}))


def _empty_like(model: type[pa.DataFrameModel]) -> pd.DataFrame:
    return _empty_validated(model).copy()


def validate_canonical(candidates: Mapping[str, pd.DataFrame],
                       held_parents: Mapping[str, Mapping[str, str]] | None = None,
                       *, source_controls: bool = True) -> ValidationResult:
    """Validate every candidate frame in dependency order; quarantine what breaks a rule.

    ``candidates`` maps canonical table names to frames with the model's columns and, optionally,
    ``_payload``. Missing tables are treated as empty. Returns accepted frames coerced to the
    canonical dtypes and one quarantine frame (one row per rejected record).

    ``held_parents`` names records to hold because a child of theirs could not even be landed
    (table -> id -> where the child is, e.g. a contract whose CPQ line came without its Id):
    a contract posts whole or not at all.

    ``source_controls`` runs the rules that compare records with everything the sources sent
    (quantities Salesforce sells vs Stripe bills, payments vs what the invoice says was paid,
    credits and refunds vs what they settle). They judge the whole extraction, so they run on
    the candidates; re-validating tables already accepted (``require_valid``) skips them, since
    the records they counted that were held are, by design, no longer there.
    """
    accepted: dict[str, pd.DataFrame] = {}
    quarantine_parts: list[pd.DataFrame] = []
    quarantined_ids: dict[str, dict[str, str]] = {}
    rows_in: dict[str, int] = {}

    for table in VALIDATION_ORDER:
        model, key_columns = CANONICAL_TABLES[table]
        frame = candidates.get(table)
        if frame is None or frame.empty:
            rows_in[table] = 0
            accepted[table] = _empty_like(model)
            continue
        frame = frame.reset_index(drop=True)
        rows_in[table] = len(frame)
        schema_columns = model.to_schema().columns
        missing = [c for c, col in schema_columns.items() if col.required and c not in frame]
        if missing:
            raise ValueError(f"{table}: candidate frame lacks canonical columns {missing}")
        for column in schema_columns:  # optional columns are carried, empty, when absent
            if column not in frame:
                frame[column] = None
        model_columns = list(schema_columns)
        failures = _Failures(table, frame)

        duplicated = frame.duplicated(subset=key_columns, keep=False)
        failures.add(
            duplicated, "duplicate_id", key_columns[-1] if len(key_columns) == 1 else None,
            lambda r, _t=table, _k=key_columns: (
                f"{_label(_t, r, _k)}: key {_k} appears more than once with different content"
            ),
        )
        # a record the mapper could not read at all says so before anything read from it
        _field_problem_failures(table, frame, failures, key_columns, only=UNMAPPABLE)
        _reference_failures(table, frame, accepted, quarantined_ids, failures, key_columns)
        _field_problem_failures(table, frame, failures, key_columns)
        unlanded_child = (held_parents or {}).get(table, {})
        if unlanded_child:
            failures.add(
                frame[key_columns[0]].isin(set(unlanded_child)), "held_by_upstream",
                key_columns[0],
                lambda r, _c=unlanded_child, _k=key_columns[0]: (
                    f"{_label(table, r, key_columns)}: a record of it was sent without its id "
                    f"({_c[r[_k]]}, held at landing); it posts whole or not at all"))
        _cross_record_failures(table, frame, accepted, failures, key_columns, source_controls)
        validated = _pandera_failures(table, model, frame, failures, key_columns)
        if table == "contract_lines" and source_controls:  # after the line's own rules
            _quantity_mismatches(frame, _undisputed_invoice_lines(candidates), failures,
                                 lambda r: _label(table, r, key_columns))
        if table == "invoices" and source_controls:
            _paid_without_payments(frame, candidates.get("payments"), failures,
                                   lambda r: _label(table, r, key_columns))

        if table == "contract_lines":
            # A contract posts whole or not at all: siblings of a rejected line are held.
            rejected = failures.rejected_mask()
            bad_contracts = set(frame.loc[rejected, "contract_id"].dropna())
            owner_of = {
                frame.iloc[pos]["contract_id"]: failures.first[pos][3] for pos in failures.first
            }
            sibling = frame["contract_id"].isin(bad_contracts) & ~rejected
            failures.add(
                sibling, "held_by_upstream", "contract_id",
                lambda r: (
                    f"{_label('contract_lines', r, ['contract_line_id'])}: another line of "
                    f"contract {r['contract_id']!r} is quarantined; the contract posts whole"
                ),
            )
            for pos in list(failures.first):
                rule, field_name, message, _owner = failures.first[pos]
                if rule == "held_by_upstream" and field_name == "contract_id":
                    contract = frame.iloc[pos]["contract_id"]
                    if contract in owner_of:
                        failures.first[pos] = (rule, field_name, message, owner_of[contract])
            # ...and the contract itself is withdrawn from the accepted contracts.
            if bad_contracts:
                contracts = accepted["contracts"]
                keep = ~contracts["contract_id"].isin(bad_contracts)
                withdrawn = contracts.loc[~keep]
                accepted["contracts"] = contracts.loc[keep].reset_index(drop=True)
                quarantine_parts.append(
                    _withdrawn_contracts(withdrawn, owner_of, candidates.get("contracts"))
                )
                for contract_id in bad_contracts:
                    quarantined_ids.setdefault("contracts", {})[contract_id] = owner_of.get(
                        contract_id, "sales_ops"
                    )

        if table == "invoice_lines":
            # An invoice posts whole or not at all: a rejected line holds its invoice, the
            # invoice's other lines, and (they come later) its payments, credit notes, refunds
            rejected = failures.rejected_mask()
            bad_invoices = set(frame.loc[rejected, "invoice_id"].dropna()) & set(
                accepted["invoices"]["invoice_id"])
            owner_of_invoice = {
                frame.iloc[pos]["invoice_id"]: failures.first[pos][3] for pos in failures.first}
            failures.add(
                frame["invoice_id"].isin(bad_invoices) & ~rejected, "held_by_upstream",
                "invoice_id",
                lambda r: (f"{_label('invoice_lines', r, ['invoice_line_id'])}: another line of "
                           f"invoice {r['invoice_id']!r} is quarantined; the invoice posts whole"),
            )
            if bad_invoices:
                invoices = accepted["invoices"]
                keep = ~invoices["invoice_id"].isin(bad_invoices)
                withdrawn = invoices.loc[~keep]
                accepted["invoices"] = invoices.loc[keep].reset_index(drop=True)
                quarantine_parts.append(_withdrawn_invoices(
                    withdrawn, owner_of_invoice, candidates.get("invoices")))
                for invoice_id in bad_invoices:
                    quarantined_ids.setdefault("invoices", {})[invoice_id] = \
                        owner_of_invoice.get(invoice_id, "billing_ops")

        rejected = failures.rejected_mask()
        quarantine_parts.append(failures.to_frame(key_columns))
        ids = frame.loc[rejected, key_columns[0]].astype(str)
        owners = [failures.first[pos][3] for pos in sorted(failures.first)]
        quarantined_ids.setdefault(table, {}).update(dict(zip(ids, owners, strict=True)))
        if validated is not None and not rejected.any():
            accepted[table] = validated.reset_index(drop=True)
        else:
            good = frame.loc[~rejected, model_columns].reset_index(drop=True)
            accepted[table] = model.validate(good)

    parts = [p for p in quarantine_parts if len(p)]
    quarantine = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame({c: pd.Series([], dtype=object) for c in QUARANTINE_COLUMNS})
    )
    quarantine = _attribute(quarantine, candidates)
    quarantine = quarantine.sort_values(
        ["source_table", "record_id", "rule", "payload"], kind="mergesort"
    ).reset_index(drop=True)
    return ValidationResult(accepted=accepted, quarantine=quarantine, rows_in=rows_in)


def _attribute(quarantine: pd.DataFrame, candidates: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Fill customer_id and legal_entity of quarantined records from their parents (invoice or
    contract, then customer), so the exception views can say whose close a record is stuck in."""
    out = quarantine.copy()
    for column in _PARENT_COLUMNS:
        if column not in out:
            out[column] = None

    def lookup(table: str, key: str, value: str) -> dict[str, str]:
        frame = candidates.get(table)
        if frame is None or frame.empty or value not in frame:
            return {}
        pairs = frame[[key, value]].dropna().astype(str)
        pairs = pairs[pairs[value] != ""].drop_duplicates(key, keep="last")
        return dict(zip(pairs[key], pairs[value], strict=True))

    for parent, table in (("_invoice_id", "invoices"), ("_contract_id", "contracts")):
        key = "invoice_id" if table == "invoices" else "contract_id"
        for column in ("customer_id", "legal_entity"):
            mapped = out[parent].map(lookup(table, key, column))
            out[column] = out[column].where(out[column].notna(), mapped)
        dates = _business_dates(candidates.get(table), table, key)
        out["effective_date"] = out["effective_date"].where(
            out["effective_date"].notna(), out[parent].map(dates))
    customer_entity = lookup("customers", "customer_id", "legal_entity")
    out["legal_entity"] = out["legal_entity"].where(
        out["legal_entity"].notna(), out["customer_id"].map(customer_entity)
    )
    return out[QUARANTINE_COLUMNS]


def _withdrawn_contracts(
    withdrawn: pd.DataFrame, owner_of: Mapping[str, str], candidates: pd.DataFrame | None
) -> pd.DataFrame:
    """Quarantine rows for contract versions withdrawn because one of their lines failed."""
    payloads: dict[tuple[str, int], str] = {}
    if candidates is not None and PAYLOAD_COLUMN in candidates:
        columns = ["contract_id", "version", PAYLOAD_COLUMN]
        for cid, version, payload in candidates[columns].itertuples(index=False):
            payloads[(str(cid), int(version))] = payload
    rows = [
        {
            "source_system": row.source_system,
            "source_table": "contracts",
            "record_id": f"{row.contract_id}|{row.version}",
            "field": "contract_id",
            "rule": "held_by_upstream",
            "reason": (
                f"held_by_upstream: contracts record '{row.contract_id}|{row.version}': "
                "a line of this contract is quarantined; the contract posts whole"
            ),
            "owner": owner_of.get(row.contract_id, "sales_ops"),
            "correlation_id": row.correlation_id,
            "legal_entity": row.legal_entity or None,
            "customer_id": row.customer_id,
            "payload": payloads.get((row.contract_id, int(row.version)), "{}"),
            "_contract_id": row.contract_id,
        }
        for row in withdrawn.itertuples(index=False)
    ]
    return pd.DataFrame(rows, columns=[*QUARANTINE_COLUMNS, *_PARENT_COLUMNS])


def _withdrawn_invoices(
    withdrawn: pd.DataFrame, owner_of: Mapping[str, str], candidates: pd.DataFrame | None
) -> pd.DataFrame:
    """Quarantine rows for invoices withdrawn because one of their lines failed."""
    payloads: dict[str, str] = {}
    if candidates is not None and PAYLOAD_COLUMN in candidates:
        for invoice_id, payload in candidates[["invoice_id", PAYLOAD_COLUMN]].itertuples(
                index=False):
            payloads.setdefault(str(invoice_id), payload)
    rows = [
        {
            "source_system": row.source_system,
            "source_table": "invoices",
            "record_id": row.invoice_id,
            "field": "invoice_id",
            "rule": "held_by_upstream",
            "reason": (f"held_by_upstream: invoices record {row.invoice_id!r}: a line of this "
                       "invoice is quarantined; the invoice posts whole, with its payments "
                       "and credit notes"),
            "owner": owner_of.get(row.invoice_id, "billing_ops"),
            "correlation_id": row.correlation_id,
            "legal_entity": row.legal_entity or None,
            "customer_id": row.customer_id,
            "payload": payloads.get(str(row.invoice_id), "{}"),
            "_invoice_id": row.invoice_id,
            "_contract_id": row.contract_id,
        }
        for row in withdrawn.itertuples(index=False)
    ]
    return pd.DataFrame(rows, columns=[*QUARANTINE_COLUMNS, *_PARENT_COLUMNS])


class InvalidInput(ValueError):
    """Canonical input that breaks a rule; ``quarantine`` holds one row per rejected record
    (record, field, rule, reason), exactly as the pipeline would quarantine it."""

    def __init__(self, quarantine: pd.DataFrame) -> None:
        self.quarantine = quarantine
        shown = list(quarantine["reason"].head(20))
        more = len(quarantine) - len(shown)
        text = "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
        super().__init__(f"{len(quarantine)} record(s) refused: {text}")


_VALIDATED = object()


class ValidatedTables(Mapping[str, pd.DataFrame]):
    """Canonical frames that passed ``validate_canonical`` whole (nothing quarantined).

    Only this module builds them (``ValidationResult.tables`` after a clean validation, or
    ``require_valid``), so a function that takes ``ValidatedTables`` knows every reference rule
    and pandera check held for every row it reads."""

    __slots__ = ("_frames",)

    def __init__(self, frames: Mapping[str, pd.DataFrame], token: object = None) -> None:
        if token is not _VALIDATED:
            raise TypeError("ValidatedTables come from validate_canonical or require_valid")
        self._frames = dict(frames)

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self._frames[name]

    def __iter__(self):
        return iter(self._frames)

    def __len__(self) -> int:
        return len(self._frames)

    def replace(self, name: str, frame: pd.DataFrame) -> ValidatedTables:
        """The same tables with one replaced by a frame that is validated first."""
        return require_valid({**self._frames, name: frame})


def with_defaults(tables: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Frames with what a hand-made table may leave out filled in: every model column (absent =
    empty), the documented defaults (``COLUMN_DEFAULTS``, ``INHERITED_DEFAULTS``: a credit note
    or refund in its invoice's currency) and the lineage columns (``source_system`` =
    ``interchange``, ``source_id`` and ``correlation_id`` = the record's key)."""
    out: dict[str, pd.DataFrame] = {}
    for name, frame in tables.items():
        if name not in CANONICAL_TABLES:
            continue
        model, keys = CANONICAL_TABLES[name]
        frame = frame.copy()
        for column in model.to_schema().columns:
            if column not in frame:
                frame[column] = None
        for column, default in COLUMN_DEFAULTS.get(name, {}).items():
            frame[column] = frame[column].astype(object).where(frame[column].notna(), default)
        if "source_system" in model.to_schema().columns and len(frame):
            key = frame[keys].astype(str).agg("|".join, axis=1)
            for column, default in (("source_system", None), ("source_id", key),
                                    ("correlation_id", key)):
                fill = "interchange" if default is None else default
                frame[column] = frame[column].where(frame[column].notna(), fill)
        out[name] = frame
    for name, columns in INHERITED_DEFAULTS.items():
        for column, (parent, join) in columns.items():
            if name not in out or parent not in out or not out[name][column].isna().any():
                continue
            values = out[parent].drop_duplicates(join).set_index(join)[column]
            frame = out[name]
            frame[column] = frame[column].where(frame[column].notna(),
                                                frame[join].map(values))
    return out


def require_valid(tables: Mapping[str, pd.DataFrame]) -> ValidatedTables:
    """Validate canonical frames; raise ``InvalidInput`` when any record would be quarantined."""
    if isinstance(tables, ValidatedTables):
        return tables
    result = validate_canonical(with_defaults(tables), source_controls=False)
    if len(result.quarantine):
        raise InvalidInput(result.quarantine)
    return ValidatedTables(result.accepted, _VALIDATED)
