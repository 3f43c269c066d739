"""Posting rules: the revenue facts as journal postings, one signed amount per account.

Input is the frames ``q2c_pipeline.revenue.facts`` documents (recognition, invoice lines,
reduction parts, payments, customer credits, position events), passed as a plain mapping:
accounting never imports revenue. A posting's ``amount`` is ``+`` debit, ``-`` credit, in the
transaction currency; ``rate_date`` is the date whose rate measures it and ``measure`` says how
``q2c_pipeline.accounting.measurement`` turns it into functional currency:

- ``spot``: at the rate of ``rate_date``;
- ``layer``: a balance carried at historical rates (the contract position accounts per revenue
  contract, the receivable per invoice): an increase is a new layer at the rate of
  ``rate_date``, a decrease relieves the oldest layers at their carrying amounts;
- ``balance``: the line that absorbs the journal's difference (``Revenue`` in a recognition
  entry, so revenue from advance consideration is measured at the rate of the deferred revenue
  it releases, IFRIC 22 / ASC 830-10-45-17).

Journals (``journal_group``): ``revenue|...`` one per obligation and period (or day), ``usage|...``
(summary) or one per usage event, ``invoice|<id>``, ``<event>|<document>`` per reduction
document, ``credit_note_void|<id>``, ``payment|<id>`` (a payment, a recovery or a one-time
charge), ``contract_position|...`` for a position reclassification no billing or revenue causes
(a modification moving deferred revenue to a refund liability).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from q2c_pipeline.accounting.usage_summary import fingerprint_events, summary_line_ids
from q2c_pipeline.core.calendar import period_end_dates, period_labels

POSTING_COLUMNS = [
    "journal_group", "journal_kind", "source_type", "source_id", "source_line_id",
    "legal_entity", "revenue_entity", "functional_currency", "currency", "date", "rate_date",
    "event_rate_date", "account", "amount", "measure", "layer", "is_cash", "contract_id",
    "customer_id", "correlation_id", "memo", "order", "event_count", "events_fingerprint",
]
# Position balance -> (logical account, sign of a posting that increases it)
POSITION_ACCOUNTS = {
    "deferred": ("DeferredRevenue", -1),
    "contract_asset": ("ContractAsset", 1),
    "unbilled": ("UnbilledAccountsReceivable", 1),
    "refund_liability": ("RefundLiability", -1),
}
# A product's usage summary books at most Revenue and the four position accounts.
USAGE_LINES_PER_PRODUCT = 1 + len(POSITION_ACCOUNTS)


def _fill(series: pd.Series, fallback) -> pd.Series:
    return series.where(series.notna(), fallback)


def _frame(rows: pd.DataFrame, **values) -> pd.DataFrame:
    """Postings from ``rows`` with the given columns (scalars or series)."""
    out = pd.DataFrame(index=rows.index)
    for column in POSTING_COLUMNS:
        if column in values:
            out[column] = values[column]
        elif column in rows.columns:
            out[column] = rows[column]
        else:
            out[column] = None
    return out


def _position_lines(owner: pd.DataFrame, events: pd.DataFrame) -> list[pd.DataFrame]:
    """Position-account postings of the events ``owner`` rows own (``event_id``): one per
    nonzero movement, measured in layers per revenue contract and account."""
    moves = owner.merge(events[["event_id", "position_key", *POSITION_ACCOUNTS]],
                        on="event_id", how="inner", suffixes=("", "_event"))
    out = []
    for name, (account, sign) in POSITION_ACCOUNTS.items():
        rows = moves[moves[name] != 0]
        if len(rows) == 0:
            continue
        out.append(_frame(rows, account=account, amount=sign * rows[name].astype("int64"),
                          measure="layer",
                          layer=rows["position_key_event"] + "|" + account, order=3))
    return out


def recognition_postings(recognition: pd.DataFrame, events: pd.DataFrame,
                         usage_summary: int | None) -> list[pd.DataFrame]:
    """Revenue (and usage) recognition entries: Cr Revenue, Dr the position accounts."""
    if len(recognition) == 0:
        return []
    rec = recognition.copy()
    is_usage = rec["source_type"] == "usage"
    label = np.where(rec["kind"] == "day", rec["date"].dt.strftime("%Y-%m-%d"),
                     rec["month"].astype(str))
    journal_type = np.where(is_usage, "usage", "revenue")
    rec["journal_group"] = (pd.Series(journal_type, index=rec.index) + "|" + rec["source_type"]
                            + "|" + rec["source_id"] + "|" + pd.Series(label, index=rec.index))
    rec["journal_kind"] = "recognition"
    rec["source_line_id"] = np.where(is_usage, None, rec["source_type"])
    memo = np.where(rec["kind"] == "day", rec["date"].dt.strftime("%Y-%m-%d"),
                    period_labels(rec["month"].to_numpy()))
    rec["memo"] = np.where(is_usage, "usage recognized", np.where(
        rec["source_type"] == "usage_true_up", "usage billed less rated",
        "revenue recognized " + pd.Series(memo, index=rec.index)))
    rec["source_type"] = np.where(is_usage, "usage", "revenue")
    rec["rate_date"] = rec["date"]
    rec["event_rate_date"] = rec["date"]
    rec["revenue_entity"] = rec["legal_entity"]
    rec["is_cash"] = False
    summary = None
    if usage_summary is not None and is_usage.any():
        summary = _usage_summary(rec[is_usage], events, usage_summary)
        rec = rec[~is_usage]
    parts = []
    if len(rec):
        parts.append(_frame(rec, account="Revenue", amount=-rec["amount"].astype("int64"),
                            measure="balance", order=4))
        parts.extend(_position_lines(rec, events))
    if summary is not None:
        parts.append(summary)
    return parts


def _usage_summary(rec: pd.DataFrame, events: pd.DataFrame, max_lines: int) -> pd.DataFrame:
    """Usage recognition summed per entity, day, product, currency and position, then one line
    per product and account (``usl_`` summary line id), one journal per entity, day and currency
    split into parts of at most ``max_lines // USAGE_LINES_PER_PRODUCT`` products."""
    product = rec["product_code"].astype(object).where(rec["product_code"].notna(), "")
    day = rec["date"].dt.normalize()
    day_text = day.dt.strftime("%Y-%m-%d")
    line_key = rec["legal_entity"].astype(str) + "|" + day_text + "|" + product.astype(str) \
        + "|" + rec["currency"]
    prints = fingerprint_events(line_key, rec["source_id"]).set_index("group")
    rank = rec.assign(product_code=product, day=day).groupby(
        ["legal_entity", "day", "currency"])["product_code"].rank(method="dense").astype("int64")
    chunk = (rank - 1) // max(max_lines // USAGE_LINES_PER_PRODUCT, 1)
    moves = rec.merge(events[["event_id", *POSITION_ACCOUNTS]], on="event_id", how="left")
    moves.index = rec.index
    frame = rec.assign(product_code=product.astype(str), day=day, day_text=day_text,
                       line_key=line_key, chunk=chunk)
    for name in POSITION_ACCOUNTS:
        frame[name] = moves[name].fillna(0).astype("int64")
    keys = ["legal_entity", "revenue_entity", "currency", "day", "day_text", "product_code",
            "position_key", "chunk", "line_key"]
    sums = frame.groupby(keys, as_index=False, sort=True)[["amount", *POSITION_ACCOUNTS]].sum()
    parts = sums.groupby(["legal_entity", "day", "currency"])["chunk"].transform("max") + 1
    entry = sums["legal_entity"] + "|" + sums["day_text"] + "|" + sums["currency"]
    sums["journal_group"] = "usage|" + entry + "|" + sums["chunk"].astype(str)
    sums["memo"] = "usage summary " + sums["day_text"] + " " + sums["currency"] + np.where(
        parts > 1, " part " + (sums["chunk"] + 1).astype(str) + "/" + parts.astype(str), "")
    base = dict(journal_kind="recognition", source_type="usage", source_line_id=None,
                date=sums["day"], rate_date=sums["day"], event_rate_date=sums["day"],
                is_cash=False, contract_id=None, customer_id=None, correlation_id=None,
                event_count=sums["line_key"].map(prints["event_count"]),
                events_fingerprint=sums["line_key"].map(prints["events_fingerprint"]))
    lines = [_frame(sums, account="Revenue", amount=-sums["amount"], measure="balance",
                    order=4, source_id=sums["line_key"], **base)]
    for name, (account, sign) in POSITION_ACCOUNTS.items():
        rows = sums[sums[name] != 0]
        lines.append(_frame(rows, account=account, amount=sign * rows[name], measure="layer",
                            layer=rows["position_key"] + "|" + account, order=3,
                            source_id=rows["line_key"],
                            **{k: (v[rows.index] if isinstance(v, pd.Series) else v)
                               for k, v in base.items()}))
    out = pd.concat([f for f in lines if len(f)], ignore_index=True)
    out["source_line_id"] = out["source_id"].str.split("|").str[2]
    # one line per entry, product and account; ids of the DuckDB summary lines
    keys = ["journal_group", "account", "source_id"]
    firsts = [c for c in POSTING_COLUMNS if c not in keys + ["amount"]]
    summed = out.groupby(keys, as_index=False, sort=True).agg(
        amount=("amount", "sum"), **{c: (c, "first") for c in firsts})
    summed = summed[summed["amount"] != 0]
    ids = summary_line_ids(summed["legal_entity"], summed["date"], summed["source_line_id"],
                           summed["account"], summed["currency"])
    summed["source_id"] = ids
    summed["correlation_id"] = ids
    return summed[POSTING_COLUMNS]


