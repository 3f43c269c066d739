"""The revenue and ledger engine: canonical frames in, allocation/schedule/journals/balances out.

Pure: no I/O, no clock. Everything known after ``as_of`` is ignored, so the result as of any date
is reproducible from the same input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from q2c_pipeline.accounting.balances import build_account_balances
from q2c_pipeline.accounting.journals import (
    build_journal_lines,
    build_remeasurement_postings,
    position_postings,
    post_intercompany_pairs,
    sort_journal_lines,
    split_position,
)
from q2c_pipeline.accounting.usage_summary import (
    MAX_LINES_PER_ENTRY,
    SummaryMode,
    fingerprint_events,
    summary_line_ids,
)
from q2c_pipeline.core.calendar import month_index, period_end_dates, period_labels
from q2c_pipeline.core.fx import RateBook
from q2c_pipeline.core.policy import Policy
from q2c_pipeline.core.rounding import distribute_by_weight, mul_div_half_up
from q2c_pipeline.revenue.allocation import (
    allocate_transaction_price,
    build_components,
    summarize_allocation,
)
from q2c_pipeline.revenue.recognition import (
    OBLIGATION_COLUMNS,
    build_schedule,
    contract_line_obligations,
)
from q2c_pipeline.revenue.reductions import apply_reductions
from q2c_pipeline.revenue.schedules import split_months_into_days
from q2c_pipeline.schemas import CANONICAL_TABLES, timestamp_columns

SCHEDULE_COLUMNS = [
    "source_type", "source_id", "contract_id", "legal_entity", "period", "amount", "currency",
    "amount_functional", "schedule_version", "customer_id", "correlation_id", "treatment",
    "functional_currency",
]

# A product's usage summary books at most Revenue, DeferredRevenue and UnbilledAccountsReceivable.
_USAGE_LINES_PER_PRODUCT = 3

_EVENT_DATES = {
    "contracts": "signed_date", "invoices": "finalized_at", "credit_notes": "issued_at",
    "payments": "paid_at", "refunds": "refunded_at", "invoice_events": "occurred_at",
    "usage": "occurred_at",
}


@dataclass(frozen=True)
class EngineResult:
    """The four finance outputs (../shared/canonical-model.md "Outputs")."""

    allocation: pd.DataFrame
    revenue_schedule: pd.DataFrame
    journal_lines: pd.DataFrame
    account_balances: pd.DataFrame


def _prepare(tables: Mapping[str, pd.DataFrame], as_of: date) -> dict[str, pd.DataFrame]:
    """Every canonical table present with all its columns, cut to what was known by ``as_of``."""
    cutoff = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    out: dict[str, pd.DataFrame] = {}
    for name, (model, _keys) in CANONICAL_TABLES.items():
        columns = list(model.to_schema().columns)
        frame = tables.get(name)
        frame = pd.DataFrame(columns=columns) if frame is None else frame.copy()
        for column in columns:
            if column not in frame.columns:
                frame[column] = pd.NA
        for column in timestamp_columns(name):
            frame[column] = pd.to_datetime(frame[column])
        if name == "contract_lines" and len(frame):
            frame = _date_amendments(frame, out["contracts_all"], cutoff)
        if name == "contracts":
            out["contracts_all"] = frame.reset_index(drop=True)
        if name in _EVENT_DATES:
            frame = frame[frame[_EVENT_DATES[name]] < cutoff]
        out[name] = frame.reset_index(drop=True)
    del out["contracts_all"]
    notes = out["credit_notes"]
    notes["voided_at"] = notes["voided_at"].where(notes["voided_at"] < cutoff, pd.NaT)
    return out


def _date_amendments(lines: pd.DataFrame, contracts: pd.DataFrame,
                     cutoff: pd.Timestamp) -> pd.DataFrame:
    """Each amendment delta's contract version, and only the deltas signed before ``cutoff``.

    A delta belongs to the version >= 2 of its contract signed nearest its ``effective_date``
    (Salesforce CPQ signs a version on the amendment's effective date; ties go to the earlier
    version). A delta whose version is unknown or signed after the cutoff is not known yet.
    """
    versions = contracts.assign(version=pd.to_numeric(contracts["version"]).fillna(1))
    later = versions[versions["version"] >= 2][["contract_id", "version", "signed_date"]]
    own = lines["revises_line_id"].notna()
    root = lines.set_index("contract_line_id")["contract_id"]
    contract = lines["contract_id"].where(lines["contract_id"].notna(),
                                          lines["revises_line_id"].map(root))
    deltas = pd.DataFrame({"row": lines.index[own], "contract_id": contract[own].to_numpy(),
                           "effective": pd.to_datetime(lines.loc[own, "effective_date"])})
    pairs = deltas.merge(later, on="contract_id", how="inner")
    pairs["distance"] = (pairs["signed_date"] - pairs["effective"].fillna(
        pairs["signed_date"])).abs()
    best = pairs.sort_values(["row", "distance", "version"], kind="mergesort").drop_duplicates(
        "row")
    out = lines.copy()
    out["amendment_version"] = pd.Series(best["version"].to_numpy(), index=best["row"]).reindex(
        out.index)
    out["amendment_signed"] = pd.to_datetime(pd.Series(
        best["signed_date"].to_numpy(), index=best["row"]).reindex(out.index))
    known = ~own | (out["amendment_signed"] < cutoff)
    return out[known].reset_index(drop=True)


def _headers(contracts: pd.DataFrame) -> pd.DataFrame:
    """Latest version per contract, with the first version's number, signing date and price."""
    ordered = contracts.sort_values(["contract_id", "version"], kind="mergesort")
    latest = ordered.drop_duplicates("contract_id", keep="last").copy()
    earliest = ordered.drop_duplicates("contract_id", keep="first").set_index("contract_id")
    first = ordered.groupby("contract_id")["signed_date"].min()
    latest["first_signed_date"] = latest["contract_id"].map(first)
    latest["first_version"] = latest["contract_id"].map(earliest["version"]).astype("int64")
    latest["first_transaction_price"] = latest["contract_id"].map(earliest["transaction_price"])
    latest["version"] = latest["version"].astype("int64")
    latest["correlation_id"] = latest["correlation_id"].where(
        latest["correlation_id"].notna(), latest["contract_id"])
    return latest.reset_index(drop=True)


