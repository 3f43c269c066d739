"""Month-end presentation: customer credit balances out of receivables.

A customer whose receivable is negative at a month end (paid more than billed, credited after
paying, a credit note with no invoice) holds a credit with the entity, a liability: the balance
is reclassified from ``AccountsReceivable`` to ``CustomerCredit`` at its carrying amount, per
entity, customer and currency, dated at the month end and reversed on the first day of the next
month (so each month presents its own balances and the receivable's history is untouched).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd

from q2c_pipeline.accounting.journals import closed_months
from q2c_pipeline.core.calendar import month_index, period_end_dates, period_labels


def customer_credit_reclass(journal_lines: pd.DataFrame, as_of,
                            accounting_periods: pd.DataFrame) -> pd.DataFrame:
    """Reclassification postings (``amount`` and ``amount_functional`` set) at each month end
    up to ``as_of`` where a customer's receivable is a credit."""
    columns = ["journal_group", "journal_kind", "source_type", "source_id", "source_line_id",
               "legal_entity", "functional_currency", "currency", "date", "account", "amount",
               "amount_functional", "contract_id", "customer_id", "correlation_id", "memo",
               "order", "event_count", "events_fingerprint"]
    ar = journal_lines[(journal_lines["account"] == "AccountsReceivable")
                       & journal_lines["customer_id"].notna()
                       & (journal_lines["source_type"] != "customer_credit")]
    if len(ar) == 0:
        return pd.DataFrame(columns=columns)
    last = int(month_index(np.array([pd.Timestamp(as_of) + pd.Timedelta(days=1)],
                                    dtype="datetime64[ns]"))[0]) - 1
    rounded = ar["debit_functional"] - ar["credit_functional"]
    exact = ar["functional_exact"] if "functional_exact" in ar.columns else pd.Series(
        [None] * len(ar), index=ar.index, dtype=object)
    exact = [Fraction(int(r)) if not isinstance(e, Fraction) else e
             for e, r in zip(exact, rounded, strict=True)]
    ar = ar.assign(month=month_index(pd.to_datetime(ar["period"].astype(str) + "-01").to_numpy()),
                   net=ar["debit"] - ar["credit"], net_functional=rounded,
                   net_exact=pd.Series(exact, index=ar.index, dtype=object))
    keys = ["legal_entity", "customer_id", "currency", "functional_currency"]
    moved = ar.groupby(keys + ["month"], as_index=False).agg(
        net=("net", "sum"), net_functional=("net_functional", "sum"),
        net_exact=("net_exact", lambda v: sum(v, Fraction(0))))
    first = moved.groupby(keys, as_index=False)["month"].min()
    first = first[first["month"] <= last]
    if len(first) == 0:
        return pd.DataFrame(columns=columns)
    grid = first.loc[first.index.repeat(last - first["month"].to_numpy() + 1)].reset_index(
        drop=True)
    grid["month"] = grid["month"] + grid.groupby(keys).cumcount()
    grid = grid.merge(moved, on=keys + ["month"], how="left").sort_values(
        keys + ["month"], kind="mergesort")
    grid[["net", "net_functional"]] = grid[["net", "net_functional"]].fillna(0)
    grid["balance"] = grid.groupby(keys)["net"].cumsum().astype("int64")
    grid["carrying"] = grid.groupby(keys)["net_functional"].cumsum().astype("int64")
    running: dict[tuple, Fraction] = {}
    carried = []
    for key, value in zip(map(tuple, grid[keys].to_numpy().tolist()), grid["net_exact"],
                          strict=True):
        running[key] = running.get(key, Fraction(0)) + (
            value if isinstance(value, Fraction) else Fraction(0))
        carried.append(running[key])
    grid["carrying_exact"] = pd.Series(carried, index=grid.index, dtype=object)
    grid = grid[grid["balance"] < 0]
    closed = closed_months(accounting_periods)
    is_open = [int(m) not in closed.get(str(e), set())
               for e, m in zip(grid["legal_entity"], grid["month"], strict=True)]
    grid = grid[np.asarray(is_open, dtype=bool)]
    if len(grid) == 0:
        return pd.DataFrame(columns=columns)
    grid = grid.reset_index(drop=True)
    label = period_labels(grid["month"].to_numpy())
    end = pd.to_datetime(period_end_dates(grid["month"].to_numpy()))
    source = "customer_credit|" + grid["legal_entity"] + "|" + grid["customer_id"] + "|" \
        + pd.Series(label) + "|" + grid["currency"]
    base = dict(journal_kind="presentation", source_type="customer_credit",
                source_line_id=pd.Series(label), legal_entity=grid["legal_entity"],
                functional_currency=grid["functional_currency"], currency=grid["currency"],
                contract_id=None, customer_id=grid["customer_id"], event_count=pd.NA,
                events_fingerprint=None)
    entries = []
    for reversal in (False, True):
        sign = -1 if reversal else 1
        date = end + pd.Timedelta(days=1) if reversal else end
        group = source + ("|reversal" if reversal else "")
        memo = ("reversal of " if reversal else "") + "customer credit balance at " + \
            pd.Series(label) + " month end"
        for account, direction, order in (("AccountsReceivable", 1, 1),
                                          ("CustomerCredit", -1, 2)):
            entries.append(pd.DataFrame({
                **base, "journal_group": group, "source_id": group, "correlation_id": group,
                "date": date, "account": account,
                "amount": -sign * direction * grid["balance"],
                "amount_functional": -sign * direction * grid["carrying"], "memo": memo,
                "order": order,
                "functional_exact": [-sign * direction * c for c in grid["carrying_exact"]]}))
    out = pd.concat(entries, ignore_index=True)
    out = out[out["date"] <= pd.Timestamp(as_of)]
    return out[columns + ["functional_exact"]].reset_index(drop=True)