def billing_postings(lines: pd.DataFrame, events: pd.DataFrame) -> list[pd.DataFrame]:
    """Dr receivable (gross), Cr tax, and the position accounts (pre-tax), per invoice line."""
    if len(lines) == 0:
        return []
    bill = lines.assign(
        event_id="bill|" + lines["invoice_line_id"], journal_group="invoice|" + lines[
            "invoice_id"], journal_kind="billing", source_type="invoice",
        source_id=lines["invoice_id"], source_line_id=lines["invoice_line_id"],
        date=lines["finalized_at"], rate_date=lines["finalized_at"],
        event_rate_date=lines["finalized_at"], is_cash=False, memo="invoice billed")
    return [
        _frame(bill, account="AccountsReceivable", amount=bill["gross"].astype("int64"),
               measure="layer", layer="invoice|" + bill["invoice_id"], order=1),
        _frame(bill, account="TaxLiability", amount=-bill["tax"].astype("int64"),
               measure="spot", order=6),
        *_position_lines(bill, events),
    ]


def part_postings(parts: pd.DataFrame, events: pd.DataFrame) -> list[pd.DataFrame]:
    """Each reduction part: Dr contra (recognized share), Dr tax, Cr receivable or cash, and the
    position accounts; a voided credit note reverses its lines. A refund that settles a credit
    note moves cash only (Dr receivable, Cr cash)."""
    if len(parts) == 0:
        return []
    p = parts.assign(
        event_id=parts["part_id"], journal_kind="adjustment", source_type=parts["event"],
        source_id=parts["doc_id"], source_line_id=parts["invoice_line_id"],
        journal_group=parts["event"] + "|" + parts["doc_id"], rate_date=parts["finalized_at"],
        memo=parts["event"].str.replace("_", " ") + " (" + parts["effect"].str.replace(
            "_", " ") + ")", is_cash=parts["counter"] == "Cash")
    p["event_rate_date"] = p["date"].where(p["is_cash"], p["finalized_at"])
    voided = (p["event"] == "credit_note") & p["voided_at"].notna()
    undo = p[voided].assign(
        event_id="void|" + p.loc[voided, "part_id"], source_type="credit_note_void",
        journal_group="credit_note_void|" + p.loc[voided, "doc_id"],
        date=p.loc[voided, "voided_at"], memo="credit note void")
    out = []
    for frame, sign in ((p, 1), (undo, -1)):
        if len(frame) == 0:
            continue
        forgives = frame["effect"] == "written_off_credit"
        priced = frame["effect"].isin(["price_change", "settle_then_price_change",
                                       "collectibility", "written_off_credit"])
        settles_note = frame["effect"] == "settlement"
        contra = frame[priced & (frame["recognized_share"] != 0)]
        out.append(_frame(contra, account=contra["contra"],
                          amount=sign * contra["recognized_share"].astype("int64"),
                          measure="spot", order=5))
        # a credit note on a written-off invoice: its share of the credit loss becomes contra
        # revenue; the receivable and its tax were already cleared by the write-off
        waived = frame[forgives & (frame["recognized_share"] != 0)]
        out.append(_frame(waived, account=waived["loss_account"],
                          amount=-sign * waived["recognized_share"].astype("int64"),
                          measure="spot", order=5))
        taxed = frame[~settles_note & ~forgives & (frame["tax"] != 0)]
        out.append(_frame(taxed, account="TaxLiability", amount=sign * taxed["tax"],
                          measure="spot", order=6))
        counter = frame[(frame["gross"] != 0) & ~forgives]
        counter_layer = np.where(counter["counter"] == "AccountsReceivable",
                                 "invoice|" + counter["invoice_id"].astype(str), None)
        out.append(_frame(counter, account=counter["counter"],
                          amount=-sign * counter["gross"].astype("int64"),
                          measure=np.where(counter["counter"] == "Cash", "spot", "layer"),
                          layer=counter_layer,
                          rate_date=counter["date"].where(counter["is_cash"],
                                                          counter["rate_date"]), order=1))
        note = frame[settles_note & (frame["gross"] != 0)]
        out.append(_frame(note, account="AccountsReceivable", amount=sign * note["gross"],
                          measure="layer", layer="invoice|" + note["invoice_id"].astype(str),
                          order=2))
        out.extend(_position_lines(frame, events))
    return out


