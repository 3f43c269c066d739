"""The interchange folder: canonical CSVs (decimal strings) in, finance output CSVs out.

Reading converts decimal money strings to integer minor units of the row's currency (refusing
more decimals than the currency has) and timestamps to naive UTC, then validates the tables with
the pipeline's own rules (``q2c_pipeline.schemas.validation``: pandera models and reference data).
Anything refused raises ``InterchangeError`` listing every problem with its file, line, column and
rule. Writing turns minor units back into decimal strings with fixed column order and row order,
so the same result always gives the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from difflib import get_close_matches
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from q2c_pipeline.accounting.journals import RULE_VERSION
from q2c_pipeline.core.money import from_minor, minor_exponent, to_minor
from q2c_pipeline.core.policy import Policy, load_policy
from q2c_pipeline.engine import EngineResult
from q2c_pipeline.schemas import (
    CANONICAL_TABLES,
    COLUMN_DEFAULTS,
    INHERITED_DEFAULTS,
    timestamp_columns,
)
from q2c_pipeline.schemas.validation import ValidatedTables, validate_canonical

# table -> {money column: where its currency comes from}
_MONEY = {
    "contracts": {"transaction_price": "currency"},
    "contract_lines": {"amount": "contract", "ssp_amount": "contract"},
    "products": {"ssp_amount": "ssp_currency"},
    "invoice_lines": {"amount": "invoice", "tax_amount": "invoice", "discount_amount": "invoice"},
    "credit_notes": {"amount": "currency", "tax_amount": "currency",
                     "discount_amount": "currency"},
    "payments": {"amount": "currency", "tax_amount": "currency"},
    "refunds": {"amount": "currency"},
    "usage": {"amount": "currency"},
}
_BOOLS = {"invoice_lines": ["tax_inclusive", "is_proration"]}
_FLOATS = {"contract_lines": ["quantity"], "invoice_lines": ["quantity"], "usage": ["quantity"]}
_INTS = {"contracts": ["version"]}
_NULLABLE_INTS = {"contract_lines": ["version"], "products": ["ssp_term_months"]}
_DEFAULTS = {table: {column: str(value).lower() for column, value in columns.items()}
             for table, columns in COLUMN_DEFAULTS.items()}

OUTPUT_MONEY = {
    "allocation": ["ssp_amount", "transaction_price", "allocated_amount",
                   "inception_allocated_amount", "deferred_reductions"],
    "revenue_schedule": ["amount", "amount_functional", "stated_amount"],
    "journal_lines": ["debit", "credit", "debit_functional", "credit_functional"],
    "account_balances": ["movement", "closing_balance", "movement_functional",
                         "closing_balance_functional"],
    "contract_positions": ["deferred_revenue", "contract_asset", "unbilled_receivable",
                           "refund_liability", "net_contract_position"],
}


@dataclass(frozen=True)
class Problem:
    """One refused value or record of an interchange folder: where it is and which rule it
    breaks (the pipeline's quarantine rule names)."""

    file: str
    line: int | None
    column: str | None
    rule: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f": line {self.line}"
        if self.column:
            where += (f", column {self.column}" if self.line is not None
                      else f": column {self.column}")
        return f"{where}: {self.message} [{self.rule}]"


class InterchangeError(ValueError):
    """The folder is refused; ``problems`` lists every refused value or record."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _cell(file: str, index: int, column: str, value: str, rule: str, why: str) -> Problem:
    return Problem(file, index + 2, column, rule, f"{value!r} {why}")


def _parse_ts(file, column, values: pd.Series, problems: list[Problem]) -> pd.Series:
    out = []
    for i, value in enumerate(values):
        if value == "":
            out.append(pd.NaT)
            continue
        try:
            stamp = pd.Timestamp(value)
        except ValueError:
            problems.append(_cell(file, i, column, value, "invalid_format",
                                  "is not an ISO 8601 date"))
            out.append(pd.NaT)
            continue
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        out.append(stamp)
    return pd.Series(pd.to_datetime(pd.Series(out, dtype="datetime64[ns]")), index=values.index)


def _exact_minor(value: str, currency: str) -> int:
    """Decimal string in major units -> minor units, refusing more decimals than the currency
    has (10.005 USD, 100.5 JPY): the folder states money, it is not rounded silently."""
    amount = Decimal(value.strip())
    if not amount.is_finite():
        raise InvalidOperation
    scaled = amount.scaleb(minor_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ArithmeticError(minor_exponent(currency))
    return to_minor(value, currency)


# Columns the reader fills itself (source_system "interchange", source_id and correlation_id
# from the record's key) and tables a table cannot be read without.
_AUTOMATIC = ("source_system", "source_id", "correlation_id")
_NEEDS = {
    "contract_lines": [("contracts", "names contracts"),
                       ("products", "names products (their revenue pattern and SSP)")],
    "contracts": [("customers", "names customers"), ("legal_entities", "names legal entities")],
    "invoices": [("customers", "names customers")],
    "invoice_lines": [("invoices", "names invoices")],
}


def _read_raw(root: Path, problems: list[Problem]) -> dict[str, pd.DataFrame]:
    raw: dict[str, pd.DataFrame] = {}
    for path in sorted(root.glob("*.csv")):
        name = path.stem
        if name not in CANONICAL_TABLES and name != "treatments":
            problems.append(Problem(path.name, None, None, "unknown_file",
                                    "is not a canonical table (see docs/canonical-model.md)"))
            continue
        if name == "treatments":
            continue
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        except pd.errors.EmptyDataError:
            problems.append(Problem(path.name, None, None, "empty_file",
                                    "is empty: a table needs at least its header line"))
            continue
        except (pd.errors.ParserError, UnicodeDecodeError) as error:
            problems.append(Problem(path.name, None, None, "unreadable_file",
                                    f"is not a readable CSV: {error}"))
            continue
        # cells are read as text; spaces around a value are never part of it
        frame.columns = [str(c).strip() for c in frame.columns]
        frame = frame.apply(lambda c: c.str.strip())
        schema = CANONICAL_TABLES[name][0].to_schema().columns
        columns = set(schema)
        for column, spec in schema.items():
            if column in frame.columns or spec.nullable or column in _AUTOMATIC \
                    or column in _DEFAULTS.get(name, {}) \
                    or column in INHERITED_DEFAULTS.get(name, {}):
                continue
            near = get_close_matches(column, [c for c in frame.columns if c not in columns], 1)
            hint = f" (is {near[0]!r} a misspelling of it?)" if near else ""
            problems.append(Problem(path.name, 1, column, "missing_column",
                                    f"is a required column of {name} and is missing{hint}"))
        for column in frame.columns:
            if column not in columns:
                near = get_close_matches(column, sorted(columns), 1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                problems.append(Problem(path.name, 1, column, "unknown_column",
                                        f"{column!r} is not a column of {name}{hint}"))
        raw[name] = frame
    for child, parents in _NEEDS.items():
        for parent, why in parents:
            if child in raw and len(raw[child]) and parent not in raw \
                    and not (root / f"{parent}.csv").exists():
                problems.append(Problem(f"{parent}.csv", None, None, "missing_file",
                                        f"is missing: {child}.csv {why}"))
    return raw


def _line_of(frames: dict[str, pd.DataFrame], table: str, record_id: str) -> list[int]:
    frame = frames.get(table)
    if frame is None:
        return []
    keys = CANONICAL_TABLES[table][1]
    ids = frame[keys].apply(
        lambda row: "|".join("" if pd.isna(v) else str(v) for v in row), axis=1)
    return [int(i) + 2 for i in np.flatnonzero(ids.to_numpy() == record_id)]


def read_interchange(directory: str | Path) -> tuple[ValidatedTables, Policy]:
    """Canonical tables (money in minor units), validated as the pipeline validates, and the
    policy of an interchange folder. Raises ``InterchangeError`` listing every problem."""
    root = Path(directory)
    if not root.is_dir():
        raise InterchangeError([Problem(str(root), None, None, "missing_folder",
                                        "is not a folder")])
    problems: list[Problem] = []
    raw = _read_raw(root, problems)
    tables: dict[str, pd.DataFrame] = {}
    for name, frame in raw.items():
        file = f"{name}.csv"
        model = CANONICAL_TABLES[name][0]
        frame = frame.copy()
        for column, default in _DEFAULTS.get(name, {}).items():
            if column not in frame.columns:
                frame[column] = default
            frame[column] = frame[column].where(frame[column] != "", default)
        for column in model.to_schema().columns:
            if column not in frame.columns:
                frame[column] = ""
        frame = frame[[c for c in frame.columns if c in model.to_schema().columns]]
        if "source_system" in model.to_schema().columns:
            key = frame.columns[0]
            frame["source_system"] = frame["source_system"].where(
                frame["source_system"] != "", "interchange")
            frame["source_id"] = frame["source_id"].where(frame["source_id"] != "", frame[key])
            frame["correlation_id"] = frame["correlation_id"].where(
                frame["correlation_id"] != "", frame[key])
        for column in timestamp_columns(name):
            frame[column] = _parse_ts(file, column, frame[column], problems)
        for column in _BOOLS.get(name, []):
            lowered = frame[column].str.strip().str.lower()
            bad = ~lowered.isin(["true", "false", "1", "0"])
            for i in np.flatnonzero(bad.to_numpy()):
                problems.append(_cell(file, int(i), column, frame[column].iloc[i],
                                      "invalid_value", "is not true/false"))
            frame[column] = lowered.isin(["true", "1"])
        for column in _FLOATS.get(name, []) + _INTS.get(name, []) + _NULLABLE_INTS.get(name, []):
            text = frame[column].str.strip()
            numbers = []
            for i, value in enumerate(text):
                try:
                    number = Decimal(value) if value != "" else None
                    if number is not None and not number.is_finite():
                        raise InvalidOperation
                except InvalidOperation:
                    problems.append(_cell(file, i, column, frame[column].iloc[i],
                                          "invalid_type", "is not a number"))
                    number = None
                whole = column not in _FLOATS.get(name, [])
                if whole and number is not None and number != number.to_integral_value():
                    problems.append(_cell(file, i, column, frame[column].iloc[i],
                                          "invalid_type", "is not a whole number"))
                    number = None
                numbers.append(number)
            if column in _FLOATS.get(name, []):
                frame[column] = pd.Series([np.nan if n is None else float(n) for n in numbers],
                                          index=frame.index, dtype="float64")
            else:
                frame[column] = pd.Series([None if n is None else int(n) for n in numbers],
                                          index=frame.index, dtype="Int64")
        for column in ("currency", "ssp_currency", "from_currency", "to_currency",
                       "functional_currency"):
            if column in frame.columns:
                frame[column] = frame[column].str.strip().str.upper()
        tables[name] = frame.replace({"": None})
    currency_of = {
        "contract": tables.get("contracts", pd.DataFrame(columns=["contract_id", "currency"]))
        .drop_duplicates("contract_id").set_index("contract_id")["currency"],
        "invoice": tables.get("invoices", pd.DataFrame(columns=["invoice_id", "currency"]))
        .drop_duplicates("invoice_id").set_index("invoice_id")["currency"],
    }
    for name, columns in _MONEY.items():
        if name not in tables:
            continue
        frame = tables[name]
        if name in ("credit_notes", "refunds") and frame["currency"].isna().any():
            frame["currency"] = frame["currency"].where(
                frame["currency"].notna(), frame["invoice_id"].map(currency_of["invoice"]))
        for column, source in columns.items():
            if source == "contract":
                currency = frame["contract_id"].map(currency_of["contract"])
            elif source == "invoice":
                currency = frame["invoice_id"].map(currency_of["invoice"])
            else:
                currency = frame[source]
            # a currency column missing from its file is reported once (missing_column), not
            # again on every amount that needs it
            parent = {"contract": "contracts", "invoice": "invoices"}.get(source, name)
            column_of = "currency" if source in ("contract", "invoice") else source
            currency_missing = parent in raw and column_of not in raw[parent].columns
            values = []
            for i, (value, cur) in enumerate(zip(frame[column], currency, strict=True)):
                if value is None:
                    values.append(None)
                    continue
                if not isinstance(cur, str) and currency_missing:
                    values.append(None)
                    continue
                if not isinstance(cur, str):
                    problems.append(_cell(f"{name}.csv", i, column, value, "unknown_currency",
                                          "has no known currency"))
                    values.append(None)
                    continue
                try:
                    values.append(_exact_minor(value, cur))
                except InvalidOperation:
                    problems.append(_cell(f"{name}.csv", i, column, value, "invalid_type",
                                          "is not a decimal"))
                    values.append(None)
                except ArithmeticError as places:
                    problems.append(_cell(
                        f"{name}.csv", i, column, value, "too_precise",
                        f"has more decimals than {cur} allows ({places.args[0]})"))
                    values.append(None)
            frame[column] = pd.Series(values, index=frame.index, dtype="Int64")
        tables[name] = frame
    policy_path = root / "policy.yaml"
    policy = Policy()
    try:
        policy = load_policy(policy_path if policy_path.exists() else None)
    except (ValueError, yaml.YAMLError) as error:
        problems.append(Problem("policy.yaml", None, None, "invalid_policy", str(error)))
    if problems:
        raise InterchangeError(problems)
    result = validate_canonical(tables)
    if len(result.quarantine):
        refused = []
        for row in result.quarantine.itertuples(index=False):
            lines = _line_of(tables, row.source_table, row.record_id)
            message = row.reason.split(": ", 1)[-1] if row.reason else row.rule
            for line in lines or [None]:
                refused.append(Problem(f"{row.source_table}.csv", line, row.field, row.rule,
                                       message))
        raise InterchangeError(sorted(refused, key=lambda p: (p.file, p.line or 0)))
    return result.tables(), policy


def _money_strings(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    out = frame.copy()
    for column in columns:
        if column in out.columns:
            out[column] = [
                "" if pd.isna(v) else from_minor(int(v), c)
                for v, c in zip(out[column], out["currency"], strict=True)
            ]
    return out


def write_outputs(result: EngineResult, directory: str | Path, as_of: date | None = None) -> None:
    """allocation.csv, revenue_schedule.csv, journal_lines.csv, account_balances.csv,
    contract_positions.csv and manifest.json.

    Every money column is a decimal string in major units: of the row's ``currency``, and
    ``*_functional`` columns of its ``functional_currency``. ``manifest.json`` states that per
    column, with the as-of date, the ledger rule version and the row counts; the same result
    always gives the same bytes.
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    manifest: dict = {"as_of": None if as_of is None else as_of.isoformat(),
                      "ledger_rules": RULE_VERSION, "files": {}}
    for name, columns in OUTPUT_MONEY.items():
        frame = getattr(result, name)
        plain = [c for c in columns if not c.endswith("_functional")]
        functional = [c for c in columns if c.endswith("_functional")]
        out = _money_strings(frame, plain)
        if functional and "functional_currency" in frame.columns:
            swapped = frame.assign(currency=frame["functional_currency"])
            converted = _money_strings(swapped, functional)
            for column in functional:
                out[column] = converted[column]
        text = out.to_csv(index=False, lineterminator="\n")
        (root / f"{name}.csv").write_bytes(text.encode("utf-8"))
        manifest["files"][f"{name}.csv"] = {
            "rows": len(out),
            "money_columns": {
                c: ("major units of functional_currency" if c in functional
                    else "major units of currency")
                for c in columns if c in out.columns},
        }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    (root / "manifest.json").write_bytes(text.encode("utf-8"))
