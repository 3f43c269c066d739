"""Balanced, idempotent journal lines from postings.

Builders in the engine emit *postings*: one signed amount per account (``+`` debit, ``-`` credit)
with the journal it belongs to, its business date and the date whose FX rate measures it. This
module splits contract positions between deferred revenue and unbilled receivable, converts to
the functional currency, books realized FX and rounding, moves lines out of closed periods and
derives deterministic ``journal_key``/``journal_id`` values.

It also holds the two ledger rules that work on postings or lines rather than on source documents:
intercompany pairs (``post_intercompany_pairs``) and month-end remeasurement of open
foreign-currency monetary balances (``build_remeasurement_postings``).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from q2c_pipeline.core.calendar import month_index, period_end_dates, period_labels
from q2c_pipeline.core.fx import RateBook

RULE_VERSION = "q2c-ledger-1"

JOURNAL_COLUMNS = [
    "journal_id", "journal_key", "line_number", "legal_entity", "period", "entry_date", "account",
    "debit", "credit", "currency", "debit_functional", "credit_functional", "source_type",
    "source_id", "correlation_id", "memo", "functional_currency", "source_line_id",
    "original_date", "contract_id", "customer_id", "event_count", "events_fingerprint",
]

POSTING_COLUMNS = [
    "journal_group", "source_type", "source_id", "source_line_id", "legal_entity",
    "functional_currency", "currency", "date", "rate_date", "account", "amount", "is_cash",
    "contract_id", "customer_id", "correlation_id", "memo", "order",
]
# Optional posting columns: a functional amount fixed by the rule (remeasurement lines carry 0 in
# the transaction currency), and the event count and fingerprint of a usage summary line.
OPTIONAL_POSTING_COLUMNS = ["functional_amount", "event_count", "events_fingerprint"]

# Accounts of the contracting entity's side of an intercompany sale: the contract position, its
# revenue and the reductions of it. AR, cash and tax stay with the invoicing entity.
INTERCOMPANY_MOVED_ACCOUNTS = (
    "DeferredRevenue", "UnbilledAccountsReceivable", "Revenue", "CreditNotes", "Refunds", "Voids",
    "BadDebt", "Recoverables",
)
# Monetary accounts remeasured at month end (ASC 830-20-35-1, IAS 21.23(a)); DeferredRevenue is a
# non-monetary liability and stays at its historical rate (IAS 21.23(b)).
MONETARY_ACCOUNTS = ("AccountsReceivable", "Cash")


def split_position(events: pd.DataFrame) -> pd.DataFrame:
    """Deferred revenue / unbilled receivable movements of each contract-position event.

    ``events``: position_key, date, rank, event_id, delta (+ billed, - recognized or reduced).
    A position's running net P = billed - recognized is deferred revenue when positive and
    unbilled receivable when negative, so an event moving P from P0 to P1 changes deferred
    revenue by max(P1,0)-max(P0,0) and unbilled by max(-P1,0)-max(-P0,0). Vectorized with a
    cumulative sum per position after a deterministic sort.
    """
    ev = events.copy()
    ev["_day"] = pd.to_datetime(ev["date"]).dt.normalize()
    ev = ev.sort_values(["position_key", "_day", "rank", "date", "event_id"], kind="mergesort")
    p1 = ev.groupby("position_key", sort=False)["delta"].cumsum().astype("int64")
    p0 = p1 - ev["delta"].astype("int64")
    ev["deferred_increase"] = np.maximum(p1, 0) - np.maximum(p0, 0)
    ev["unbilled_increase"] = np.maximum(-p1, 0) - np.maximum(-p0, 0)
    return ev.drop(columns="_day").sort_index()


def position_postings(events: pd.DataFrame) -> pd.DataFrame:
    """Two postings per event: DeferredRevenue (credit as it grows), Unbilled (debit as it grows).

    ``events`` carries the posting columns besides account/amount, plus the split.
    """
    deferred = events.assign(account="DeferredRevenue", amount=-events["deferred_increase"])
    unbilled = events.assign(account="UnbilledAccountsReceivable",
                             amount=events["unbilled_increase"])
    return pd.concat([deferred, unbilled], ignore_index=True)


def shift_closed_periods(
    legal_entity: pd.Series, dates: pd.Series, accounting_periods: pd.DataFrame
) -> pd.Series:
    """Period each line posts to: its date's month, or the first open month on or after it."""
    months = pd.Series(month_index(pd.to_datetime(dates).to_numpy()), index=dates.index)
    closed = _closed_months(accounting_periods)
    pairs = pd.DataFrame({"entity": legal_entity.astype(str), "month": months}).drop_duplicates()
    target = {}
    for entity, month in pairs.itertuples(index=False):
        shut = closed.get(entity, set())
        m = int(month)
        while m in shut:
            m += 1
        target[(entity, int(month))] = m
    posted = [target[(e, int(m))] for e, m in zip(legal_entity.astype(str), months, strict=True)]
    return pd.Series(posted, index=dates.index, dtype="int64")