def customer_credit_postings(credits: pd.DataFrame, customers: pd.DataFrame,
                             contra: str) -> list[pd.DataFrame]:
    """A credit note naming no invoice: consideration payable to the customer, contra revenue
    when issued (Dr contra pre-tax, Dr tax, Cr receivable); a void reverses it."""
    if len(credits) == 0:
        return []
    entity = credits["customer_id"].map(customers.set_index("customer_id")["legal_entity"])
    if entity.isna().any():
        bad = credits.loc[entity.isna(), "credit_note_id"].iloc[0]
        raise ValueError(f"credit_notes: no invoice and no known customer for {bad!r}")
    cc = credits.assign(
        journal_kind="adjustment", source_type="credit_note", source_id=credits["credit_note_id"],
        legal_entity=entity, revenue_entity=entity, date=credits["issued_at"],
        rate_date=credits["issued_at"], event_rate_date=credits["issued_at"],
        journal_group="credit_note|" + credits["credit_note_id"], is_cash=False,
        memo="customer credit", contract_id=None,
        correlation_id=_fill(credits["correlation_id"], credits["credit_note_id"]))
    voided = cc[cc["voided_at"].notna()]
    voided = voided.assign(source_type="credit_note_void", date=voided["voided_at"],
                           journal_group="credit_note_void|" + voided["credit_note_id"],
                           doc_gross=-voided["doc_gross"], doc_tax=-voided["doc_tax"],
                           memo="customer credit void")
    out = []
    for frame in (cc, voided):
        out.append(_frame(frame, account=contra, amount=frame["doc_gross"] - frame["doc_tax"],
                          measure="spot", order=5))
        out.append(_frame(frame, account="TaxLiability", amount=frame["doc_tax"],
                          measure="spot", order=6))
        out.append(_frame(frame, account="AccountsReceivable", amount=-frame["doc_gross"],
                          measure="spot", order=1))
    return out