def _functional(legal_entities: pd.DataFrame, policy: Policy) -> dict[str, str]:
    mapping = dict(zip(legal_entities["legal_entity"], legal_entities["functional_currency"],
                       strict=True))
    if policy.functional_currency:
        return {entity: policy.functional_currency for entity in mapping}
    return mapping


def _fill(series: pd.Series, fallback) -> pd.Series:
    return series.where(series.notna(), fallback)


def _invoice_lines(t: dict[str, pd.DataFrame], comps: pd.DataFrame,
                   headers: pd.DataFrame) -> pd.DataFrame:
    """Invoice lines joined to their invoice, with tax split, booking date, role and position.

    ``legal_entity`` is the invoicing entity (the invoice's, else its customer's);
    ``revenue_entity`` the entity that owns the obligation: the contract's (latest version) when
    the line belongs to a known contract, else the invoicing entity. They differ for an
    intercompany sale.
    """
    inv = t["invoices"].copy()
    customers = t["customers"].set_index("customer_id")
    inv["legal_entity"] = _fill(inv["legal_entity"], inv["customer_id"].map(
        customers["legal_entity"]) if len(customers) else pd.NA)
    lines = t["invoice_lines"].merge(
        inv[["invoice_id", "customer_id", "currency", "finalized_at", "contract_id",
             "legal_entity", "correlation_id"]].rename(columns={
                 "correlation_id": "invoice_correlation_id", "contract_id": "invoice_contract_id"}),
        on="invoice_id", how="inner", validate="many_to_one")
    tax = lines["tax_amount"].astype("Int64").fillna(0).astype("int64")
    amount = lines["amount"].astype("int64")
    inclusive = lines["tax_inclusive"].astype("boolean").fillna(False).astype(bool)
    lines["tax"] = tax
    lines["pre_tax"] = np.where(inclusive, amount - tax, amount).astype("int64")
    lines["gross"] = np.where(inclusive, amount, amount + tax).astype("int64")
    created = lines["created_at"]
    lines["booking_date"] = created.where(created.notna() & (created < lines["finalized_at"]),
                                          lines["finalized_at"])
    line_contract = lines["contract_line_id"].map(
        comps.set_index("contract_line_id")["contract_id"]) if len(comps) else pd.NA
    line_pattern = lines["contract_line_id"].map(
        comps.set_index("contract_line_id")["revenue_pattern"]) if len(comps) else pd.NA
    products = t["products"].set_index("product_code")["revenue_pattern"]
    product_pattern = lines["product_code"].map(products) if len(products) else pd.NA
    billed_usage = set(t["usage"]["invoice_line_id"].dropna())
    lines["contract_id"] = _fill(pd.Series(line_contract, index=lines.index),
                                 lines["invoice_contract_id"])
    lines["is_usage"] = (lines["invoice_line_id"].isin(billed_usage)
                         | (pd.Series(product_pattern, index=lines.index) == "usage")
                         | (pd.Series(line_pattern, index=lines.index) == "usage"))
    lines["role"] = np.where(lines["is_usage"], "usage",
                             np.where(lines["contract_line_id"].notna(), "contract", "own"))
    usage_key = "usage|" + _fill(lines["contract_id"], lines["customer_id"]).astype(str)
    own_key = _fill(lines["invoice_contract_id"], "invoice|" + lines["invoice_id"])
    lines["position_key"] = np.where(
        lines["role"] == "usage", usage_key,
        np.where(lines["role"] == "contract", lines["contract_id"].astype(str), own_key))
    lines["correlation_id"] = _fill(lines["invoice_correlation_id"], lines["contract_id"])
    lines["correlation_id"] = _fill(lines["correlation_id"], lines["invoice_id"])
    lines["pattern"] = product_pattern
    if lines["legal_entity"].isna().any():
        bad = lines.loc[lines["legal_entity"].isna(), "invoice_id"].iloc[0]
        raise ValueError(f"invoices: no legal entity for invoice {bad!r} (nor for its customer)")
    contract_entity = lines["contract_id"].map(
        headers.set_index("contract_id")["legal_entity"]) if len(headers) else pd.NA
    lines["revenue_entity"] = _fill(pd.Series(contract_entity, index=lines.index),
                                    lines["legal_entity"])
    return lines