def _rebalance_functional(lines: pd.DataFrame) -> pd.DataFrame:
    """Make every journal balance in functional currency.

    Cash journals (payments, refunds) book the difference between the cash rate and the rate the
    receivable was booked at as realized FxGain / FxLoss. Other journals are measured at one rate,
    so any difference is rounding and goes to their largest line.
    """
    residual = lines.groupby("journal_group", sort=False)["amount_functional"].transform("sum")
    journals = lines.assign(_residual=residual).drop_duplicates("journal_group")
    journals = journals[journals["_residual"] != 0]
    cash = journals[journals["is_cash"]]
    fx = cash.assign(
        account=np.where(cash["_residual"] > 0, "FxGain", "FxLoss"),
        amount=0, amount_functional=-cash["_residual"], order=99,
        source_line_id=cash["source_line_id"], memo="realized FX on settlement",
    ).drop(columns="_residual")
    rounding = journals[~journals["is_cash"]][["journal_group", "_residual"]]
    out = lines.copy()
    if len(rounding):
        ranked = out.assign(_abs=out["amount_functional"].abs()).sort_values(
            ["journal_group", "_abs", "order"], ascending=[True, False, True], kind="mergesort")
        target = ranked.drop_duplicates("journal_group")[["journal_group"]]
        target = target.merge(rounding, on="journal_group")
        idx = ranked.drop_duplicates("journal_group")
        idx = idx[idx["journal_group"].isin(target["journal_group"])]
        fix = idx["journal_group"].map(target.set_index("journal_group")["_residual"])
        out.loc[idx.index, "amount_functional"] -= fix.astype("int64")
    return pd.concat([out, fx], ignore_index=True)


def build_journal_lines(
    postings: pd.DataFrame, rates: RateBook, accounting_periods: pd.DataFrame
) -> pd.DataFrame:
    """Postings -> journal_lines (canonical columns + extras), sorted, with a fresh index."""
    if len(postings) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in JOURNAL_COLUMNS})
    lines = postings[POSTING_COLUMNS].copy()
    for column in OPTIONAL_POSTING_COLUMNS:
        lines[column] = postings[column] if column in postings.columns else pd.NA
    lines["amount"] = lines["amount"].astype("int64")
    converted = rates.convert(
        lines["amount"].to_numpy(), lines["currency"].to_numpy(),
        lines["functional_currency"].to_numpy(), lines["rate_date"].to_numpy(),
    )
    fixed = pd.to_numeric(lines["functional_amount"]).astype("Int64")
    lines["amount_functional"] = np.where(fixed.notna(), fixed.fillna(0).to_numpy("int64"),
                                          converted).astype("int64")
    lines = _rebalance_functional(lines)
    lines = lines[(lines["amount"] != 0) | (lines["amount_functional"] != 0)].copy()

    lines["original_date"] = pd.to_datetime(lines["date"]).dt.normalize()
    posted = shift_closed_periods(lines["legal_entity"], lines["original_date"], accounting_periods)
    lines["period"] = period_labels(posted.to_numpy())
    shifted = posted.to_numpy() != month_index(lines["original_date"].to_numpy())
    first_day = posted.to_numpy().astype("datetime64[M]").astype("datetime64[ns]")
    lines["entry_date"] = np.where(shifted, first_day, lines["original_date"].to_numpy())
    lines["entry_date"] = pd.to_datetime(lines["entry_date"])

    lines["debit"] = np.maximum(lines["amount"], 0)
    lines["credit"] = np.maximum(-lines["amount"], 0)
    lines["debit_functional"] = np.maximum(lines["amount_functional"], 0)
    lines["credit_functional"] = np.maximum(-lines["amount_functional"], 0)

    lines = lines.sort_values(
        ["journal_group", "order", "account", "source_line_id", "amount"], kind="mergesort"
    ).reset_index(drop=True)
    fingerprint = (
        lines["source_type"].astype(str) + "|" + lines["source_id"].astype(str) + "|"
        + lines["source_line_id"].fillna("").astype(str) + "|" + lines["account"] + "|"
        + lines["currency"] + "|" + lines["amount"].astype(str) + "|"
        + lines["amount_functional"].astype(str) + "|"
        + lines["original_date"].dt.strftime("%Y-%m-%d")
        # a usage summary line also commits to the events behind it
        + np.where(lines["events_fingerprint"].notna(),
                   "|" + lines["events_fingerprint"].fillna("").astype(str), "")
    )
    keys = {}
    for group, parts in fingerprint.groupby(lines["journal_group"], sort=False):
        ids = sorted({p.split("|", 3)[1] for p in parts} | {p.split("|", 3)[2] for p in parts})
        payload = RULE_VERSION + "\n" + "\n".join(i for i in ids if i) + "\n" + "\n".join(parts)
        keys[group] = hashlib.sha256(payload.encode("utf-8")).hexdigest()
    lines["journal_key"] = lines["journal_group"].map(keys)
    lines["journal_id"] = "je_" + lines["journal_key"].str[:24]
    lines["line_number"] = lines.groupby("journal_group", sort=False).cumcount() + 1
    lines["original_date"] = lines["original_date"].dt.date
    lines["entry_date"] = lines["entry_date"].dt.date
    lines["event_count"] = pd.to_numeric(lines["event_count"]).astype("Int64")
    lines["events_fingerprint"] = lines["events_fingerprint"].astype(object).where(
        lines["events_fingerprint"].notna(), None)
    out = lines[JOURNAL_COLUMNS].copy()
    for column in ("debit", "credit", "debit_functional", "credit_functional", "line_number"):
        out[column] = out[column].astype("int64")
    return sort_journal_lines(out)


