"""Functional-currency measurement of postings (ASC 830-20 / IAS 21, IFRIC 22).

A posting in the entity's functional currency is its own functional amount. A foreign-currency
posting is measured by its ``measure`` (``q2c_pipeline.accounting.postings``):

- ``spot``: at the rate of its ``rate_date`` (cash at the cash date; tax, contra revenue and a
  receivable credit at the invoice's rate: Stripe books contra revenue at the original rate);
- ``layer``: per entity and layer (a revenue contract's DeferredRevenue, ContractAsset,
  UnbilledAccountsReceivable, RefundLiability; an invoice's receivable) an increase is a new
  layer at the rate of its ``rate_date`` and a decrease relieves the oldest layers first at their
  carrying amounts (pro rata in the last one, half-up; a layer's last relief takes exactly what
  is left, so a balance that returns to zero returns to zero in functional currency too). So
  deferred revenue is never remeasured (non-monetary, IAS 21.23(b)) and the revenue it releases
  is measured at the rate of the advance consideration (IFRIC 22.8);
- ``balance``: ``Revenue`` in a recognition entry takes the entry's difference: revenue from a
  contract liability at the liability's historical rates, revenue recognized ahead of billing at
  the rate of its recognition date (the new unbilled receivable or contract asset layer).

Any other journal's difference is split in two. Exchange difference: its lines at their own
values (carrying amounts relieved, spot amounts) less the same lines at the journal's one rate
(``event_rate_date``: the cash date, else the invoice's rate), both unrounded, rounded once,
booked to ``FxGain`` (credit) or ``FxLoss`` (debit) with 0 in the transaction currency. The rest
is rounding and goes to the journal's largest line. At an unchanged rate no FX line ever
appears, however many rounded layers a balance was built from.
"""

from __future__ import annotations

from collections import defaultdict, deque
from fractions import Fraction

import numpy as np
import pandas as pd

from q2c_pipeline.core.fx import RateBook

# Order in which journals of one day relieve layers: billing, reclassifications (a contract
# modification), reductions and cash, then recognition (the contract position's own event order).
_KIND_RANK = {"billing": 0, "reclass": 1, "adjustment": 2, "cash": 2, "recognition": 3}


