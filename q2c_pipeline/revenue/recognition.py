"""Recognition events: when each obligation's revenue enters the books, and usage.

``journal_granularity: period`` books one recognition per obligation and month, dated at the
month's end; ``day`` one per obligation and day its service covers (a month's amount shared by
cumulative half-up rounding, ``split_months_into_days``), a catch-up on its own day. Usage is
recognized when it occurs (variable consideration allocated to the period it relates to, ASC
606-10-32-40); the invoice line that bills it settles the difference between billed and rated
usage as revenue when it is billed (the billed amount is the resolved consideration), so a usage
position never keeps a balance that nothing releases. A one-time payment with no invoice is
recognized when paid, net of the tax inside it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from q2c_pipeline.core.calendar import period_end_dates
from q2c_pipeline.core.rounding import mul_div_half_up
from q2c_pipeline.revenue.book import timestamp_of_day
from q2c_pipeline.revenue.contracts import ContractFacts
from q2c_pipeline.revenue.schedules import split_months_into_days

RECOGNITION_COLUMNS = [
    "event_id", "source_type", "source_id", "position_key", "date", "month", "amount", "stated",
    "kind",
]


def _windows(facts: ContractFacts) -> pd.DataFrame:
    """Each obligation's final service window and booking floor (for the day split)."""
    ob = facts.obligations[["source_type", "source_id", "start", "end", "floor"]].copy()
    ob = ob.set_index(["source_type", "source_id"])
    for key, book_ob in facts.run.obligations.items():
        start = timestamp_of_day(book_ob.start_day)
        end = timestamp_of_day(book_ob.end_day) if book_ob.pattern == "ratable" else pd.NaT
        floor = timestamp_of_day(book_ob.floor_day) if book_ob.floor_day is not None else pd.NaT
        ob.loc[key, ["start", "end", "floor"]] = [start, end, floor]
    for column in ("start", "end", "floor"):
        ob[column] = pd.to_datetime(ob[column])
    return ob


def obligation_recognition(facts: ContractFacts, granularity: str,
                           daily_rounding: str = "cumulative") -> pd.DataFrame:
    """Recognition events of contract-line and invoice-line obligations."""
    rows = facts.schedule
    if len(rows) == 0:
        return pd.DataFrame(columns=RECOGNITION_COLUMNS)
    position = facts.obligations.set_index(["source_type", "source_id"])["revenue_contract_id"]
    for key, book_ob in facts.run.obligations.items():
        position.loc[key] = book_ob.revenue_contract_id
    stated = rows["stated"]
    rows = rows.assign(stated=stated.where(stated.notna(), rows["amount"]).astype("int64"))
    if granularity == "period":
        grouped = rows.groupby(["source_type", "source_id", "month"], as_index=False,
                               sort=True)[["amount", "stated"]].sum()
        grouped["date"] = period_end_dates(grouped["month"].to_numpy())
        grouped["kind"] = "period"
    else:
        windows = _windows(facts)
        service = rows[rows["day"].isna()]
        key = pd.MultiIndex.from_frame(service[["source_type", "source_id"]])
        win = windows.reindex(key)
        split = []
        for column in ("amount", "stated"):
            days = split_months_into_days(
                service[column].to_numpy(), service["month"].to_numpy(),
                win["start"].to_numpy(), win["end"].to_numpy(), win["floor"].to_numpy(),
                daily_rounding)
            part = service.iloc[days["row"].to_numpy()][["source_type", "source_id", "month"]]
            part = part.reset_index(drop=True).assign(date=days["day"].to_numpy())
            part[column] = days["amount"].to_numpy()
            part["other"] = column
            split.append(part)
        points = rows[rows["day"].notna()][["source_type", "source_id", "month", "day",
                                            "amount", "stated"]].rename(columns={"day": "date"})
        both = pd.concat([split[0], split[1], points], ignore_index=True)
        both[["amount", "stated"]] = both[["amount", "stated"]].fillna(0).astype("int64")
        grouped = both.groupby(["source_type", "source_id", "date"], as_index=False,
                               sort=True).agg(month=("month", "first"), amount=("amount", "sum"),
                                              stated=("stated", "sum"))
        grouped["kind"] = "day"
    grouped = grouped[(grouped["amount"] != 0) | (grouped["stated"] != 0)]
    grouped["position_key"] = pd.MultiIndex.from_frame(
        grouped[["source_type", "source_id"]]).map(position)
    label = grouped["date"].dt.strftime("%Y-%m-%d") if granularity == "day" else \
        grouped["month"].astype(str)
    grouped["event_id"] = "rec|" + grouped["source_type"] + "|" + grouped["source_id"] + "|" \
        + label
    return grouped[RECOGNITION_COLUMNS].reset_index(drop=True)


USAGE_COLUMNS = [
    "usage_id", "source_id", "invoice_line_id", "position_key", "contract_id", "legal_entity",
    "customer_id", "correlation_id", "currency", "amount", "date", "product_code",
]