def sort_journal_lines(journal_lines: pd.DataFrame) -> pd.DataFrame:
    """The canonical row order of journal_lines, with a fresh index."""
    return journal_lines.sort_values(
        ["legal_entity", "period", "entry_date", "journal_id", "line_number"], kind="mergesort"
    ).reset_index(drop=True)


def post_intercompany_pairs(postings: pd.DataFrame) -> pd.DataFrame:
    """Postings with every cross-entity sale split into a balanced pair of entity journals.

    ``postings`` carries ``revenue_entity``: the contracting entity that owns the obligation
    (null where the invoicing entity owns it). A posting of an invoice, reduction or recovery
    booked by the invoicing entity on an account of ``INTERCOMPANY_MOVED_ACCOUNTS`` moves to the
    contracting entity, in a journal of its own (``journal_group`` + ``|ic|`` + entity) against
    ``IntercompanyReceivable``; the invoicing entity books ``IntercompanyPayable`` in its place.
    Both legs keep the posting's amount and rate date, so each entity's journal balances in
    transaction and functional currency, and receivable and payable are equal and opposite.
    """
    if "revenue_entity" not in postings.columns or len(postings) == 0:
        return postings
    owner = postings["revenue_entity"]
    moved = (owner.notna() & (owner != postings["legal_entity"])
             & postings["account"].isin(INTERCOMPANY_MOVED_ACCOUNTS)).to_numpy()
    if not moved.any():
        return postings
    source = postings[moved]
    contracting = source.assign(
        legal_entity=source["revenue_entity"],
        journal_group=source["journal_group"] + "|ic|" + source["revenue_entity"].astype(str),
        is_cash=False,
    )
    receivable = contracting.assign(account="IntercompanyReceivable",
                                    amount=-contracting["amount"], order=7)
    payable = source.assign(account="IntercompanyPayable", order=7)
    return pd.concat([postings[~moved], payable, contracting, receivable], ignore_index=True)