def _round(value: Fraction) -> int:
    """Half away from zero to the minor unit."""
    magnitude = int((abs(value) * 2 + 1) // 2)
    return -magnitude if value < 0 else magnitude


def _relieve(layers: deque, amount: int) -> tuple[int, Fraction, int]:
    """Relieve ``amount`` (> 0) from FIFO ``layers`` of (amount, functional, exact functional)
    magnitudes: (functional relieved, its exact value, amount not found in the layers)."""
    functional, exact = 0, Fraction(0)
    left = amount
    while left and layers:
        layer_amount, layer_functional, layer_exact = layers[0]
        if layer_amount <= left:
            functional += layer_functional
            exact += layer_exact
            left -= layer_amount
            layers.popleft()
            continue
        part = (2 * layer_functional * left + layer_amount) // (2 * layer_amount)
        part_exact = layer_exact * left / layer_amount
        layers[0] = (layer_amount - left, layer_functional - part, layer_exact - part_exact)
        functional += part
        exact += part_exact
        left = 0
    return functional, exact, left


def _layered(lines: pd.DataFrame, converted: np.ndarray, exact: list[Fraction]
             ) -> tuple[np.ndarray, list[Fraction]]:
    """Functional amounts (rounded and exact) of the foreign ``layer`` lines, relieving FIFO per
    entity and layer."""
    order = np.lexsort((
        lines["order"].to_numpy(), lines["journal_group"].astype(str).to_numpy(),
        lines["journal_kind"].map(_KIND_RANK).fillna(9).to_numpy(),
        pd.to_datetime(lines["date"]).dt.normalize().to_numpy()))
    result = np.zeros(len(lines), dtype=np.int64)
    result_exact: list[Fraction] = [Fraction(0)] * len(lines)
    books: dict[tuple, dict] = defaultdict(lambda: {"sign": 0, "layers": deque()})
    entity = lines["legal_entity"].astype(str).to_numpy()
    key = lines["layer"].astype(str).to_numpy()
    amounts = lines["amount"].to_numpy(dtype=np.int64)
    for i in order:
        book = books[(entity[i], key[i])]
        amount = int(amounts[i])
        sign = 1 if amount > 0 else -1
        # layers hold (amount, functional, exact) magnitudes of a balance of sign book["sign"]
        if book["sign"] == 0 or book["sign"] == sign:
            book["sign"] = sign
            book["layers"].append((abs(amount), abs(int(converted[i])), abs(exact[i])))
            result[i] = int(converted[i])
            result_exact[i] = exact[i]
            continue
        functional, relieved, left = _relieve(book["layers"], abs(amount))
        value, value_exact = sign * functional, sign * relieved
        if not book["layers"]:
            book["sign"] = 0
        if left:
            part = (2 * abs(int(converted[i])) * left + abs(amount)) // (2 * abs(amount))
            part_exact = abs(exact[i]) * left / abs(amount)
            book["sign"] = sign
            book["layers"].append((left, part, part_exact))
            value += sign * part
            value_exact += sign * part_exact
        result[i] = value
        result_exact[i] = value_exact
    return result, result_exact


def measure(postings: pd.DataFrame, rates: RateBook) -> pd.DataFrame:
    """``postings`` with ``amount_functional``, plus the FX lines of their journals."""
    if len(postings) == 0:
        return postings.assign(amount_functional=pd.Series(dtype="int64"))
    lines = postings.reset_index(drop=True).copy()
    amount = lines["amount"].to_numpy(dtype=np.int64)
    foreign = (lines["currency"] != lines["functional_currency"]).to_numpy()
    functional = amount.copy()
    if not foreign.any():
        return lines.assign(amount_functional=functional, functional_exact=pd.Series(
            [Fraction(int(v)) for v in functional], index=lines.index, dtype=object))
    idx = np.flatnonzero(foreign)
    sub = lines.iloc[idx]
    own = rates.convert(sub["amount"].to_numpy(), sub["currency"].to_numpy(),
                        sub["functional_currency"].to_numpy(), sub["rate_date"].to_numpy())
    at_event = rates.exact(sub["amount"].to_numpy(), sub["currency"].to_numpy(),
                           sub["functional_currency"].to_numpy(),
                           sub["event_rate_date"].to_numpy())
    exact = rates.exact(sub["amount"].to_numpy(), sub["currency"].to_numpy(),
                        sub["functional_currency"].to_numpy(), sub["rate_date"].to_numpy())
    measured = own.copy()
    is_layer = (sub["measure"] == "layer").to_numpy()
    if is_layer.any():
        positions = np.flatnonzero(is_layer)
        values, values_exact = _layered(sub[is_layer], own[is_layer],
                                        [exact[k] for k in positions])
        measured[is_layer] = values
        for k, value in zip(positions, values_exact, strict=True):
            exact[k] = value
    functional[idx] = measured
    lines["amount_functional"] = functional
    # the unrounded functional amount of every line: what month-end remeasurement compares a
    # balance with, so rounding never shows up as exchange difference
    functional_exact = [Fraction(int(v)) for v in functional]
    for k, position in enumerate(idx):
        functional_exact[position] = exact[k]
    lines["functional_exact"] = pd.Series(functional_exact, index=lines.index, dtype=object)
    at_event_exact = [Fraction(int(v)) for v in amount]
    for k, position in enumerate(idx):
        at_event_exact[position] = at_event[k]
    lines["_at_event"] = pd.Series(at_event_exact, index=lines.index, dtype=object)

    journals = lines.loc[idx, "journal_group"].unique()
    scope = lines["journal_group"].isin(journals)
    work = lines[scope]
    balance = work["measure"] == "balance"
    # a recognition entry: each balancing line (Revenue; per product in a usage summary) takes
    # what its own group of lines leaves
    group_key = work["journal_group"] + "|" + np.where(
        work["journal_kind"] == "recognition", work["source_line_id"].fillna("").astype(str), "")
    recognition = work["journal_kind"] == "recognition"
    if (recognition & balance).any():
        others = work[recognition & ~balance].groupby(group_key[recognition & ~balance])[
            "amount_functional"].sum()
        targets = work[recognition & balance]
        first = ~group_key[recognition & balance].duplicated()
        fixed = -group_key[targets.index].map(others).fillna(0).astype("int64")
        lines.loc[targets.index[first.to_numpy()], "amount_functional"] = fixed[first].to_numpy()
        rest = targets.index[~first.to_numpy()]
        lines.loc[rest, "amount_functional"] = 0
    # a recognition entry's groups without a balancing line (a reclassification between
    # position accounts inside it) balance like any other journal
    balanced = set(group_key[recognition & balance])
    key_all = lines["journal_group"] + "|" + np.where(
        lines["journal_kind"] == "recognition",
        lines["source_line_id"].fillna("").astype(str), "")
    work = lines[scope & ~((lines["journal_kind"] == "recognition") & key_all.isin(balanced))]
    if len(work):
        # exchange difference: the journal's lines at their own (carrying) values less the same
        # lines at the journal's one rate, both unrounded; whatever else keeps the journal from
        # balancing is rounding
        residual = work.groupby("journal_group")["amount_functional"].sum()
        own_exact = work.groupby("journal_group")["functional_exact"].agg(
            lambda v: sum(v, Fraction(0)))
        one_rate = work.groupby("journal_group")["_at_event"].agg(lambda v: sum(v, Fraction(0)))
        fx_all = pd.Series([_round(a - b) for a, b in zip(own_exact, one_rate, strict=True)],
                           index=own_exact.index, dtype="int64")
        rounding = (residual - fx_all).astype("int64")
        fx = fx_all[fx_all != 0]
        heads = work.drop_duplicates("journal_group").set_index("journal_group")
        fx_lines = heads.loc[fx.index].reset_index()
        fx_lines = fx_lines.assign(
            account=np.where(fx.to_numpy() > 0, "FxGain", "FxLoss"), amount=0,
            amount_functional=-fx.to_numpy(), measure="spot", layer=None, order=99,
            memo="realized FX", _at_event=0)
        fx_lines["functional_exact"] = pd.Series(
            [Fraction(int(v)) for v in fx_lines["amount_functional"]], index=fx_lines.index,
            dtype=object)
        rounding = rounding[rounding != 0]
        if len(rounding):
            ranked = work.assign(_abs=work["amount_functional"].abs()).sort_values(
                ["journal_group", "_abs", "order"], ascending=[True, False, True],
                kind="mergesort")
            top = ranked.drop_duplicates("journal_group")
            top = top[top["journal_group"].isin(rounding.index)]
            lines.loc[top.index, "amount_functional"] -= top["journal_group"].map(
                rounding).astype("int64").to_numpy()
        lines = pd.concat([lines, fx_lines[lines.columns]], ignore_index=True)
    return lines.drop(columns="_at_event")