def payment_postings(payments: pd.DataFrame, one_time: pd.DataFrame,
                     events: pd.DataFrame) -> list[pd.DataFrame]:
    """Payments: Dr cash at its date, Cr the invoice's receivable at its carrying amount
    (realized FX to FxGain/FxLoss); after a write-off: Cr tax (the relief reversed), Cr bad debt
    (up to what was written off), Cr the contract position (the deferred share the write-off
    took off the schedule, which is recognized again), Cr Recoverables (the rest); a one-time
    charge with no invoice: Dr cash, Cr tax and the position (it is recognized when paid)."""
    out = []
    if len(payments):
        pay = payments.assign(
            journal_kind="cash", source_type=payments["kind"], source_id=payments["payment_id"],
            source_line_id=payments["invoice_id"], journal_group="payment|" + payments[
                "payment_id"], rate_date=payments["date"], event_rate_date=payments["date"],
            is_cash=True, memo=np.where(payments["kind"] == "recovery",
                                        "cash received after write-off", "payment received"))
        out.append(_frame(pay, account="Cash", amount=pay["amount"], measure="spot", order=1))
        settle = pay[pay["kind"] == "payment"]
        out.append(_frame(settle, account="AccountsReceivable", amount=-settle["amount"],
                          measure="layer", layer="invoice|" + settle["invoice_id"], order=2))
        rec = pay[pay["kind"] == "recovery"]
        # cash after a write-off beyond what was written off settles nothing: it is a credit on
        # the receivable, owed to the customer (CustomerCredit at the month end)
        over = rec[rec["overpaid"] != 0]
        out.append(_frame(over, account="AccountsReceivable", amount=-over["overpaid"],
                          measure="layer", layer="invoice|" + over["invoice_id"], order=2))
        for column, account, order in (("tax", "TaxLiability", 6), ("reversal", None, 5),
                                       ("recoverable", "Recoverables", 5)):
            rows = rec[rec[column] != 0]
            out.append(_frame(rows, account=rows["bad_debt_account"] if account is None
                              else account, amount=-rows[column],
                              rate_date=rows["finalized_at"] if column != "recoverable"
                              else rows["date"], measure="spot", order=order))
        # the deferred share the write-off took off the schedule comes back to the position
        back = rec[rec["restored"] != 0]
        if len(back):
            out.extend(_position_lines(back.assign(event_id="recovery|" + back["payment_id"],
                                                   position_key=None),
                                       events))
    if len(one_time):
        lp = one_time.assign(
            event_id="bill|payment|" + one_time["payment_id"], journal_kind="cash",
            source_type="payment", source_id=one_time["payment_id"], source_line_id=None,
            revenue_entity=one_time["legal_entity"], rate_date=one_time["date"],
            event_rate_date=one_time["date"], contract_id=None,
            journal_group="payment|" + one_time["payment_id"], is_cash=True,
            memo="one-time charge paid")
        out.append(_frame(lp, account="Cash", amount=lp["gross"], measure="spot", order=1))
        out.append(_frame(lp, account="TaxLiability", amount=-lp["tax"], measure="spot",
                          order=6))
        out.extend(_position_lines(lp, events))
    return out