def _invoice_line_obligations(lines: pd.DataFrame) -> pd.DataFrame:
    own = lines[lines["role"] == "own"]
    has_period = own["service_start"].notna() & own["service_end"].notna() \
        & (own["service_end"] > own["service_start"]) & (own["pattern"] != "point_in_time")
    return pd.DataFrame({
        "source_type": "invoice_line", "source_id": own["invoice_line_id"],
        "component_id": own["invoice_line_id"], "contract_id": own["contract_id"],
        "legal_entity": own["revenue_entity"], "customer_id": own["customer_id"],
        "correlation_id": own["correlation_id"], "currency": own["currency"],
        "amount": own["pre_tax"], "start": own["service_start"].where(has_period,
                                                                      own["booking_date"]),
        "end": own["service_end"].where(has_period, pd.NaT), "booking_date": own["booking_date"],
        "position_key": own["position_key"], "schedule_version": 1, "treatment": "original",
        "recognize_from": pd.NaT,
    })[OBLIGATION_COLUMNS]


def _usage_obligations(t, lines: pd.DataFrame, comps: pd.DataFrame) -> pd.DataFrame:
    usage = t["usage"].drop_duplicates("usage_id").copy()
    customers = t["customers"].set_index("customer_id")
    by_line = lines.set_index("invoice_line_id")
    contract = usage["contract_line_id"].map(comps.set_index("contract_line_id")["contract_id"]) \
        if len(comps) else pd.Series(pd.NA, index=usage.index)
    contract = _fill(contract, usage["invoice_line_id"].map(by_line["contract_id"]))
    customer = _fill(usage["customer_id"], usage["invoice_line_id"].map(by_line["customer_id"]))
    heads = comps.drop_duplicates("contract_id").set_index("contract_id") if len(comps) else None
    entity = contract.map(heads["legal_entity"]) if heads is not None else pd.NA
    entity = _fill(pd.Series(entity, index=usage.index), customer.map(customers["legal_entity"]))
    entity = _fill(entity, usage["invoice_line_id"].map(by_line["revenue_entity"]))
    customer = _fill(customer, contract.map(heads["customer_id"]) if heads is not None else pd.NA)
    key = "usage|" + _fill(contract, customer).astype(str)
    key = _fill(usage["invoice_line_id"].map(by_line["position_key"]), key)
    if entity.isna().any():
        bad = usage.loc[entity.isna(), "usage_id"].iloc[0]
        raise ValueError(f"usage: no legal entity for usage {bad!r}")
    return pd.DataFrame({
        "source_type": "usage", "source_id": usage["usage_id"], "component_id": usage["usage_id"],
        "contract_id": contract, "legal_entity": entity, "customer_id": customer,
        "correlation_id": _fill(usage["correlation_id"], _fill(contract, usage["usage_id"])),
        "currency": usage["currency"], "amount": usage["amount"].astype("int64"),
        "start": usage["occurred_at"], "end": pd.NaT, "booking_date": usage["occurred_at"],
        "position_key": key, "schedule_version": 1, "treatment": "original",
        "recognize_from": pd.NaT,
    })[OBLIGATION_COLUMNS]


def _payment_obligations(t) -> pd.DataFrame:
    pay = t["payments"][t["payments"]["invoice_id"].isna()]
    entity = pay["customer_id"].map(t["customers"].set_index("customer_id")["legal_entity"])
    if entity.isna().any():
        bad = pay.loc[entity.isna(), "payment_id"].iloc[0]
        raise ValueError(f"payments: no invoice and no known customer for payment {bad!r}")
    return pd.DataFrame({
        "source_type": "payment", "source_id": pay["payment_id"], "component_id": pay["payment_id"],
        "contract_id": pd.NA, "legal_entity": entity, "customer_id": pay["customer_id"],
        "correlation_id": _fill(pay["correlation_id"], pay["payment_id"]),
        "currency": pay["currency"], "amount": pay["amount"].astype("int64"),
        "start": pay["paid_at"], "end": pd.NaT, "booking_date": pay["paid_at"],
        "position_key": "payment|" + pay["payment_id"], "schedule_version": 1,
        "treatment": "original", "recognize_from": pd.NaT,
    })[OBLIGATION_COLUMNS]


def _spread_over_lines(docs: pd.DataFrame, lines: pd.DataFrame, weight: str) -> pd.DataFrame:
    """Each document row (doc_id, invoice_id, gross, tax) spread over its invoice's lines."""
    joined = docs.merge(lines, on="invoice_id", how="inner", suffixes=("", "_line"))
    if len(joined) == 0:
        return joined.assign(part_gross=0, part_tax=0)
    joined["part_gross"] = distribute_by_weight(
        joined["doc_id"], joined["doc_gross"], joined[weight], pd.Series(1, index=joined.index),
        joined["invoice_line_id"])
    joined["part_tax"] = distribute_by_weight(
        joined["doc_id"], joined["doc_tax"], joined[weight], pd.Series(1, index=joined.index),
        joined["invoice_line_id"])
    return joined


