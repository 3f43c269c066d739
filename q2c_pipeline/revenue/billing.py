"""Billing activity as it meets revenue contracts: invoice lines with their role and position, and
every credit note, refund, void, write-off and payment split into parts per invoice line and
classified by the treatment table (``q2c_pipeline.revenue.treatments``).

An invoice line's *role*: ``contract`` (it bills a contract line: revenue follows that line),
``own`` (its own obligation over its own service period, as Stripe recognizes invoice lines) or
``usage`` (it bills usage recognized when it occurred). Its *position* is the revenue contract
whose contract position it moves: the contract line's revenue contract, else the invoice's
contract, else the invoice itself (``invoice|<id>``); usage has a position of its own
(``usage|<contract or customer>``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from q2c_pipeline.core.rounding import distribute_by_weight, mul_div_half_up
from q2c_pipeline.revenue.treatments import TreatmentTable

PART_COLUMNS = [
    "part_id", "event", "reason", "doc_id", "date", "invoice_id", "invoice_line_id", "pre_tax",
    "tax", "gross", "counter", "reverses_doc", "voided_at",
]


def _fill(series: pd.Series, fallback) -> pd.Series:
    return series.where(series.notna(), fallback)


def classify_invoice_lines(t: dict[str, pd.DataFrame], comps: pd.DataFrame,
                           headers: pd.DataFrame) -> pd.DataFrame:
    """Invoice lines joined to their invoice, with tax split, booking date, role and position.

    ``legal_entity`` is the invoicing entity (the invoice's, else its customer's);
    ``revenue_entity`` the entity that owns the obligation: the contract's (latest version) when
    the line belongs to a known contract, else the invoicing entity. They differ for an
    intercompany sale. ``obligation_key`` is (source_type, source_id) of the schedule rows the
    line's reductions act on.
    """
    inv = t["invoices"].copy()
    customers = t["customers"].set_index("customer_id")
    inv["legal_entity"] = _fill(inv["legal_entity"], inv["customer_id"].map(
        customers["legal_entity"]) if len(customers) else pd.NA)
    lines = t["invoice_lines"].merge(
        inv[["invoice_id", "customer_id", "currency", "finalized_at", "contract_id",
             "legal_entity", "correlation_id", "status"]].rename(columns={
                 "correlation_id": "invoice_correlation_id",
                 "contract_id": "invoice_contract_id"}),
        on="invoice_id", how="inner", validate="many_to_one")
    tax = lines["tax_amount"].astype("Int64").fillna(0).astype("int64")
    amount = lines["amount"].astype("int64")
    inclusive = lines["tax_inclusive"].astype("boolean").fillna(False).astype(bool)
    lines["tax"] = tax
    lines["tax_inclusive"] = inclusive
    lines["pre_tax"] = np.where(inclusive, amount - tax, amount).astype("int64")
    lines["gross"] = np.where(inclusive, amount, amount + tax).astype("int64")
    created = lines["created_at"]
    lines["booking_date"] = created.where(created.notna() & (created < lines["finalized_at"]),
                                          lines["finalized_at"])
    known = comps.set_index("contract_line_id") if len(comps) else None
    def of_line(column):
        if known is None:
            return pd.Series(pd.NA, index=lines.index, dtype=object)
        return lines["contract_line_id"].map(known[column])
    line_contract = of_line("contract_id")
    line_pattern = of_line("revenue_pattern")
    line_rc = of_line("revenue_contract_id")
    line_obligation = of_line("obligation_id")
    products = t["products"].set_index("product_code")["revenue_pattern"]
    product_pattern = lines["product_code"].map(products) if len(products) else pd.Series(
        pd.NA, index=lines.index, dtype=object)
    billed_usage = set(t["usage"]["invoice_line_id"].dropna())
    lines["contract_id"] = _fill(line_contract, lines["invoice_contract_id"])
    is_usage = (lines["invoice_line_id"].isin(billed_usage) | (product_pattern == "usage")
                | (line_pattern == "usage"))
    bills_line = line_contract.notna()
    lines["role"] = np.where(is_usage, "usage", np.where(bills_line, "contract", "own"))
    usage_key = "usage|" + _fill(lines["contract_id"], lines["customer_id"]).astype(str)
    own_key = _fill(lines["invoice_contract_id"], "invoice|" + lines["invoice_id"])
    lines["position_key"] = np.where(
        lines["role"] == "usage", usage_key,
        np.where(lines["role"] == "contract", line_rc.astype(str), own_key.astype(str)))
    contract_rcs = set(comps["revenue_contract_id"]) if len(comps) else set()
    lines["position_kind"] = np.where(
        lines["role"] == "usage", "usage",
        np.where(lines["position_key"].isin(contract_rcs), "contract", "invoice"))
    lines["obligation_type"] = np.where(lines["role"] == "contract", "contract_line",
                                        np.where(lines["role"] == "own", "invoice_line", ""))
    lines["obligation_id"] = np.where(lines["role"] == "contract", line_obligation,
                                      np.where(lines["role"] == "own", lines["invoice_line_id"],
                                               None))
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


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """Concatenate the non-empty frames (all columns kept), else an empty frame of ``columns``."""
    kept = [f.dropna(axis=1, how="all") for f in frames if len(f)]
    if not kept:
        return pd.DataFrame(columns=columns)
    return pd.concat(kept, ignore_index=True).reindex(columns=columns)


def _spread_over_lines(docs: pd.DataFrame, lines: pd.DataFrame, weight: str) -> pd.DataFrame:
    """Each document row (doc_id, invoice_id, doc_gross, doc_tax) spread over its invoice's
    lines in proportion to ``weight`` (largest remainder)."""
    joined = docs.merge(lines, on="invoice_id", how="inner", suffixes=("", "_line"))
    if len(joined) == 0:
        return joined.assign(part_gross=0, part_tax=0)
    ones = pd.Series(1, index=joined.index)
    joined["part_gross"] = distribute_by_weight(
        joined["doc_id"], joined["doc_gross"], joined[weight].abs(), ones,
        joined["invoice_line_id"])
    joined["part_tax"] = distribute_by_weight(
        joined["doc_id"], joined["doc_tax"], joined[weight].abs(), ones,
        joined["invoice_line_id"])
    return joined


def _tax_share(parts: pd.DataFrame, lines: pd.DataFrame) -> np.ndarray:
    """Tax inside a cash-like part (refund, void, write-off): the line's tax / gross ratio."""
    by_line = lines.set_index("invoice_line_id")
    line_tax = parts["invoice_line_id"].map(by_line["tax"]).to_numpy(np.int64)
    line_gross = parts["invoice_line_id"].map(by_line["gross"]).to_numpy(np.int64)
    return mul_div_half_up(parts["part_gross"].to_numpy(np.int64), np.abs(line_tax),
                           np.maximum(np.abs(line_gross), 1)) * np.sign(line_tax)