def reclass_postings(events: pd.DataFrame, owners: pd.DataFrame) -> list[pd.DataFrame]:
    """Position reclassifications no billing or revenue causes (a modification changing the
    price, the price arriving after a billing), as ``contract_position`` journals."""
    moved = events[events["event_id"].str.startswith(("mod|", "price|"))]
    moved = moved[(moved[list(POSITION_ACCOUNTS)] != 0).any(axis=1)]
    if len(moved) == 0:
        return []
    attrs = owners.drop_duplicates("position_key").set_index("position_key")
    rows = moved.assign(
        journal_kind="reclass", source_type="contract_position",
        source_id=moved["position_key"], source_line_id=moved["event_id"],
        journal_group="contract_position|" + moved["event_id"], rate_date=moved["date"],
        event_rate_date=moved["date"], is_cash=False,
        memo=np.where(moved["event_id"].str.startswith("mod|"),
                      "contract modification: position reclassified",
                      "transaction price: position reclassified"))
    for column in ("legal_entity", "currency", "customer_id", "contract_id", "correlation_id"):
        rows[column] = rows["position_key"].map(attrs[column])
    rows["revenue_entity"] = rows["legal_entity"]
    return _position_lines(rows[[c for c in rows.columns if c not in POSITION_ACCOUNTS]],
                           events)


def build_postings(facts: Mapping[str, pd.DataFrame], customers: pd.DataFrame,
                   functional: Mapping[str, str], cutoff: pd.Timestamp, as_of_month: int,
                   usage_summary: int | None, customer_contra: str) -> pd.DataFrame:
    """Every posting of every journal known by ``cutoff``; recognition of periods up to
    ``as_of_month`` (the current month's entry, dated at its end, is included)."""
    events = facts["events"]
    rec = facts["recognition"]
    by_period = rec["kind"] == "period"
    rec = rec[np.where(by_period, rec["month"] <= as_of_month, rec["date"] < cutoff)]
    lines = facts["invoice_lines"]
    parts = facts["parts"]
    voided_late = parts["voided_at"] >= cutoff
    parts = parts.assign(voided_at=parts["voided_at"].where(~voided_late, pd.NaT))
    frames = [
        *recognition_postings(rec, events, usage_summary),
        *billing_postings(lines, events),
        *part_postings(parts, events),
        *customer_credit_postings(facts["customer_credits"], customers, customer_contra),
        *payment_postings(facts["payments"], facts["one_time"], events),
        *reclass_postings(events[events["date"] < cutoff], facts["owners"]),
    ]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=POSTING_COLUMNS)
    postings = pd.concat(frames, ignore_index=True)
    postings["revenue_entity"] = _fill(postings["revenue_entity"], postings["legal_entity"])
    for column in ("date", "rate_date", "event_rate_date"):
        postings[column] = pd.to_datetime(postings[column])
    postings["amount"] = postings["amount"].astype("int64")
    postings["functional_currency"] = postings["legal_entity"].map(functional)
    postings = postings[postings["amount"] != 0].reset_index(drop=True)
    return postings


def period_end(months) -> np.ndarray:
    return period_end_dates(np.asarray(months, dtype=np.int64))