def _reductions(t, lines: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per invoice line: credit notes, their voids, refunds, voids and write-offs.

    Returns (line-level reductions, customer-level credit notes).
    """
    cols = ["reduction_id", "kind", "doc_id", "date", "invoice_id", "invoice_line_id", "pre_tax",
            "tax", "gross", "reverses", "contra", "counter"]
    parts = []
    notes = t["credit_notes"].copy()
    inclusive_of = lines.groupby("invoice_id")["tax_inclusive"].max() if len(lines) else {}
    inclusive = notes["invoice_id"].map(inclusive_of).astype("boolean").fillna(False).astype(bool)
    line_incl = notes["invoice_line_id"].map(lines.set_index("invoice_line_id")["tax_inclusive"]) \
        if len(lines) else pd.Series(pd.NA, index=notes.index)
    inclusive = _fill(line_incl, inclusive).astype("boolean").fillna(False).astype(bool)
    tax = notes["tax_amount"].astype("Int64").fillna(0).astype("int64")
    notes["doc_gross"] = np.where(inclusive, notes["amount"], notes["amount"] + tax)
    notes["doc_tax"] = tax
    notes["doc_id"] = notes["credit_note_id"]
    customer_level = notes[notes["invoice_id"].isna()]
    on_line = notes[notes["invoice_line_id"].notna()].merge(
        lines[["invoice_line_id"]], on="invoice_line_id").assign(
        part_gross=lambda f: f["doc_gross"], part_tax=lambda f: f["doc_tax"])
    spread = _spread_over_lines(
        notes[notes["invoice_id"].notna() & notes["invoice_line_id"].isna()][
            ["doc_id", "invoice_id", "doc_gross", "doc_tax", "issued_at", "voided_at"]],
        lines[["invoice_id", "invoice_line_id", "pre_tax"]], "pre_tax")
    for frame in (on_line, spread):
        if len(frame) == 0:
            continue
        base = pd.DataFrame({
            "reduction_id": frame["doc_id"] + "|" + frame["invoice_line_id"],
            "kind": "credit_note", "doc_id": frame["doc_id"], "date": frame["issued_at"],
            "invoice_line_id": frame["invoice_line_id"], "tax": frame["part_tax"],
            "gross": frame["part_gross"], "reverses": pd.NA, "contra": "CreditNotes",
            "counter": "AccountsReceivable"})
        parts.append(base)
        voided = frame["voided_at"].notna()
        if voided.any():
            parts.append(base[voided.to_numpy()].assign(
                reverses=lambda f: f["reduction_id"], kind="credit_note_void",
                reduction_id=lambda f: "void|" + f["reduction_id"],
                date=frame.loc[voided, "voided_at"].to_numpy(),
                tax=lambda f: -f["tax"], gross=lambda f: -f["gross"]))

    gross_lines = lines[["invoice_id", "invoice_line_id", "gross"]]
    refunds = t["refunds"].assign(doc_id=lambda f: f["refund_id"], doc_gross=lambda f: f["amount"])
    refunds = _spread_over_lines(refunds[["doc_id", "invoice_id", "doc_gross", "refunded_at"]]
                                 .assign(doc_tax=0), gross_lines, "gross")
    if len(refunds):
        line_tax = refunds["invoice_line_id"].map(lines.set_index("invoice_line_id")["tax"])
        refunds["part_tax"] = mul_div_half_up(
            refunds["part_gross"], line_tax.to_numpy(np.int64),
            np.maximum(refunds["gross"].to_numpy(np.int64), 1))
        parts.append(pd.DataFrame({
            "reduction_id": refunds["doc_id"] + "|" + refunds["invoice_line_id"], "kind": "refund",
            "doc_id": refunds["doc_id"], "date": refunds["refunded_at"],
            "invoice_line_id": refunds["invoice_line_id"], "tax": refunds["part_tax"],
            "gross": refunds["part_gross"], "reverses": pd.NA, "contra": "Refunds",
            "counter": "Cash"}))

    events = t["invoice_events"].sort_values(["invoice_id", "occurred_at", "event"])
    events = events.drop_duplicates(["invoice_id", "event"], keep="first")
    if len(events):
        gross = lines.groupby("invoice_id")["gross"].sum()
        # (parts carry invoice_line_id only; invoice_id comes from the merge below)
        credited = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            columns=[c for c in cols if c != "invoice_id"])
        credited = credited.merge(lines[["invoice_line_id", "invoice_id"]], on="invoice_line_id")
        pays = t["payments"]
        rows = []
        for inv_id, when, event in events[["invoice_id", "occurred_at", "event"]].itertuples(
                index=False):
            before = credited[(credited["invoice_id"] == inv_id) & (credited["date"] <= when)
                              & (credited["counter"] == "AccountsReceivable")]["gross"].sum()
            paid = pays[(pays["invoice_id"] == inv_id) & (pays["paid_at"] <= when)]["amount"].sum()
            rows.append((inv_id, when, event, int(gross.get(inv_id, 0)) - int(before) - int(paid)))
        ev = pd.DataFrame(rows, columns=["invoice_id", "date", "event", "doc_gross"])
        ev = ev[ev["doc_gross"] > 0]
        ev["doc_id"] = ev["invoice_id"] + "|" + ev["event"]
        spread_ev = _spread_over_lines(ev.assign(doc_tax=0), gross_lines, "gross")
        if len(spread_ev):
            line_tax = spread_ev["invoice_line_id"].map(lines.set_index("invoice_line_id")["tax"])
            spread_ev["part_tax"] = mul_div_half_up(
                spread_ev["part_gross"], line_tax.to_numpy(np.int64),
                np.maximum(spread_ev["gross"].to_numpy(np.int64), 1))
            kind = np.where(spread_ev["event"] == "void", "invoice_void", "uncollectible")
            parts.append(pd.DataFrame({
                "reduction_id": spread_ev["doc_id"] + "|" + spread_ev["invoice_line_id"],
                "kind": kind, "doc_id": spread_ev["doc_id"], "date": spread_ev["date"],
                "invoice_line_id": spread_ev["invoice_line_id"], "tax": spread_ev["part_tax"],
                "gross": spread_ev["part_gross"], "reverses": pd.NA,
                "contra": np.where(kind == "invoice_void", "Voids", "BadDebt"),
                "counter": "AccountsReceivable"}))
    red = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=[c for c in cols if c != "invoice_id"])
    red = red.merge(lines[["invoice_line_id", "invoice_id"]], on="invoice_line_id", how="left")
    for column in ("tax", "gross"):
        red[column] = red[column].astype("int64")
    red["pre_tax"] = red["gross"] - red["tax"]
    return red[cols], customer_level


def _concat_frames(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate frames whose optional columns may be entirely empty in some of them, keeping
    every column and letting only the frames that carry values decide its dtype."""
    columns = list(dict.fromkeys(c for frame in frames for c in frame.columns))
    trimmed = [frame.dropna(axis=1, how="all") for frame in frames]
    return pd.concat(trimmed, ignore_index=True).reindex(columns=columns)


def run_engine(tables: Mapping[str, pd.DataFrame], policy: Policy, as_of: date,
               summary_mode: SummaryMode | None = None,
               max_lines_per_entry: int = MAX_LINES_PER_ENTRY) -> EngineResult:
    """Allocate, schedule, journalize and balance everything known as of ``as_of``.

    Journals cover events up to ``as_of`` and recognition for periods up to ``as_of``'s period
    (the current month's entry, dated at its end, is included), plus the FX remeasurement of
    open foreign-currency receivables and cash at each month end up to ``as_of``.

    ``summary_mode`` (default: usage in summary, everything else in detail) says how usage
    journals post: ``summary`` books one entry per entity, usage day and currency with one line
    per product and account (at most ``max_lines_per_entry`` lines an entry, carrying
    ``event_count`` and ``events_fingerprint``); ``detail`` one entry per usage event. The
    revenue schedule keeps one row per usage event either way.
    """
    mode = summary_mode or SummaryMode()
    unsupported = sorted(st for st in mode.modes if st != "usage" and mode.modes[st] == "summary")
    if mode.default == "summary" or unsupported:
        raise ValueError("summary posting is only implemented for usage, not: "
                         + ", ".join(unsupported or ["(default)"]))
    if max_lines_per_entry < _USAGE_LINES_PER_PRODUCT:
        raise ValueError(f"max_lines_per_entry must be at least {_USAGE_LINES_PER_PRODUCT}")
    usage_summary = max_lines_per_entry if mode.mode_for("usage") == "summary" else None
    t = _prepare(tables, as_of)
    as_of_month = int(month_index(np.array([pd.Timestamp(as_of)], dtype="datetime64[ns]"))[0])
    functional = _functional(t["legal_entities"], policy)
    rates = RateBook(t["fx_rates"])
    headers = _headers(t["contracts"])

    if len(t["contract_lines"]):
        comps = build_components(t["contract_lines"], headers, t["products"])
        comps = allocate_transaction_price(comps, policy.allocation_rounding)
        comps = comps.sort_values(["obligation_id", "is_delta", "contract_line_id"],
                                  kind="mergesort").reset_index(drop=True)
    else:
        comps = pd.DataFrame(columns=["contract_line_id", "contract_id", "revenue_pattern",
                                      "legal_entity", "customer_id"])
    allocation = summarize_allocation(comps)
    lines = _invoice_lines(t, comps, headers)

    frames = [frame for frame in (
            contract_line_obligations(comps) if len(comps) else None,
            _invoice_line_obligations(lines), _usage_obligations(t, lines, comps),
            _payment_obligations(t)) if frame is not None and len(frame)]
    obligations = _concat_frames(frames) if frames else pd.DataFrame(columns=OBLIGATION_COLUMNS)
    for column in ("start", "end", "booking_date", "recognize_from"):
        obligations[column] = pd.to_datetime(obligations[column])
    obligations["amount"] = obligations["amount"].astype("int64")
    schedule = build_schedule(obligations, policy)

    reductions, customer_credits = _reductions(t, lines)
    line_index = lines.set_index("invoice_line_id")
    role = reductions["invoice_line_id"].map(line_index["role"])
    reductions["obligation_type"] = np.where(role == "contract", "contract_line", "invoice_line")
    root_of = comps.set_index("contract_line_id")["obligation_id"] if len(comps) else pd.Series()
    obligation = np.where(
        role == "contract",
        reductions["invoice_line_id"].map(line_index["contract_line_id"]).map(root_of),
        reductions["invoice_line_id"])
    reductions["obligation_id"] = pd.Series(obligation, index=reductions.index).where(
        role != "usage", pd.NA)
    schedule, reductions = apply_reductions(schedule, reductions, policy.credit_note_treatment)
    # What reductions took off each contract obligation's remaining schedule, so that
    # allocated_amount - deferred_reductions = the schedule's total (checked by an asset check).
    trimmed = reductions.loc[reductions["obligation_type"] == "contract_line"].groupby(
        "obligation_id")["deferred_share"].sum()
    allocation["deferred_reductions"] = (
        allocation["contract_line_id"].map(trimmed).fillna(0).astype("int64")
    )
    schedule["functional_currency"] = schedule["legal_entity"].map(functional)
    if schedule["functional_currency"].isna().any():
        bad = schedule.loc[schedule["functional_currency"].isna(), "legal_entity"].iloc[0]
        raise ValueError(f"legal_entities: no functional currency for legal entity {bad!r}")
    schedule = schedule[schedule["amount"] != 0].reset_index(drop=True)
    schedule["amount_functional"] = rates.convert(
        schedule["amount"].to_numpy(), schedule["currency"].to_numpy(),
        schedule["functional_currency"].to_numpy(), schedule["booking_date"].to_numpy())

    daily = None
    if policy.journal_granularity == "day":
        windows = obligations.groupby(["source_type", "source_id"]).agg(
            window_start=("start", "min"), window_end=("end", "max"))
        daily = {"windows": windows, "catch_up": policy.catch_up,
                 "as_of": pd.Timestamp(as_of)}
    postings = _postings(t, lines, schedule, reductions, customer_credits, functional,
                         as_of_month, daily, usage_summary)
    journal_lines = build_journal_lines(postings, rates, t["accounting_periods"])
    remeasurement = build_remeasurement_postings(journal_lines, rates, as_of,
                                                 t["accounting_periods"])
    if len(remeasurement):
        journal_lines = sort_journal_lines(pd.concat(
            [journal_lines, build_journal_lines(remeasurement, rates, t["accounting_periods"])],
            ignore_index=True))
    balances = build_account_balances(
        journal_lines, str(period_labels(np.array([as_of_month]))[0]))

    out_schedule = schedule.assign(period=period_labels(schedule["month"].to_numpy()))
    out_schedule["schedule_version"] = out_schedule["schedule_version"].astype("int64")
    out_schedule = out_schedule.sort_values(
        ["legal_entity", "source_type", "source_id", "period"], kind="mergesort")
    out_schedule = out_schedule[SCHEDULE_COLUMNS].reset_index(drop=True)
    return EngineResult(allocation=allocation, revenue_schedule=out_schedule,
                        journal_lines=journal_lines, account_balances=balances)


def _daily_recognition(rec: pd.DataFrame, daily: dict) -> pd.DataFrame:
    """Schedule rows (not usage) split into one row per day they cover, up to ``as_of``."""
    key = pd.MultiIndex.from_frame(rec[["source_type", "source_id"]])
    windows = daily["windows"].reindex(key)
    floor = rec["booking_date"] if daily["catch_up"] else pd.Series(pd.NaT, index=rec.index)
    days = split_months_into_days(
        rec["amount"].to_numpy(), rec["month"].to_numpy(),
        windows["window_start"].to_numpy(), windows["window_end"].to_numpy(), floor.to_numpy())
    out = rec.iloc[days["row"].to_numpy()].reset_index(drop=True)
    out["amount"] = days["amount"].to_numpy()
    out["date"] = days["day"].to_numpy()
    out = out[(out["date"] <= daily["as_of"]) & (out["amount"] != 0)]
    return out.reset_index(drop=True)


def schedule_as_of(tables: Mapping[str, pd.DataFrame], policy: Policy,
                   as_of_version_date: date) -> pd.DataFrame:
    """The revenue schedule exactly as it stood on ``as_of_version_date``.

    Only contract versions (and their amendment deltas), invoices and reductions known by that
    day take part, so the schedule of any past day is reproducible from today's input; rows a
    later amendment does not touch come out identical (same amount, version and treatment).
    """
    return run_engine(tables, policy, as_of_version_date).revenue_schedule


def _summarized_usage(rec: pd.DataFrame, usage: pd.DataFrame, max_lines: int) -> pd.DataFrame:
    """Usage recognition rows summed per entity, usage day, product, currency and position.

    Each (entity, day, currency) is one journal entry, split into parts of at most
    ``max_lines // 3`` products (a product books at most Revenue, DeferredRevenue and
    UnbilledAccountsReceivable, kept together so every part balances), products in code order.
    """
    product = rec["source_id"].map(usage.drop_duplicates("usage_id").set_index("usage_id")[
        "product_code"]).astype(object)
    product = product.where(product.notna(), "").astype(str)
    day = pd.to_datetime(rec["booking_date"]).dt.normalize()
    day_text = day.dt.strftime("%Y-%m-%d")
    line_key = (rec["legal_entity"].astype(str) + "|" + day_text + "|" + product + "|"
                + rec["currency"])
    prints = fingerprint_events(line_key, rec["source_id"]).set_index("group")
    frame = rec.assign(product_code=product, day=day, day_text=day_text, line_key=line_key)
    rank = frame.groupby(["legal_entity", "day", "currency"])["product_code"].rank(
        method="dense").astype("int64")
    frame["chunk"] = (rank - 1) // (max_lines // _USAGE_LINES_PER_PRODUCT)
    keys = ["legal_entity", "functional_currency", "currency", "day", "day_text", "product_code",
            "position_key", "chunk", "line_key", "month"]
    out = frame.groupby(keys, as_index=False, sort=True)["amount"].sum()
    parts = out.groupby(["legal_entity", "day", "currency"])["chunk"].transform("max") + 1
    entry = out["legal_entity"] + "|" + out["day_text"] + "|" + out["currency"]
    out = out.assign(
        source_type="usage", source_id=out["line_key"], source_line_id=out["product_code"],
        journal_group="usage|" + entry + "|" + out["chunk"].astype(str),
        memo="usage summary " + out["day_text"] + " " + out["currency"] + np.where(
            parts > 1, " part " + (out["chunk"] + 1).astype(str) + "/" + parts.astype(str), ""),
        date=out["day"], rate_date=out["day"], booking_date=out["day"], is_cash=False,
        event_id=out["position_key"] + "|" + out["product_code"], contract_id=pd.NA,
        customer_id=pd.NA, correlation_id=pd.NA,
        event_count=out["line_key"].map(prints["event_count"]),
        events_fingerprint=out["line_key"].map(prints["events_fingerprint"]),
    )
    return out.drop(columns=["day", "day_text", "product_code", "line_key", "chunk"])


def _collapse_usage_lines(postings: pd.DataFrame) -> pd.DataFrame:
    """Usage summary postings summed to one line per entry, product and account, with the
    ``usl_`` id of that summary line as source and correlation id."""
    usage = postings["source_type"] == "usage"
    if not usage.any():
        return postings
    keys = ["journal_group", "account", "source_id"]
    firsts = [c for c in postings.columns if c not in keys + ["amount"]]
    summed = postings[usage].groupby(keys, as_index=False, sort=True).agg(
        amount=("amount", "sum"), **{c: (c, "first") for c in firsts})
    summed = summed[summed["amount"] != 0]
    ids = summary_line_ids(summed["legal_entity"], summed["date"], summed["source_line_id"],
                           summed["account"], summed["currency"])
    summed = summed.assign(source_id=ids, correlation_id=ids)
    return pd.concat([postings[~usage], summed], ignore_index=True)


def _postings(t, lines, schedule, reductions, customer_credits, functional, as_of_month,
              daily=None, usage_summary=None):
    """Every posting (signed amount per account) of every journal known as of the cutoff.

    ``daily`` (``journal_granularity: day``) splits each recognition entry into one per day.
    ``usage_summary`` (the cap on lines per entry, or None for detail) summarizes usage.
    """
    direct: list[pd.DataFrame] = []
    events: list[pd.DataFrame] = []

    # Recognition: one entry per obligation and period (dated at period end), or per day;
    # usage when it occurs.
    rec = schedule[schedule["month"] <= as_of_month]
    summarized = None
    if usage_summary is not None:
        is_usage = rec["source_type"] == "usage"
        if is_usage.any():
            summarized = _summarized_usage(rec[is_usage], t["usage"], usage_summary)
        rec = rec[~is_usage]
    is_usage = rec["source_type"] == "usage"
    rec = rec.assign(date=pd.to_datetime(np.where(
        is_usage, rec["booking_date"].to_numpy(dtype="datetime64[ns]"),
        period_end_dates(rec["month"].to_numpy()))))
    if daily is not None:
        rec = pd.concat([rec[is_usage], _daily_recognition(rec[~is_usage], daily)],
                        ignore_index=True)
        is_usage = rec["source_type"] == "usage"
    entry = np.where(is_usage | (daily is None), rec["month"].astype(str),
                     rec["date"].dt.strftime("%Y-%m-%d"))
    rec = rec.assign(
        journal_type=np.where(is_usage, "usage", "revenue"), rate_date=rec["booking_date"],
    )
    rec = rec.assign(
        journal_group=rec["journal_type"] + "|" + rec["source_type"] + "|" + rec["source_id"]
        + "|" + entry,
        source_line_id=np.where(is_usage, pd.NA, rec["source_type"]),
        memo=np.where(is_usage, "usage recognized", "revenue recognized " + (
            period_labels(rec["month"].to_numpy()) if daily is None
            else rec["date"].dt.strftime("%Y-%m-%d").to_numpy())),
        is_cash=False, event_id=rec["source_type"] + "|" + rec["source_id"],
    ).drop(columns=["source_type"]).rename(columns={"journal_type": "source_type"})
    if summarized is not None:
        rec = pd.concat([rec, summarized], ignore_index=True)
    direct.append(rec.assign(account="Revenue", amount=-rec["amount"], order=4))
    events.append(rec.assign(delta=-rec["amount"], rank=3))

    # Billing: Dr AR gross; Cr Unbilled / Deferred pre-tax (position); Cr TaxLiability.
    bill = lines.assign(
        source_type="invoice", source_id=lines["invoice_id"],
        source_line_id=lines["invoice_line_id"], date=lines["finalized_at"],
        rate_date=lines["finalized_at"], journal_group="invoice|" + lines["invoice_id"],
        is_cash=False, memo="invoice billed", event_id=lines["invoice_line_id"],
        functional_currency=lines["legal_entity"].map(functional),
    )
    direct.append(bill.assign(account="AccountsReceivable", amount=bill["gross"], order=1))
    direct.append(bill.assign(account="TaxLiability", amount=-bill["tax"], order=6))
    events.append(bill.assign(delta=bill["pre_tax"], rank=0))

    # Reductions: Dr contra (recognized share), Dr position (deferred share), Dr tax; Cr AR/Cash.
    if len(reductions):
        by_line = lines.set_index("invoice_line_id")
        red = reductions.assign(
            source_type=reductions["kind"], source_id=reductions["doc_id"],
            source_line_id=reductions["invoice_line_id"],
            journal_group=reductions["kind"] + "|" + reductions["doc_id"],
            rate_date=reductions["invoice_line_id"].map(by_line["finalized_at"]),
            memo=reductions["kind"].str.replace("_", " "), event_id=reductions["reduction_id"],
            is_cash=reductions["counter"] == "Cash",
        )
        for column in ("legal_entity", "currency", "contract_id", "customer_id", "correlation_id",
                       "position_key", "revenue_entity"):
            red[column] = red["invoice_line_id"].map(by_line[column])
        red["functional_currency"] = red["legal_entity"].map(functional)
        direct.append(red.assign(account=red["contra"], amount=red["recognized_share"], order=5))
        direct.append(red.assign(account="TaxLiability", amount=red["tax"], order=6))
        counter_rate = red["date"].where(red["is_cash"], red["rate_date"])
        direct.append(red.assign(account=red["counter"], amount=-red["gross"], order=1,
                                 rate_date=counter_rate))
        events.append(red.assign(delta=-red["deferred_share"], rank=1))
    if len(customer_credits):
        cc = customer_credits
        entity = cc["customer_id"].map(t["customers"].set_index("customer_id")["legal_entity"])
        if entity.isna().any():
            bad = cc.loc[entity.isna(), "credit_note_id"].iloc[0]
            raise ValueError(f"credit_notes: no invoice and no known customer for {bad!r}")
        cc = cc.assign(
            source_type="credit_note", source_id=cc["credit_note_id"], source_line_id=pd.NA,
            legal_entity=entity, functional_currency=entity.map(functional), date=cc["issued_at"],
            rate_date=cc["issued_at"], journal_group="credit_note|" + cc["credit_note_id"],
            is_cash=False, memo="customer credit", contract_id=pd.NA,
            correlation_id=_fill(cc["correlation_id"], cc["credit_note_id"]),
        )
        voided = cc[cc["voided_at"].notna()]
        voided = voided.assign(source_type="credit_note_void", date=voided["voided_at"],
                               journal_group="credit_note_void|" + voided["credit_note_id"],
                               doc_gross=-voided["doc_gross"], doc_tax=-voided["doc_tax"])
        for frame in (cc, voided):
            direct.append(frame.assign(account="CreditNotes",
                                       amount=frame["doc_gross"] - frame["doc_tax"], order=5))
            direct.append(frame.assign(account="TaxLiability", amount=frame["doc_tax"], order=6))
            direct.append(frame.assign(account="AccountsReceivable", amount=-frame["doc_gross"],
                                       order=1))

    # Payments: Dr Cash at the payment-date rate; Cr AR at the invoice rate (FX to gain/loss),
    # or Cr Recoverables after a write-off, or (no invoice) Cr Deferred for a one-time charge.
    pays = t["payments"]
    inv = lines.drop_duplicates("invoice_id").set_index("invoice_id")
    with_inv = pays[pays["invoice_id"].notna()].copy()
    unknown = ~with_inv["invoice_id"].isin(inv.index)
    if unknown.any():
        bad = with_inv.loc[unknown, "payment_id"].iloc[0]
        raise ValueError(f"payments: payment {bad!r} names an invoice that is not known")
    mismatch = with_inv["currency"] != with_inv["invoice_id"].map(inv["currency"])
    if mismatch.any():
        bad = with_inv.loc[mismatch, "payment_id"].iloc[0]
        raise ValueError(f"payments: payment {bad!r} is not in its invoice's currency")
    written_off = t["invoice_events"][t["invoice_events"]["event"] == "uncollectible"] \
        .groupby("invoice_id")["occurred_at"].min()
    off_at = with_inv["invoice_id"].map(written_off)
    recovery = off_at.notna() & (with_inv["paid_at"] >= off_at)
    pay = with_inv.assign(
        source_type=np.where(recovery, "recovery", "payment"), source_id=with_inv["payment_id"],
        source_line_id=with_inv["invoice_id"], date=with_inv["paid_at"],
        journal_group="payment|" + with_inv["payment_id"], is_cash=True, memo="payment received",
    )
    for column in ("legal_entity", "contract_id", "customer_id", "revenue_entity"):
        pay[column] = pay["invoice_id"].map(inv[column])
    pay["correlation_id"] = _fill(pay["correlation_id"], pay["invoice_id"].map(
        inv["correlation_id"]))
    pay["functional_currency"] = pay["legal_entity"].map(functional)
    direct.append(pay.assign(account="Cash", amount=pay["amount"], rate_date=pay["paid_at"],
                             order=1))
    direct.append(pay.assign(
        account=np.where(recovery, "Recoverables", "AccountsReceivable"), amount=-pay["amount"],
        rate_date=np.where(recovery, pay["paid_at"], pay["invoice_id"].map(inv["finalized_at"])),
        order=2))
    loose = pays[pays["invoice_id"].isna()]
    if len(loose):
        entity = loose["customer_id"].map(t["customers"].set_index("customer_id")["legal_entity"])
        lp = loose.assign(
            source_type="payment", source_id=loose["payment_id"], source_line_id=pd.NA,
            date=loose["paid_at"], rate_date=loose["paid_at"], legal_entity=entity,
            functional_currency=entity.map(functional), contract_id=pd.NA,
            correlation_id=_fill(loose["correlation_id"], loose["payment_id"]),
            journal_group="payment|" + loose["payment_id"], is_cash=True,
            memo="one-time charge paid", position_key="payment|" + loose["payment_id"],
            event_id=loose["payment_id"],
        )
        direct.append(lp.assign(account="Cash", amount=lp["amount"], order=1))
        events.append(lp.assign(delta=lp["amount"], rank=0))

    ev = pd.concat([e for e in events if len(e)], ignore_index=True) if any(
        len(e) for e in events) else pd.DataFrame()
    parts = [d for d in direct if len(d)]
    if len(ev):
        ev["delta"] = ev["delta"].astype("int64")
        ev["date"] = pd.to_datetime(ev["date"])
        split = split_position(ev)
        parts.append(position_postings(split).assign(
            order=lambda f: np.where(f["account"] == "DeferredRevenue", 2, 3)))
    if not parts:
        return pd.DataFrame()
    postings = pd.concat(parts, ignore_index=True)
    if usage_summary is not None:
        postings = _collapse_usage_lines(postings)
    postings = post_intercompany_pairs(postings)
    postings["date"] = pd.to_datetime(postings["date"])
    postings["rate_date"] = pd.to_datetime(postings["rate_date"])
    postings["functional_currency"] = postings["legal_entity"].map(functional)
    return postings
