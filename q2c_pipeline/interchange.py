"""The interchange folder: canonical CSVs (decimal strings) in, finance output CSVs out.

Reading converts decimal money strings to integer minor units of the row's currency and
timestamps to naive UTC; a bad value raises ValueError naming the file, the line and the column.
Writing turns minor units back into decimal strings with fixed column order and row order, so the
same result always gives the same bytes.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path

import pandas as pd

from q2c_pipeline.core.money import from_minor, to_minor
from q2c_pipeline.core.policy import Policy, load_policy
from q2c_pipeline.engine import EngineResult
from q2c_pipeline.schemas import CANONICAL_TABLES, timestamp_columns

# table -> {money column: where its currency comes from}
_MONEY = {
    "contracts": {"transaction_price": "currency"},
    "contract_lines": {"amount": "contract", "ssp_amount": "contract"},
    "products": {"ssp_amount": "ssp_currency"},
    "invoice_lines": {"amount": "invoice", "tax_amount": "invoice"},
    "credit_notes": {"amount": "currency", "tax_amount": "currency"},
    "payments": {"amount": "currency", "tax_amount": "currency"},
    "refunds": {"amount": "currency"},
    "usage": {"amount": "currency"},
}
_BOOLS = {"invoice_lines": ["tax_inclusive", "is_proration"]}
_FLOATS = {"contract_lines": ["quantity"], "invoice_lines": ["quantity"], "usage": ["quantity"]}
_INTS = {"contracts": ["version"]}
_NULLABLE_INTS = {"contract_lines": ["version"], "products": ["ssp_term_months"]}
_DEFAULTS = {"contracts": {"version": "1"}, "invoice_lines": {"tax_amount": "0",
             "tax_inclusive": "false", "is_proration": "false"},
             "credit_notes": {"tax_amount": "0"}, "invoices": {"status": "open"}}

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


def _fail(file: str, index: int, column: str, value: str, why: str) -> ValueError:
    return ValueError(f"{file}: line {index + 2}, column {column}: {value!r} {why}")


def _parse_ts(file, column, values: pd.Series) -> pd.Series:
    out = []
    for i, value in enumerate(values):
        if value == "":
            out.append(pd.NaT)
            continue
        try:
            stamp = pd.Timestamp(value)
        except ValueError as error:
            raise _fail(file, i, column, value, "is not an ISO 8601 date") from error
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        out.append(stamp)
    return pd.Series(pd.to_datetime(pd.Series(out, dtype="datetime64[ns]")), index=values.index)


def read_interchange(directory: str | Path) -> tuple[dict[str, pd.DataFrame], Policy]:
    """Canonical frames (money in minor units) and the policy from an interchange folder."""
    root = Path(directory)
    raw: dict[str, pd.DataFrame] = {}
    for name in CANONICAL_TABLES:
        path = root / f"{name}.csv"
        if path.exists():
            raw[name] = pd.read_csv(path, dtype=str, keep_default_na=False)
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
        if "source_system" in model.to_schema().columns:
            key = frame.columns[0]
            frame["source_system"] = frame["source_system"].where(
                frame["source_system"] != "", "interchange")
            frame["source_id"] = frame["source_id"].where(frame["source_id"] != "", frame[key])
            frame["correlation_id"] = frame["correlation_id"].where(
                frame["correlation_id"] != "", frame[key])
        for column in timestamp_columns(name):
            frame[column] = _parse_ts(file, column, frame[column])
        for column in _BOOLS.get(name, []):
            lowered = frame[column].str.strip().str.lower()
            bad = ~lowered.isin(["true", "false", "1", "0"])
            if bad.any():
                i = int(bad.to_numpy().nonzero()[0][0])
                raise _fail(file, i, column, frame[column].iloc[i], "is not true/false")
            frame[column] = lowered.isin(["true", "1"])
        for column in _FLOATS.get(name, []) + _INTS.get(name, []) + _NULLABLE_INTS.get(name, []):
            for i, value in enumerate(frame[column]):
                try:
                    Decimal(value) if value != "" else None
                except InvalidOperation as error:
                    raise _fail(file, i, column, value, "is not a number") from error
            numbers = pd.to_numeric(frame[column].replace("", None))
            if column in _NULLABLE_INTS.get(name, []):
                fractional = numbers.notna() & (numbers != numbers.round())
                if fractional.any():
                    i = int(fractional.to_numpy().nonzero()[0][0])
                    raise _fail(file, i, column, frame[column].iloc[i], "is not a whole number")
                frame[column] = numbers.astype("Int64")
                continue
            frame[column] = numbers.astype("int64") if column in _INTS.get(name, []) else numbers
        for column in ("currency", "ssp_currency", "from_currency", "to_currency",
                       "functional_currency"):
            if column in frame.columns:
                frame[column] = frame[column].str.strip().str.upper()
        tables[name] = frame.replace({"": None})
    currency_of = {
        "contract": tables.get("contracts", pd.DataFrame(columns=["contract_id", "currency"]))
        .drop_duplicates("contract_id").set_index("contract_id")["currency"],
        "invoice": tables.get("invoices", pd.DataFrame(columns=["invoice_id", "currency"]))
        .set_index("invoice_id")["currency"],
    }
    for name, columns in _MONEY.items():
        if name not in tables:
            continue
        frame = tables[name]
        if name == "credit_notes" and frame["currency"].isna().any():
            frame["currency"] = frame["currency"].where(
                frame["currency"].notna(), frame["invoice_id"].map(currency_of["invoice"]))
        if name == "refunds" and frame["currency"].isna().any():
            frame["currency"] = frame["currency"].where(
                frame["currency"].notna(), frame["invoice_id"].map(currency_of["invoice"]))
        for column, source in columns.items():
            if source == "contract":
                currency = frame["contract_id"].map(currency_of["contract"])
            elif source == "invoice":
                currency = frame["invoice_id"].map(currency_of["invoice"])
            else:
                currency = frame[source]
            values = []
            for i, (value, cur) in enumerate(zip(frame[column], currency, strict=True)):
                if value is None:
                    values.append(None)
                    continue
                if not isinstance(cur, str):
                    raise _fail(f"{name}.csv", i, column, value, "has no known currency")
                try:
                    values.append(to_minor(value, cur))
                except (InvalidOperation, ValueError) as error:
                    raise _fail(f"{name}.csv", i, column, value, "is not a decimal") from error
            series = pd.Series(values, index=frame.index, dtype="Int64")
            frame[column] = series if series.isna().any() else series.astype("int64")
        tables[name] = frame
    policy_path = root / "policy.yaml"
    policy = load_policy(policy_path if policy_path.exists() else None)
    return tables, policy


def _money_strings(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    out = frame.copy()
    for column in columns:
        if column in out.columns:
            out[column] = [
                "" if pd.isna(v) else from_minor(int(v), c)
                for v, c in zip(out[column], out["currency"], strict=True)
            ]
    return out


def write_outputs(result: EngineResult, directory: str | Path) -> None:
    """allocation.csv, revenue_schedule.csv, journal_lines.csv, account_balances.csv.

    ``*_functional`` amounts are written in the functional currency's minor-unit exponent.
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
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
