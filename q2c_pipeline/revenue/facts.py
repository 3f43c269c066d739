"""Everything revenue recognition states about a company as of a day, as plain frames.

``recognize`` runs the revenue side (``contracts``, ``recognition``, ``positions``) and returns a
``RevenueFacts``: the allocation, the schedule, the recognition events, the billing lines, every
reduction part with its treatment and shares, payments (settlements and recoveries), customer
credits, and the contract-position movements of every event. Accounting
(``q2c_pipeline.accounting.postings``) turns these into journals; nothing here knows an account
name beyond the contra accounts the treatment table names.

Columns (all money in minor units of the row's currency):

- ``events``: event_id, position_key, position_kind, date, rank, order, is_billing, billed,
  revenue, stated, price, and the movements deferred, contract_asset, unbilled,
  refund_liability (signed increases) with their ``*_balance`` after the event;
- ``recognition``: event_id, source_type (contract_line, invoice_line, usage, usage_true_up,
  payment), source_id, position_key, date, month, amount, stated, legal_entity, currency,
  customer_id, contract_id, correlation_id, product_code;
- ``parts``: part_id, event, reason, doc_id, date, invoice_id, invoice_line_id, pre_tax, tax,
  gross, counter (AccountsReceivable or Cash), effect, allocation, contra, treatment_row,
  recognized_share, deferred_share, settled_share, void_catch_up, voided_at and the line's
  position and entities;
- ``payments``: payment_id, kind (payment, recovery, one_time), invoice_id, date, amount, tax,
  reversal (bad debt reversed), recoverable, and the invoice's entities.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from q2c_pipeline.core.fx import RateBook
from q2c_pipeline.core.policy import Policy
from q2c_pipeline.revenue.allocation import summarize_allocation
from q2c_pipeline.revenue.contracts import (
    CORRECTION_EFFECTS,
    KIND_ORDER,
    RANK_ADJUSTMENT,
    RANK_BILLING,
    RANK_MODIFICATION,
    RANK_RECOGNITION,
    ContractFacts,
    Recovery,
    build_contract_facts,
)
from q2c_pipeline.revenue.positions import POSITION_EVENT_COLUMNS, position_movements
from q2c_pipeline.revenue.recognition import (
    RECOGNITION_COLUMNS,
    obligation_recognition,
    payment_obligations,
    usage_obligations,
    usage_true_ups,
)
from q2c_pipeline.revenue.treatments import TreatmentTable


@dataclass(frozen=True)
class RevenueFacts:
    allocation: pd.DataFrame
    schedule: pd.DataFrame
    recognition: pd.DataFrame
    invoice_lines: pd.DataFrame
    parts: pd.DataFrame
    customer_credits: pd.DataFrame
    payments: pd.DataFrame
    events: pd.DataFrame
    modifications: pd.DataFrame
    contract: ContractFacts


def _attributes(facts: ContractFacts, usage: pd.DataFrame, one_time: pd.DataFrame
                ) -> pd.DataFrame:
    """Entity, currency, customer, contract and correlation of every schedule source."""
    ob = facts.obligations[["source_type", "source_id", "legal_entity", "currency",
                            "customer_id", "contract_id", "correlation_id",
                            "revenue_contract_id"]]
    frames = [ob]
    for key, book_ob in facts.run.obligations.items():
        if key not in set(zip(ob["source_type"], ob["source_id"], strict=True)):
            frames.append(pd.DataFrame([{"source_type": key[0], "source_id": key[1],
                                         "revenue_contract_id": book_ob.revenue_contract_id}]))
    attrs = pd.concat(frames, ignore_index=True)
    added = attrs["legal_entity"].isna()
    if added.any():
        heads = facts.components.set_index("contract_line_id")
        for column in ("legal_entity", "currency", "customer_id", "contract_id",
                       "correlation_id"):
            attrs.loc[added, column] = attrs.loc[added, "source_id"].map(heads[column])
    usage_attrs = usage.assign(source_type="usage", revenue_contract_id=usage["position_key"])
    pay_attrs = one_time.assign(source_type="payment", source_id=one_time["payment_id"],
                                contract_id=None,
                                revenue_contract_id=one_time["position_key"])
    columns = ["source_type", "source_id", "legal_entity", "currency", "customer_id",
               "contract_id", "correlation_id", "revenue_contract_id"]
    return pd.concat([attrs[columns], usage_attrs[columns], pay_attrs[columns]],
                     ignore_index=True).drop_duplicates(["source_type", "source_id"])


def _true_up_attributes(true_ups: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    by_line = lines.set_index("invoice_line_id")
    return pd.DataFrame({
        "source_type": "usage_true_up", "source_id": true_ups["invoice_line_id"],
        "legal_entity": true_ups["invoice_line_id"].map(by_line["revenue_entity"]),
        "currency": true_ups["invoice_line_id"].map(by_line["currency"]),
        "customer_id": true_ups["invoice_line_id"].map(by_line["customer_id"]),
        "contract_id": true_ups["invoice_line_id"].map(by_line["contract_id"]),
        "correlation_id": true_ups["invoice_line_id"].map(by_line["correlation_id"]),
        "revenue_contract_id": true_ups["position_key"]})


def _payments(t: dict[str, pd.DataFrame], lines: pd.DataFrame, treatments: TreatmentTable,
              bad_debt: str, recoveries: dict[str, Recovery]) -> pd.DataFrame:
    """Payments of invoices: a settlement, or (cash on or after the invoice's write-off) a
    recovery split by the book (``contracts.Recovery``): the tax relief and the credit loss
    reversed, what goes back to the contract's position, the rest to Recoverables."""
    pays = t["payments"][t["payments"]["invoice_id"].notna()].copy()
    inv = lines.drop_duplicates("invoice_id").set_index("invoice_id")
    unknown = ~pays["invoice_id"].isin(inv.index)
    if unknown.any():
        bad = pays.loc[unknown, "payment_id"].iloc[0]
        raise ValueError(f"payments: payment {bad!r} names an invoice that is not known")
    mismatch = pays["currency"] != pays["invoice_id"].map(inv["currency"])
    if mismatch.any():
        bad = pays.loc[mismatch, "payment_id"].iloc[0]
        raise ValueError(f"payments: payment {bad!r} is not in its invoice's currency")
    pays = pays.sort_values(["invoice_id", "paid_at", "payment_id"], kind="mergesort")
    split = pd.DataFrame([(pid, r.tax, r.reversal, r.restored + r.owed_back, r.recoverable,
                           r.overpaid) for pid, r in recoveries.items()],
                         columns=["payment_id", "tax", "reversal", "restored", "recoverable",
                                  "overpaid"])
    rows = pays[["payment_id", "invoice_id", "paid_at", "amount", "currency",
                 "correlation_id"]].rename(columns={"paid_at": "date"}).merge(
        split, on="payment_id", how="left")
    rows["kind"] = np.where(rows["tax"].notna(), "recovery", "payment")
    for column in ("tax", "reversal", "restored", "recoverable", "overpaid", "amount"):
        rows[column] = pd.to_numeric(rows[column]).fillna(0).astype("int64")
    rows["bad_debt_account"] = bad_debt
    for column in ("legal_entity", "contract_id", "customer_id", "revenue_entity",
                   "finalized_at"):
        rows[column] = rows["invoice_id"].map(inv[column])
    rows["correlation_id"] = rows["correlation_id"].where(
        rows["correlation_id"].notna(), rows["invoice_id"].map(inv["correlation_id"]))
    # the treatment table names what a payment is (a settlement or a collectibility reversal)
    for reason in ("*", "after_write_off"):
        treatments.lookup("payment", reason, "*")
    return rows.reset_index(drop=True)


def _part_events(parts: pd.DataFrame) -> pd.DataFrame:
    """Position changes of each reduction part, and of the void of a voided credit note."""
    c = parts["pre_tax"].astype("int64")
    settled = parts["settled_share"].astype("int64")
    priced = parts["effect"].isin(["price_change", "settle_then_price_change", "collectibility"])
    correction = parts["effect"].isin(CORRECTION_EFFECTS)
    # (a credit note on a written-off invoice moves nothing: the write-off cleared it)
    moves = ~parts["effect"].isin(["settlement", "written_off_credit"])
    billed = np.where(moves, -c, 0)
    revenue = np.where(priced, -parts["recognized_share"], 0)
    stated = np.where(priced, -parts["stated_recognized_share"], 0)
    price = np.where(priced, -(c - settled), 0)
    price = np.where(correction, 0, price)
    # credits that settle a contract change (positions.position_movements: ``pending``)
    pending = np.where(parts["effect"] == "contract_settlement", c,
                       np.where(parts["effect"] == "settle_then_price_change", settled, 0))
    base = pd.DataFrame({
        "event_id": parts["part_id"], "position_key": parts["position_key"],
        "position_kind": parts["position_kind"], "date": parts["date"],
        "rank": RANK_ADJUSTMENT, "order": parts["event"].map(KIND_ORDER).fillna(9),
        "is_billing": 0, "billed": billed, "revenue": revenue, "stated": stated,
        "price": price, "pending": np.where(parts["position_kind"] == "contract", pending, 0)})
    voided = (parts["event"] == "credit_note") & parts["voided_at"].notna()
    undo = base[voided.to_numpy()].assign(
        event_id="void|" + parts.loc[voided, "part_id"], date=parts.loc[voided, "voided_at"],
        order=KIND_ORDER["credit_note_void"])
    for column in ("billed", "revenue", "stated", "price", "pending"):
        undo[column] = -undo[column]
    return pd.concat([base, undo], ignore_index=True)


def recognize(t: dict[str, pd.DataFrame], policy: Policy, as_of: date, rates: RateBook,
              treatments: TreatmentTable) -> RevenueFacts:
    """Revenue recognition as of ``as_of`` over prepared inputs
    (``q2c_pipeline.revenue.inputs.prepare_inputs``)."""
    facts = build_contract_facts(t, policy, rates, treatments)
    lines, parts, comps = facts.invoice_lines, facts.parts, facts.components
    usage = usage_obligations(t, lines, comps)
    true_ups = usage_true_ups(usage, lines)
    one_time = payment_obligations(t)
    bad_debt = "CreditLossExpense" if policy.bad_debt_presentation == "credit_loss_expense" \
        else "BadDebt"

    recognition = obligation_recognition(facts, policy.journal_granularity,
                                         policy.daily_rounding)
    usage_rec = pd.DataFrame({
        "event_id": "rec|usage|" + usage["usage_id"], "source_type": "usage",
        "source_id": usage["usage_id"], "position_key": usage["position_key"],
        "date": usage["date"], "amount": usage["amount"], "stated": usage["amount"],
        "kind": "usage"})
    true_rec = pd.DataFrame({
        "event_id": "rec|usage_true_up|" + true_ups["invoice_line_id"].astype(str),
        "source_type": "usage_true_up", "source_id": true_ups["invoice_line_id"],
        "position_key": true_ups["position_key"], "date": true_ups["date"],
        "amount": true_ups["amount"], "stated": true_ups["amount"], "kind": "usage_true_up"})
    true_rec = true_rec[true_rec["amount"] != 0]
    pay_rec = pd.DataFrame({
        "event_id": "rec|payment|" + one_time["payment_id"], "source_type": "payment",
        "source_id": one_time["payment_id"], "position_key": one_time["position_key"],
        "date": one_time["date"], "amount": one_time["pre_tax"], "stated": one_time["pre_tax"],
        "kind": "payment"})
    extra = [f for f in (usage_rec, true_rec, pay_rec) if len(f)]
    if extra:
        more = pd.concat(extra, ignore_index=True)
        more["date"] = pd.to_datetime(more["date"])
        more["month"] = more["date"].dt.year.astype("int64") * 12 + more["date"].dt.month - 1 \
            - 1970 * 12
        recognition = pd.concat([recognition, more[RECOGNITION_COLUMNS]], ignore_index=True) \
            if len(recognition) else more[RECOGNITION_COLUMNS]
    attrs = pd.concat([_attributes(facts, usage, one_time),
                       _true_up_attributes(true_ups, lines)], ignore_index=True
                      ).drop_duplicates(["source_type", "source_id"])
    recognition = recognition.merge(attrs, on=["source_type", "source_id"], how="left",
                                    validate="many_to_one")
    product = usage.set_index("usage_id")["product_code"]
    recognition["product_code"] = np.where(recognition["source_type"] == "usage",
                                           recognition["source_id"].map(product), None)
    recognition["date"] = pd.to_datetime(recognition["date"])

    kinds = pd.concat([
        facts.obligations[["revenue_contract_id", "position_kind"]],
        lines[["position_key", "position_kind"]].rename(
            columns={"position_key": "revenue_contract_id"})], ignore_index=True
    ).drop_duplicates("revenue_contract_id").set_index("revenue_contract_id")["position_kind"]
    # inception: the transaction price of each contract, from its booking (signing) date
    contract_obs = facts.obligations[facts.obligations["position_kind"] == "contract"]
    inception = contract_obs.groupby("revenue_contract_id").agg(
        date=("booking_date", "min"), price=("amount", "sum")).reset_index()
    # own invoice lines of a contract add to its price as they are billed
    billing = pd.DataFrame({
        "event_id": "bill|" + lines["invoice_line_id"], "position_key": lines["position_key"],
        "position_kind": lines["position_kind"], "date": lines["finalized_at"],
        "rank": RANK_BILLING, "order": 1, "is_billing": 1, "billed": lines["pre_tax"],
        "revenue": 0, "stated": 0,
        "price": np.where(lines["role"] == "own", lines["pre_tax"], 0)})
    frames = [
        pd.DataFrame({"event_id": "price|" + inception["revenue_contract_id"],
                      "position_key": inception["revenue_contract_id"],
                      "position_kind": "contract", "date": inception["date"],
                      "rank": RANK_BILLING, "order": 0, "is_billing": 0, "billed": 0,
                      "revenue": 0, "stated": 0, "price": inception["price"]}),
        billing, _part_events(parts),
        pd.DataFrame({"event_id": recognition["event_id"],
                      "position_key": recognition["position_key"],
                      "position_kind": recognition["position_key"].map(kinds).fillna("usage"),
                      "date": recognition["date"], "rank": RANK_RECOGNITION, "order": 0,
                      "is_billing": 0, "billed": 0, "revenue": recognition["amount"],
                      "stated": recognition["stated"], "price": 0}),
    ]
    pay_billing = pd.DataFrame({
        "event_id": "bill|payment|" + one_time["payment_id"],
        "position_key": one_time["position_key"], "position_kind": "payment",
        "date": one_time["date"], "rank": RANK_BILLING, "order": 1, "is_billing": 1,
        "billed": one_time["pre_tax"], "revenue": 0, "stated": 0, "price": 0})
    frames.append(pay_billing)
    back = pd.DataFrame([(pid, r.revenue_contract_id, r.restored, r.owed_back)
                         for pid, r in sorted(facts.run.recoveries.items())
                         if r.restored or r.owed_back],
                        columns=["payment_id", "position_key", "amount", "owed_back"])
    if len(back):
        # cash after a write-off that gives back the deferred share: billed and price again;
        # cash for service cancelled after the write-off: billed beyond the price
        paid_at = t["payments"].drop_duplicates("payment_id").set_index("payment_id")["paid_at"]
        frames.append(pd.DataFrame({
            "event_id": "recovery|" + back["payment_id"], "position_key": back["position_key"],
            "position_kind": back["position_key"].map(kinds).fillna("contract"),
            "date": back["payment_id"].map(paid_at), "rank": RANK_ADJUSTMENT,
            "order": KIND_ORDER["recovery"], "is_billing": 0,
            "billed": back["amount"] + back["owed_back"], "revenue": 0, "stated": 0,
            "price": back["amount"]}))
    mods = pd.DataFrame(facts.run.modifications, columns=[
        "revenue_contract_id", "contract_id", "version", "date", "price_change", "catch_up"])
    if len(mods):
        frames.append(pd.DataFrame({
            "event_id": "mod|" + mods["revenue_contract_id"] + "|v" + mods["version"].astype(str),
            "position_key": mods["revenue_contract_id"], "position_kind": "contract",
            "date": mods["date"], "rank": RANK_MODIFICATION, "order": 0, "is_billing": 0,
            "billed": 0, "revenue": 0, "stated": 0, "price": mods["price_change"],
            "pending": np.minimum(mods["price_change"].astype("int64"), 0)}))
    events = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(
        len(f) for f in frames) else pd.DataFrame(columns=POSITION_EVENT_COLUMNS)
    events["date"] = pd.to_datetime(events["date"])
    for column in ("billed", "revenue", "stated", "price", "pending", "rank", "order",
                   "is_billing"):
        if column not in events.columns:
            events[column] = 0
        events[column] = pd.to_numeric(events[column]).fillna(0).astype("int64")
    events = events[POSITION_EVENT_COLUMNS]
    events = position_movements(events)

    # each obligation's allocation after modifications = its schedule + what reductions took off
    # it (net of voided credit notes, which gave theirs back)
    reductions = pd.Series({key[1]: amount for key, amount in facts.run.reductions.items()
                            if key[0] == "contract_line"}, dtype="int64")
    schedule = facts.schedule
    totals = schedule[schedule["source_type"] == "contract_line"].groupby("source_id")[
        "amount"].sum() if len(schedule) else pd.Series(dtype="int64")
    totals = totals.add(reductions, fill_value=0).astype("int64")
    allocation = summarize_allocation(comps, totals)
    allocation["deferred_reductions"] = allocation["contract_line_id"].map(reductions).fillna(
        0).astype("int64")
    payments = _payments(t, lines, treatments, bad_debt, facts.run.recoveries)
    credits = facts.customer_credits
    return RevenueFacts(allocation=allocation, schedule=schedule, recognition=recognition,
                        invoice_lines=lines, parts=parts, customer_credits=credits,
                        payments=payments, events=events, modifications=mods,
                        contract=facts)