def document_parts(t: dict[str, pd.DataFrame], lines: pd.DataFrame
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(parts per invoice line, customer-level credit notes) of every reduction document.

    Credit notes (on a line, or spread over the invoice's lines by pre-tax amount; tax follows
    the credited line's ``tax_inclusive``), refunds (spread by gross; tax in proportion to the
    line's), invoice voids and write-offs (the invoice's open receivable at the event, spread by
    gross). ``pre_tax + tax = gross`` on every part.
    """
    parts = []
    notes = t["credit_notes"].copy()
    by_line = lines.set_index("invoice_line_id") if len(lines) else None
    inclusive_of = lines.groupby("invoice_id")["tax_inclusive"].max() if len(lines) else {}
    inclusive = notes["invoice_id"].map(inclusive_of).astype("boolean").fillna(False)
    line_incl = notes["invoice_line_id"].map(by_line["tax_inclusive"]) \
        if by_line is not None else pd.Series(pd.NA, index=notes.index)
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
            ["doc_id", "invoice_id", "doc_gross", "doc_tax", "issued_at", "voided_at",
             "reason"]],
        lines[["invoice_id", "invoice_line_id", "pre_tax"]], "pre_tax")
    for frame in (on_line, spread):
        if len(frame) == 0:
            continue
        parts.append(pd.DataFrame({
            "part_id": frame["doc_id"] + "|" + frame["invoice_line_id"], "event": "credit_note",
            "reason": frame["reason"], "doc_id": frame["doc_id"], "date": frame["issued_at"],
            "invoice_line_id": frame["invoice_line_id"], "tax": frame["part_tax"],
            "gross": frame["part_gross"], "counter": "AccountsReceivable",
            "reverses_doc": None, "voided_at": frame["voided_at"]}))

    gross_lines = lines[["invoice_id", "invoice_line_id", "gross"]]
    refunds = t["refunds"].assign(doc_id=lambda f: f["refund_id"],
                                  doc_gross=lambda f: f["amount"])
    refunds = _spread_over_lines(refunds[["doc_id", "invoice_id", "doc_gross", "refunded_at",
                                          "credit_note_id"]].assign(doc_tax=0),
                                 gross_lines, "gross")
    if len(refunds):
        refunds["part_tax"] = _tax_share(refunds, lines)
        parts.append(pd.DataFrame({
            "part_id": refunds["doc_id"] + "|" + refunds["invoice_line_id"], "event": "refund",
            "reason": np.where(refunds["credit_note_id"].notna(), "credit_note", "*"),
            "doc_id": refunds["doc_id"], "date": refunds["refunded_at"],
            "invoice_line_id": refunds["invoice_line_id"], "tax": refunds["part_tax"],
            "gross": refunds["part_gross"], "counter": "Cash",
            "reverses_doc": refunds["credit_note_id"], "voided_at": pd.NaT}))

    events = t["invoice_events"].sort_values(["invoice_id", "occurred_at", "event"])
    events = events.drop_duplicates(["invoice_id", "event"], keep="first")
    if len(events):
        gross = lines.groupby("invoice_id")["gross"].sum()
        credited = _concat(parts, [c for c in PART_COLUMNS if c != "invoice_id"])
        for column in ("date", "voided_at"):
            credited[column] = pd.to_datetime(credited[column])
        credited = credited.merge(lines[["invoice_line_id", "invoice_id"]], on="invoice_line_id")
        pays = t["payments"]
        done: dict[str, pd.Timestamp] = {}
        rows = []
        for inv_id, when, event in events[["invoice_id", "occurred_at", "event"]].itertuples(
                index=False):
            before = credited[(credited["invoice_id"] == inv_id) & (credited["date"] <= when)
                              & (credited["counter"] == "AccountsReceivable")]
            notes_before = before[before["voided_at"].isna() | (before["voided_at"] > when)]
            paid = pays[(pays["invoice_id"] == inv_id) & (pays["paid_at"] <= when)]["amount"]
            open_gross = int(gross.get(inv_id, 0)) - int(notes_before["gross"].sum()) - int(
                paid.sum())
            # a void after a write-off finds nothing open: the write-off already cleared it
            if event == "void" and inv_id in done:
                open_gross = 0
            rows.append((inv_id, when, event, open_gross))
            if event == "uncollectible":
                done[inv_id] = when
        ev = pd.DataFrame(rows, columns=["invoice_id", "date", "event", "doc_gross"])
        ev = ev[ev["doc_gross"] > 0]
        ev["doc_id"] = ev["invoice_id"] + "|" + ev["event"]
        spread_ev = _spread_over_lines(ev.assign(doc_tax=0), gross_lines, "gross")
        if len(spread_ev):
            spread_ev["part_tax"] = _tax_share(spread_ev, lines)
            kind = np.where(spread_ev["event"] == "void", "invoice_void", "uncollectible")
            parts.append(pd.DataFrame({
                "part_id": spread_ev["doc_id"] + "|" + spread_ev["invoice_line_id"],
                "event": kind, "reason": "*", "doc_id": spread_ev["doc_id"],
                "date": spread_ev["date"], "invoice_line_id": spread_ev["invoice_line_id"],
                "tax": spread_ev["part_tax"], "gross": spread_ev["part_gross"],
                "counter": "AccountsReceivable", "reverses_doc": None, "voided_at": pd.NaT}))
    out = _concat(parts, [c for c in PART_COLUMNS if c != "invoice_id"])
    out = out.merge(lines[["invoice_line_id", "invoice_id"]], on="invoice_line_id", how="left")
    for column in ("tax", "gross"):
        out[column] = out[column].astype("int64")
    out["pre_tax"] = out["gross"] - out["tax"]
    out["date"] = pd.to_datetime(out["date"])
    out["voided_at"] = pd.to_datetime(out["voided_at"])
    return out[PART_COLUMNS].reset_index(drop=True), customer_level


def classify_parts(parts: pd.DataFrame, lines: pd.DataFrame, treatments: TreatmentTable,
                   bad_debt_account: str) -> pd.DataFrame:
    """Each part with the line's position and obligation and its treatment (effect, allocation,
    account, the row's rule)."""
    out = parts.copy()
    by_line = lines.set_index("invoice_line_id")
    for column in ("position_key", "position_kind", "obligation_type", "obligation_id",
                   "service_start", "service_end", "legal_entity", "revenue_entity", "currency",
                   "customer_id", "contract_id", "correlation_id", "finalized_at", "role"):
        out[column] = out["invoice_line_id"].map(by_line[column])
    kind = out["role"].map({"contract": "contract", "own": "invoice", "usage": "usage"})
    reason = out["reason"].fillna("*").astype(str)
    # a credit note on a day after its invoice was written off meets no receivable
    written = out[out["event"] == "uncollectible"].groupby("invoice_id")["date"].min()
    after = (out["event"] == "credit_note") & (
        out["date"].dt.normalize() > out["invoice_id"].map(written).dt.normalize())
    reason = reason.where(~after, "after_write_off")
    effects, allocations, accounts, rules = [], [], [], []
    for event, why, contract_kind in zip(out["event"], reason, kind, strict=True):
        row = treatments.lookup(event, why, contract_kind)
        effects.append(row.effect)
        allocations.append(row.allocation)
        account = row.account
        if row.effect in ("collectibility", "collectibility_reversal"):
            account = bad_debt_account
        accounts.append(account)
        rules.append(f"{row.event}/{row.reason}/{row.contract_kind}")
    out["effect"] = effects
    out["allocation"] = allocations
    out["contra"] = accounts
    out["loss_account"] = bad_debt_account
    out["treatment_row"] = rules
    return out