def build_remeasurement_postings(
    journal_lines: pd.DataFrame, rates: RateBook, as_of, accounting_periods: pd.DataFrame
) -> pd.DataFrame:
    """Unrealized FX on open foreign-currency monetary balances at each month end to ``as_of``.

    For every entity, monetary account (``MONETARY_ACCOUNTS``) and foreign currency, the balance
    posted through a month's period (transaction currency) is converted at the month-end rate; the
    difference from its carrying functional amount (historical rates, realized FX included) is one
    posting with 0 in the transaction currency, against ``FxGain`` (credit) or ``FxLoss`` (debit)
    for the net of the journal. One journal per entity, month and currency (source_type
    ``fx_remeasurement``), dated at the month end and reversed on the first day of the next
    month, when that day is on or before ``as_of``. A month end after ``as_of`` is not reached; a
    month closed for the entity is not remeasured (its close already happened without us).
    """
    if len(journal_lines) == 0:
        return pd.DataFrame(columns=POSTING_COLUMNS + OPTIONAL_POSTING_COLUMNS)
    lines = journal_lines[journal_lines["account"].isin(MONETARY_ACCOUNTS)
                          & (journal_lines["currency"] != journal_lines["functional_currency"])
                          & (journal_lines["source_type"] != "fx_remeasurement")]
    as_of_ts = pd.Timestamp(as_of)
    month_end_reached = as_of_ts + pd.Timedelta(days=1)
    last = int(month_index(np.array([month_end_reached], dtype="datetime64[ns]"))[0]) - 1
    if len(lines) == 0:
        return pd.DataFrame(columns=POSTING_COLUMNS + OPTIONAL_POSTING_COLUMNS)
    lines = lines.assign(
        month=month_index(pd.to_datetime(lines["period"].astype(str) + "-01").to_numpy()),
        net=lines["debit"] - lines["credit"],
        net_functional=lines["debit_functional"] - lines["credit_functional"],
    )
    keys = ["legal_entity", "account", "currency", "functional_currency"]
    moved = lines.groupby(keys + ["month"], as_index=False)[["net", "net_functional"]].sum()
    first = moved.groupby(keys, as_index=False)["month"].min()
    first = first[first["month"] <= last]
    if len(first) == 0:
        return pd.DataFrame(columns=POSTING_COLUMNS + OPTIONAL_POSTING_COLUMNS)
    grid = first.loc[first.index.repeat(last - first["month"].to_numpy() + 1)]
    grid = grid.reset_index(drop=True)
    grid["month"] = grid["month"] + grid.groupby(keys).cumcount()
    grid = grid.merge(moved, on=keys + ["month"], how="left").fillna(
        {"net": 0, "net_functional": 0}).sort_values(keys + ["month"], kind="mergesort")
    grid["balance"] = grid.groupby(keys)["net"].cumsum().astype("int64")
    grid["carrying"] = grid.groupby(keys)["net_functional"].cumsum().astype("int64")
    grid["date"] = period_end_dates(grid["month"].to_numpy())
    grid["target"] = rates.convert(grid["balance"].to_numpy(), grid["currency"].to_numpy(),
                                   grid["functional_currency"].to_numpy(), grid["date"].to_numpy())
    grid["difference"] = grid["target"] - grid["carrying"]
    grid = grid[grid["difference"] != 0]
    closed = _closed_months(accounting_periods)
    is_open = [int(m) not in closed.get(str(e), set())
               for e, m in zip(grid["legal_entity"], grid["month"], strict=True)]
    grid = grid[np.asarray(is_open, dtype=bool)].reset_index(drop=True)
    if len(grid) == 0:
        return pd.DataFrame(columns=POSTING_COLUMNS + OPTIONAL_POSTING_COLUMNS)
    label = period_labels(grid["month"].to_numpy())
    grid["source_id"] = ("fx_remeasurement|" + grid["legal_entity"].astype(str) + "|" + label
                         + "|" + grid["currency"])
    grid["period_label"] = label
    monetary = grid
    net = grid.groupby(["source_id"], as_index=False, sort=False).agg(
        legal_entity=("legal_entity", "first"), currency=("currency", "first"),
        functional_currency=("functional_currency", "first"), date=("date", "first"),
        month=("month", "first"), period_label=("period_label", "first"),
        difference=("difference", "sum"))
    net = net[net["difference"] != 0]
    gain_loss = net.assign(account=np.where(net["difference"] > 0, "FxGain", "FxLoss"),
                           difference=-net["difference"])
    both = pd.concat([monetary, gain_loss], ignore_index=True)
    both = both.assign(order=np.where(both["account"].isin(MONETARY_ACCOUNTS), 1, 99))
    entries = both.assign(journal_group=both["source_id"],
                          memo="FX remeasurement at " + both["period_label"] + " month end")
    reversal_date = period_end_dates(entries["month"].to_numpy()) + np.timedelta64(1, "D")
    reversals = entries.assign(
        difference=-entries["difference"], date=reversal_date,
        journal_group=entries["journal_group"] + "|reversal",
        memo="reversal of FX remeasurement at " + entries["period_label"] + " month end",
    )
    reversals = reversals[reversals["date"] <= as_of_ts]
    out = pd.concat([entries, reversals], ignore_index=True)
    return pd.DataFrame({
        "journal_group": out["journal_group"], "source_type": "fx_remeasurement",
        "source_id": out["source_id"].where(~out["journal_group"].str.endswith("|reversal"),
                                            out["source_id"] + "|reversal"),
        "source_line_id": out["period_label"], "legal_entity": out["legal_entity"],
        "functional_currency": out["functional_currency"], "currency": out["currency"],
        "date": pd.to_datetime(out["date"]), "rate_date": pd.to_datetime(out["date"]),
        "account": out["account"], "amount": 0, "is_cash": False, "contract_id": None,
        "customer_id": None, "correlation_id": out["source_id"], "memo": out["memo"],
        "order": out["order"], "functional_amount": out["difference"].astype("int64"),
        "event_count": pd.NA, "events_fingerprint": None,
    })


def _closed_months(accounting_periods: pd.DataFrame) -> dict[str, set[int]]:
    closed: dict[str, set[int]] = {}
    if len(accounting_periods):
        shut = accounting_periods[accounting_periods["status"] == "closed"]
        for entity, period in zip(shut["legal_entity"], shut["period"], strict=True):
            year, month = str(period).split("-")
            closed.setdefault(str(entity), set()).add((int(year) - 1970) * 12 + int(month) - 1)
    return closed