def usage_obligations(t: dict[str, pd.DataFrame], lines: pd.DataFrame,
                      comps: pd.DataFrame) -> pd.DataFrame:
    """One row per usage event: its position, entity and amount, recognized when it occurs.

    The entity is the contract's (through the usage's contract line, else the invoice line that
    bills it), else the customer's.
    """
    usage = t["usage"].drop_duplicates("usage_id").copy()
    customers = t["customers"].set_index("customer_id")
    by_line = lines.set_index("invoice_line_id")
    contract = usage["contract_line_id"].map(comps.set_index("contract_line_id")["contract_id"]) \
        if len(comps) else pd.Series(pd.NA, index=usage.index)
    contract = contract.where(contract.notna(), usage["invoice_line_id"].map(
        by_line["contract_id"]))
    customer = usage["customer_id"].where(usage["customer_id"].notna(),
                                          usage["invoice_line_id"].map(by_line["customer_id"]))
    heads = comps.drop_duplicates("contract_id").set_index("contract_id") if len(comps) else None
    entity = contract.map(heads["legal_entity"]) if heads is not None else pd.Series(
        pd.NA, index=usage.index)
    entity = entity.where(entity.notna(), customer.map(customers["legal_entity"]))
    entity = entity.where(entity.notna(), usage["invoice_line_id"].map(by_line["revenue_entity"]))
    if heads is not None:
        customer = customer.where(customer.notna(), contract.map(heads["customer_id"]))
    key = "usage|" + contract.where(contract.notna(), customer).astype(str)
    key = usage["invoice_line_id"].map(by_line["position_key"]).where(
        usage["invoice_line_id"].notna(), key)
    key = key.where(key.notna(), "usage|" + customer.astype(str))
    if entity.isna().any():
        bad = usage.loc[entity.isna(), "usage_id"].iloc[0]
        raise ValueError(f"usage: no legal entity for usage {bad!r}")
    correlation = usage["correlation_id"].where(usage["correlation_id"].notna(),
                                                contract.where(contract.notna(),
                                                               usage["usage_id"]))
    return pd.DataFrame({
        "usage_id": usage["usage_id"], "source_id": usage["usage_id"],
        "invoice_line_id": usage["invoice_line_id"], "position_key": key,
        "contract_id": contract, "legal_entity": entity, "customer_id": customer,
        "correlation_id": correlation, "currency": usage["currency"],
        "amount": usage["amount"].astype("int64"), "date": usage["occurred_at"],
        "product_code": usage["product_code"],
    })[USAGE_COLUMNS].reset_index(drop=True)


def usage_true_ups(usage: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """Per usage invoice line: billed (pre-tax) less the rated usage it bills, recognized when
    the line is booked. The usage a line bills: the usage rows naming it, else the usage of the
    same position (and product, when both name one) in the line's service period that names no
    line (the earliest such line takes a row two periods would share)."""
    billed = lines[lines["role"] == "usage"]
    columns = ["invoice_line_id", "position_key", "date", "amount", "billed", "rated"]
    if len(billed) == 0:
        return pd.DataFrame(columns=columns)
    named = usage[usage["invoice_line_id"].notna()].groupby("invoice_line_id")["amount"].sum()
    free = usage[usage["invoice_line_id"].isna()]
    open_lines = billed[~billed["invoice_line_id"].isin(named.index)
                        & billed["service_start"].notna() & billed["service_end"].notna()]
    matched = pd.Series(dtype="int64")
    if len(open_lines) and len(free):
        pairs = open_lines[["invoice_line_id", "position_key", "product_code", "service_start",
                            "service_end"]].merge(
            free[["usage_id", "position_key", "product_code", "date", "amount"]],
            on="position_key", suffixes=("", "_usage"))
        same_product = pairs["product_code"].isna() | pairs["product_code_usage"].isna() | (
            pairs["product_code"] == pairs["product_code_usage"])
        inside = (pairs["date"] >= pairs["service_start"]) & (pairs["date"] < pairs["service_end"])
        pairs = pairs[same_product & inside].sort_values(["usage_id", "service_start",
                                                         "invoice_line_id"], kind="mergesort")
        pairs = pairs.drop_duplicates("usage_id")
        matched = pairs.groupby("invoice_line_id")["amount"].sum()
    rated = billed["invoice_line_id"].map(named).fillna(0) + billed["invoice_line_id"].map(
        matched).fillna(0)
    out = pd.DataFrame({
        "invoice_line_id": billed["invoice_line_id"], "position_key": billed["position_key"],
        "date": billed["booking_date"], "billed": billed["pre_tax"].astype("int64"),
        "rated": rated.astype("int64")})
    out["amount"] = out["billed"] - out["rated"]
    return out[columns].reset_index(drop=True)


def payment_obligations(t: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One-time charges paid with no invoice: recognized when paid, net of the tax inside them
    (``tax_amount``, else the customer's tax code: gross x rate / (1 + rate), half-up)."""
    pay = t["payments"][t["payments"]["invoice_id"].isna()].copy()
    customers = t["customers"].set_index("customer_id")
    entity = pay["customer_id"].map(customers["legal_entity"])
    if entity.isna().any():
        bad = pay.loc[entity.isna(), "payment_id"].iloc[0]
        raise ValueError(f"payments: no invoice and no known customer for payment {bad!r}")
    rate = pay["customer_id"].map(customers["tax_region"]).map(
        t["tax_codes"].set_index("tax_code")["rate_bps"]) if len(t["tax_codes"]) else \
        pd.Series(np.nan, index=pay.index)
    rate = pd.to_numeric(rate, errors="coerce").fillna(0).astype("int64").to_numpy()
    gross = pay["amount"].astype("int64").to_numpy()
    derived = mul_div_half_up(gross, rate, 10_000 + rate)
    stated = pd.to_numeric(pay["tax_amount"], errors="coerce")
    tax = np.where(stated.notna(), stated.fillna(0).astype("int64"), derived).astype("int64")
    return pd.DataFrame({
        "payment_id": pay["payment_id"], "position_key": "payment|" + pay["payment_id"],
        "legal_entity": entity, "customer_id": pay["customer_id"],
        "correlation_id": pay["correlation_id"].where(pay["correlation_id"].notna(),
                                                      pay["payment_id"]),
        "currency": pay["currency"], "gross": gross, "tax": tax, "pre_tax": gross - tax,
        "date": pay["paid_at"], "product_code": pay["product_code"],
    }).reset_index(drop=True)
