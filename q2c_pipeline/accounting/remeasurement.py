"""Month-end remeasurement of foreign-currency monetary balances (ASC 830-20-35-1, IAS 21.23(a)).

Monetary items (a right to receive or an obligation to deliver a fixed or determinable number of
units of currency, IAS 21.16) are remeasured at each month end: receivables (billed and unbilled),
contract assets (a right to consideration, conditional on performance but not on anything that
changes the amount of currency), cash held in a foreign currency (one the entity settles in,
``legal_entities.settlement_currencies``), refund liabilities, customer credit balances and
intercompany balances. Cash in any other currency was converted into the settlement currency when
it moved (as Stripe converts a charge), so its realized FX is booked on that day and there is
nothing left to remeasure. Deferred revenue is a non-monetary liability (IAS 21.23(b)) and stays at
its historical rates. Each month's remeasurement is reversed on the first day of the next, so the
next month remeasures from historical carrying amounts and realized FX on settlement stays as
booked.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd

from q2c_pipeline.accounting.journals import closed_months
from q2c_pipeline.core.calendar import month_index, period_end_dates, period_labels
from q2c_pipeline.core.fx import RateBook

MONETARY_ACCOUNTS = (
    "AccountsReceivable", "UnbilledAccountsReceivable", "ContractAsset", "Cash",
    "RefundLiability", "CustomerCredit", "IntercompanyReceivable", "IntercompanyPayable",
)


def _round(value: Fraction) -> int:
    """Half away from zero to the minor unit."""
    magnitude = int((abs(value) * 2 + 1) // 2)
    return -magnitude if value < 0 else magnitude


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=[
        "journal_group", "journal_kind", "source_type", "source_id", "source_line_id",
        "legal_entity", "functional_currency", "currency", "date", "account", "amount",
        "amount_functional", "contract_id", "customer_id", "correlation_id", "memo", "order",
        "event_count", "events_fingerprint"])


def build_remeasurement_postings(
    journal_lines: pd.DataFrame, rates: RateBook, as_of, accounting_periods: pd.DataFrame,
    settlement_currencies: dict[str, set[str]] | None = None,
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
        return _empty()
    lines = journal_lines[journal_lines["account"].isin(MONETARY_ACCOUNTS)
                          & (journal_lines["currency"] != journal_lines["functional_currency"])
                          & (journal_lines["source_type"] != "fx_remeasurement")]
    # cash in a currency the entity does not settle in was converted when it moved (a Stripe
    # charge settles in the account's settlement currency): there is no balance to remeasure
    held = settlement_currencies or {}
    is_cash = lines["account"] == "Cash"
    kept = [not cash or currency in held.get(entity, set())
            for cash, currency, entity in zip(is_cash, lines["currency"], lines["legal_entity"],
                                              strict=True)]
    lines = lines[np.asarray(kept, dtype=bool)]
    as_of_ts = pd.Timestamp(as_of)
    month_end_reached = as_of_ts + pd.Timedelta(days=1)
    last = int(month_index(np.array([month_end_reached], dtype="datetime64[ns]"))[0]) - 1
    if len(lines) == 0:
        return _empty()
    # the carrying amount compared is the unrounded one (``functional_exact``, where the
    # measurement kept it): a balance whose rate never changed has nothing to remeasure, and
    # rounding is never booked as exchange difference
    rounded = lines["debit_functional"] - lines["credit_functional"]
    if "functional_exact" in lines.columns:
        exact = lines["functional_exact"].where(lines["functional_exact"].notna(), None)
        exact = [Fraction(int(r)) if e is None else e for e, r in zip(exact, rounded,
                                                                   strict=True)]
    else:
        exact = [Fraction(int(r)) for r in rounded]
    lines = lines.assign(
        month=month_index(pd.to_datetime(lines["period"].astype(str) + "-01").to_numpy()),
        net=lines["debit"] - lines["credit"],
        net_functional=pd.Series(exact, index=lines.index, dtype=object),
    )
    keys = ["legal_entity", "account", "currency", "functional_currency"]
    moved = lines.groupby(keys + ["month"], as_index=False).agg(
        net=("net", "sum"), net_functional=("net_functional", lambda v: sum(v, Fraction(0))))
    first = moved.groupby(keys, as_index=False)["month"].min()
    first = first[first["month"] <= last]
    if len(first) == 0:
        return _empty()
    grid = first.loc[first.index.repeat(last - first["month"].to_numpy() + 1)]
    grid = grid.reset_index(drop=True)
    grid["month"] = grid["month"] + grid.groupby(keys).cumcount()
    grid = grid.merge(moved, on=keys + ["month"], how="left").sort_values(
        keys + ["month"], kind="mergesort")
    grid["net"] = grid["net"].fillna(0)
    grid["net_functional"] = grid["net_functional"].map(
        lambda v: Fraction(0) if not isinstance(v, Fraction) else v)
    grid["balance"] = grid.groupby(keys)["net"].cumsum().astype("int64")
    carrying = []
    running: dict[tuple, Fraction] = {}
    for key, value in zip(map(tuple, grid[keys].to_numpy().tolist()), grid["net_functional"],
                          strict=True):
        running[key] = running.get(key, Fraction(0)) + value
        carrying.append(running[key])
    grid["date"] = period_end_dates(grid["month"].to_numpy())
    target = rates.exact(grid["balance"].to_numpy(), grid["currency"].to_numpy(),
                         grid["functional_currency"].to_numpy(), grid["date"].to_numpy())
    grid["difference"] = [_round(t - c) for t, c in zip(target, carrying, strict=True)]
    grid = grid[grid["difference"] != 0]
    closed = closed_months(accounting_periods)
    is_open = [int(m) not in closed.get(str(e), set())
               for e, m in zip(grid["legal_entity"], grid["month"], strict=True)]
    grid = grid[np.asarray(is_open, dtype=bool)].reset_index(drop=True)
    if len(grid) == 0:
        return _empty()
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
        "journal_group": out["journal_group"], "journal_kind": "remeasurement",
        "source_type": "fx_remeasurement",
        "source_id": out["source_id"].where(~out["journal_group"].str.endswith("|reversal"),
                                            out["source_id"] + "|reversal"),
        "source_line_id": out["period_label"], "legal_entity": out["legal_entity"],
        "functional_currency": out["functional_currency"], "currency": out["currency"],
        "date": pd.to_datetime(out["date"]), "account": out["account"], "amount": 0,
        "amount_functional": out["difference"].astype("int64"), "contract_id": None,
        "customer_id": None, "correlation_id": out["source_id"], "memo": out["memo"],
        "order": out["order"], "event_count": pd.NA, "events_fingerprint": None,
    })


