"""Revenue contracts: obligations, allocation, modifications, billing activity and the schedules
they leave, for every contract at once (the facts ``q2c_pipeline.engine`` hands to accounting).

A revenue contract is one Salesforce contract (its versions by effective date), a separate
contract an amendment created (``<contract_id>|v<n>``), an invoice without a contract
(``invoice|<id>``), the usage of a contract or customer (``usage|...``) or a one-time payment
(``payment|<id>``). Everything about one revenue contract is computed from its own inputs only
(``revenue_contract_inputs`` gives them keyed by its id; computing a contract alone gives the same
rows as computing the whole company).

Most contracts have no event after inception: their schedules are spread for all at once
(``spread_amounts``). A contract with a modification, or with billing activity that changes its
price or is a write-off (treatment effects ``price_change``, ``settle_then_price_change``,
``collectibility``), runs through its book (``q2c_pipeline.revenue.book``) event by event.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import pandas as pd

from q2c_pipeline.core.calendar import month_index
from q2c_pipeline.core.fx import RateBook
from q2c_pipeline.core.policy import Policy
from q2c_pipeline.revenue.allocation import (
    allocate_at_inception,
    build_components,
    contract_headers,
)
from q2c_pipeline.revenue.billing import classify_invoice_lines, classify_parts, document_parts
from q2c_pipeline.revenue.book import (
    Obligation,
    Schedule,
    day_of,
    distribute,
    month_of_day,
    reduce,
    restore,
    round_half_up,
    spread_window,
)
from q2c_pipeline.revenue.modifications import Delta, apply_modification
from q2c_pipeline.revenue.schedules import spread_amounts
from q2c_pipeline.revenue.treatments import TreatmentTable

# Event ranks within a day: billing, then reductions, then modifications, then recognition.
# Order of a revenue contract's events within one day: billing, then a contract modification
# effective that day (it changes what the contract is before anything settles against it: a
# cancellation's refund liability exists when that day's credit note or refund settles it), then
# credit notes, refunds, voids and write-offs, then the day's recognition.
RANK_BILLING, RANK_MODIFICATION, RANK_ADJUSTMENT, RANK_RECOGNITION = 0, 1, 2, 3
# Kinds of reductions within a day, in order (a credit note before its refund, a void last).
KIND_ORDER = {"credit_note": 0, "refund": 1, "invoice_void": 2, "uncollectible": 3,
              "credit_note_void": 4, "recovery": 5}
SCHEDULE_EFFECTS = ("price_change", "settle_then_price_change", "collectibility")
# Effects that change only what is billed (B), never the transaction price or revenue.
CORRECTION_EFFECTS = ("billing_correction", "contract_settlement")

OBLIGATION_COLUMNS = [
    "source_type", "source_id", "revenue_contract_id", "position_kind", "contract_id",
    "legal_entity", "customer_id", "correlation_id", "currency", "pattern", "start", "end",
    "floor", "amount", "stated", "version", "treatment", "quantity", "ssp", "booking_date",
]


def _fill(series: pd.Series, fallback) -> pd.Series:
    return series.where(series.notna(), fallback)


# ------------------------------------------------------------------ obligations
def contract_line_obligations(comps: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Obligations of original and separate-contract lines at inception (usage lines excluded;
    products an amendment adds join their contract at that version, in its book)."""
    own = comps[(comps["obligation_id"] == comps["contract_line_id"])
                & comps["treatment"].isin(["original", "separate_contract"])
                & (comps["revenue_pattern"] != "usage")]
    if len(own) == 0:
        return pd.DataFrame(columns=OBLIGATION_COLUMNS)
    booked = pd.to_datetime(own["signed_date"])
    ratable = (own["revenue_pattern"] == "ratable") & own["service_start"].notna() \
        & own["service_end"].notna() & (own["service_end"] > own["service_start"])
    start = own["service_start"].where(own["service_start"].notna(), booked)
    separate = own["treatment"] == "separate_contract"
    floor = booked.where(separate | bool(policy.catch_up), pd.NaT)
    # stated prices are the right to bill only when they add up to the contract's price
    stated_sum = own.groupby("revenue_contract_id")["amount"].transform("sum")
    price = pd.to_numeric(own["transaction_price"], errors="coerce")
    stated_ok = (separate | price.isna() | (price == stated_sum)).to_numpy()
    stated = own["amount"].astype("Int64").where(stated_ok, pd.NA)
    return pd.DataFrame({
        "source_type": "contract_line", "source_id": own["obligation_id"],
        "revenue_contract_id": own["revenue_contract_id"], "position_kind": "contract",
        "contract_id": own["contract_id"], "legal_entity": own["legal_entity"],
        "customer_id": own["customer_id"], "correlation_id": own["correlation_id"],
        "currency": own["currency"], "pattern": np.where(ratable, "ratable", "point_in_time"),
        "start": pd.to_datetime(start),
        "end": pd.to_datetime(own["service_end"].where(ratable, pd.NaT)),
        "floor": pd.to_datetime(floor), "amount": own["inception_allocated"].astype("int64"),
        "stated": stated, "version": own["version"].astype("int64"),
        "treatment": own["treatment"], "quantity": own["quantity"],
        "ssp": own["ssp"].astype("int64"), "booking_date": booked,
    })[OBLIGATION_COLUMNS]


def invoice_line_obligations(lines: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Invoice lines that are their own obligation, over their own service period (Stripe's
    methodology), or at their booking date when they have none."""
    own = lines[lines["role"] == "own"]
    if len(own) == 0:
        return pd.DataFrame(columns=OBLIGATION_COLUMNS)
    has_period = own["service_start"].notna() & own["service_end"].notna() \
        & (own["service_end"] > own["service_start"]) & (own["pattern"] != "point_in_time")
    floor = own["booking_date"] if policy.catch_up else pd.Series(pd.NaT, index=own.index)
    return pd.DataFrame({
        "source_type": "invoice_line", "source_id": own["invoice_line_id"],
        "revenue_contract_id": own["position_key"], "position_kind": own["position_kind"],
        "contract_id": own["contract_id"], "legal_entity": own["revenue_entity"],
        "customer_id": own["customer_id"], "correlation_id": own["correlation_id"],
        "currency": own["currency"],
        "pattern": np.where(has_period, "ratable", "point_in_time"),
        "start": own["service_start"].where(has_period, own["booking_date"]),
        "end": own["service_end"].where(has_period, pd.NaT), "floor": pd.to_datetime(floor),
        "amount": own["pre_tax"].astype("int64"),
        "stated": pd.array([pd.NA] * len(own), dtype="Int64"), "version": 1,
        "treatment": "original", "quantity": own["quantity"], "ssp": 0,
        "booking_date": own["booking_date"],
    })[OBLIGATION_COLUMNS]


def spread_base(obligations: pd.DataFrame, policy: Policy, column: str) -> pd.DataFrame:
    """(item, month, amount) of ``column`` spread over each obligation's window; the months
    before its booking floor move into the floor's month (catch-up)."""
    values = obligations[column]
    keep = values.notna().to_numpy()
    if not keep.any():
        return pd.DataFrame({"item": np.zeros(0, np.int64), "month": np.zeros(0, np.int64),
                             "amount": np.zeros(0, np.int64)})
    items = obligations[keep]
    spread = spread_amounts(pd.DataFrame({
        "amount": values[keep].astype("int64").to_numpy(), "start": items["start"].to_numpy(),
        "end": items["end"].to_numpy()}), policy.amortization)
    item = np.flatnonzero(keep)[spread["item"].to_numpy()]
    months = spread["month"].to_numpy()
    floor = obligations["floor"].to_numpy(dtype="datetime64[ns]")[item]
    has_floor = ~np.isnat(floor)
    if has_floor.any():
        floor_month = month_index(np.where(has_floor, floor, np.datetime64(0, "ns")))
        months = np.where(has_floor, np.maximum(months, floor_month), months)
    out = pd.DataFrame({"item": item, "month": months, "amount": spread["amount"].to_numpy()})
    return out.groupby(["item", "month"], as_index=False, sort=True)["amount"].sum()


# ------------------------------------------------------------------ books
@dataclass
class PartResult:
    recognized: int = 0
    deferred: int = 0
    stated_recognized: int = 0
    settled: int = 0
    void_catch_up: int = 0
    cuts: list = field(default_factory=list)   # [(obligation key, revenue cuts, stated cuts)]
    restored: int = 0                          # deferred share given back by a recovery
    released: int = 0                          # held back no more: a modification removed it


def recovery_tax(amount: int, gross: int, tax_off: int) -> int:
    """The tax relief a payment after a write-off reverses: ``amount`` x the written-off tax /
    the written-off gross (half up), never more than that tax."""
    if tax_off == 0 or gross <= 0:
        return 0
    share = round_half_up(Fraction(amount * abs(tax_off), gross))
    return min(share, abs(tax_off)) * (1 if tax_off > 0 else -1)


class Book:
    """One revenue contract's obligations and its running billed amount and price."""

    def __init__(self, rc: str, obligations: list[Obligation]) -> None:
        self.rc = rc
        self.obligations = obligations
        self.by_key = {ob.key: ob for ob in obligations}
        self.billed = 0
        self.price = sum(ob.revenue.total() for ob in obligations if ob.fixed)
        # pre-tax each invoice line still bills after the credit notes on it
        self.line_billed: dict[str, int] = defaultdict(int)
        self.write_offs: list[PartResult] = []
        self.reductions: dict[tuple[str, str], int] = defaultdict(int)

    def refund_liability(self) -> int:
        return max(0, self.billed - self.price)

    def price_change(self, part, amount: int, day: int) -> PartResult:
        """A price change or write-off of ``amount`` (pre-tax), per the part's allocation."""
        result = PartResult()
        if amount == 0:
            return result
        targets: list[tuple[Obligation, int, tuple[int, int] | None]] = []
        if part.allocation == "contract":
            fixed = [ob for ob in self.obligations if ob.fixed and ob.revenue.total() > 0]
            shares = distribute(amount, {i: Fraction(ob.revenue.total())
                                         for i, ob in enumerate(fixed)})
            targets = [(fixed[i], share, None) for i, share in sorted(shares.items())]
        elif part.allocation == "billed_period":
            ob = self.by_key.get((part.obligation_type, part.obligation_id))
            if ob is not None:
                targets = [(ob, amount, _window(part))]
        if not targets:
            result.recognized = result.stated_recognized = amount
            return result
        # a write-off is the collectibility of that invoice: it never reaches service outside
        # the invoice's own period (ASC 326-20; the rest of the contract is untouched)
        spill = part.effect != "collectibility"
        billed = self.line_billed.get(part.invoice_line_id) if not spill else None
        for ob, share, window in targets:
            rec, dfr, cuts = reduce(ob, ob.revenue, share, day, window, spill, billed)
            stated_cuts: dict[int, int] = {}
            s_rec = rec
            if ob.stated is not None:
                s_rec, _dfr, stated_cuts = reduce(ob, ob.stated, share, day, window, spill,
                                                  billed)
            result.recognized += rec
            result.deferred += dfr
            result.stated_recognized += s_rec
            result.cuts.append((ob.key, cuts, stated_cuts))
            self.reductions[ob.key] += dfr
        self.price -= amount
        return result

    def undo(self, result: PartResult, amount: int, day: int) -> int:
        """Restore what a (voided) credit note's price change took off; cuts of months before the
        void's month are recognized on the void day. Returns that catch-up."""
        caught = 0
        for key, cuts, stated_cuts in result.cuts:
            ob = self.by_key[key]
            caught += restore(ob.revenue, cuts, day)
            self.reductions[key] -= sum(cuts.values())
            if ob.stated is not None:
                restore(ob.stated, stated_cuts, day)
        self.price += amount
        return caught

    def recover(self, results: list[PartResult], amount: int, day: int) -> int:
        """Give back ``amount`` of what write-offs took off the schedule (cash arrived after
        all: collectibility is met again, ASC 606-10-25-6 / 25-7): in proportion to what each
        write-off part still holds back, month by month; months before ``day``'s month are
        recognized on ``day`` (a cumulative catch-up). Returns what was given back."""
        weights = {i: Fraction(r.deferred - r.restored - r.released)
                   for i, r in enumerate(results)}
        caps = {i: r.deferred - r.restored - r.released for i, r in enumerate(results)}
        given = 0
        for i, share in sorted(distribute(amount, weights, caps).items()):
            result = results[i]
            # of what this part still holds back (its cuts shrink as they are given back)
            fraction = Fraction(share, result.deferred - result.restored - result.released)
            for key, cuts, stated_cuts in result.cuts:
                ob = self.by_key[key]
                for measure, taken in ((ob.revenue, cuts), (ob.stated, stated_cuts)):
                    if measure is None or not taken:
                        continue
                    total = round_half_up(fraction * sum(taken.values()))
                    back = distribute(total, {m: Fraction(c) for m, c in taken.items()}, taken)
                    for m, c in back.items():
                        taken[m] -= c
                    restore(measure, back, day)
                    if measure is ob.revenue:
                        self.reductions[key] -= total
            result.restored += share
            given += share
        self.billed += given
        self.price += given
        return given


def _window(part) -> tuple[int, int] | None:
    if pd.isna(part.service_start) or pd.isna(part.service_end):
        return None
    s, e = day_of(part.service_start), day_of(part.service_end)
    return (s, e) if e > s else None


def _to_obligation(row, revenue: dict[int, int], stated: dict[int, int] | None) -> Obligation:
    start_day = day_of(row.start)
    end_day = day_of(row.end) if pd.notna(row.end) else start_day + 1
    quantity = abs(Fraction(str(row.quantity))) if pd.notna(row.quantity) else Fraction(1)
    ob = Obligation(
        key=(row.source_type, row.source_id), revenue_contract_id=row.revenue_contract_id,
        pattern=row.pattern, start_day=start_day, end_day=max(end_day, start_day + 1),
        floor_day=day_of(row.floor) if pd.notna(row.floor) else None,
        revenue=Schedule(dict(revenue)),
        stated=Schedule(dict(stated)) if stated is not None else None,
        version=int(row.version), quantity=quantity or Fraction(1), ssp=int(row.ssp),
        ssp_days=max(end_day - start_day, 1))
    for m in revenue:
        ob.attrs[m] = (int(row.version), str(row.treatment))
    return ob


def _added_obligation(line, rc: str, acc_day: int, amortization: str) -> Obligation:
    start = line.service_start if pd.notna(line.service_start) else line.version_effective
    ratable = line.revenue_pattern == "ratable" and pd.notna(line.service_end)
    s_day = day_of(start)
    e_day = day_of(line.service_end) if ratable else s_day + 1
    pattern = "ratable" if ratable else "point_in_time"
    return Obligation(
        key=("contract_line", line.contract_line_id), revenue_contract_id=rc, pattern=pattern,
        start_day=s_day, end_day=max(e_day, s_day + 1), floor_day=acc_day, revenue=Schedule(),
        stated=Schedule(spread_window(int(line.amount), s_day, e_day, pattern, amortization)),
        version=int(line.version),
        quantity=abs(Fraction(str(line.quantity))) if pd.notna(line.quantity) else Fraction(1),
        ssp=int(line.ssp), ssp_days=max(e_day - s_day, 1))


def _modification(book: Book, group: pd.DataFrame, amortization: str) -> dict:
    """Apply one contract version's prospective and catch-up lines to its book."""
    first = group.iloc[0]
    version = int(first["version"])
    eff_day, acc_day = day_of(first["version_effective"]), day_of(first["version_accounting"])
    deltas, added = [], []
    for line in group.itertuples(index=False):
        if line.is_delta:
            deltas.append(Delta(
                key=("contract_line", line.obligation_id), treatment=line.treatment,
                quantity=Fraction(str(line.quantity)) if pd.notna(line.quantity) else Fraction(0),
                stated=int(line.amount),
                end_day=day_of(line.service_end) if pd.notna(line.service_end) else None,
                line_id=line.contract_line_id))
        elif line.treatment == "prospective":
            added.append(_added_obligation(line, book.rc, acc_day, amortization))
    # what write-offs hold back of the months the modification reshapes goes back on the
    # schedule first, so the modification prices the contract as it is (collectibility is not
    # a price change), and is held back again, as far as the new schedule still holds it
    from_month = month_of_day(max(eff_day, acc_day))
    held = _lift_write_offs(book, from_month)
    outcome = apply_modification(book.obligations, added, deltas, version, eff_day, acc_day,
                                 amortization)
    released = _hold_write_offs(book, held)
    for ob in added:
        book.obligations.append(ob)
        book.by_key[ob.key] = ob
    book.price += outcome.transaction_price_change + released
    return {"revenue_contract_id": book.rc, "contract_id": first["contract_id"],
            "version": version, "date": pd.Timestamp(first["version_accounting"]),
            "price_change": outcome.transaction_price_change + released,
            "catch_up": outcome.catch_up}


def _lift_write_offs(book: Book, from_month: int) -> list:
    """Put back on the schedule what each write-off still holds of months >= ``from_month``:
    [(result, key, measure name, {month: amount lifted})]."""
    lifted = []
    for result in book.write_offs:
        for index, (key, cuts, stated_cuts) in enumerate(result.cuts):
            ob = book.by_key[key]
            for name, taken in (("revenue", cuts), ("stated", stated_cuts)):
                measure = getattr(ob, name)
                later = {m: c for m, c in taken.items() if m >= from_month and c > 0}
                if measure is None or not later:
                    continue
                for m, c in later.items():
                    measure.months[m] = measure.months.get(m, 0) + c
                lifted.append((result, index, key, name, later))
    return lifted


def _hold_write_offs(book: Book, lifted: list) -> int:
    """Hold back again what was lifted, as far as the modified schedule still has it; what it no
    longer has (a cancelled or reduced service the customer will not be billed for) leaves the
    write-off. Returns that release (revenue measure), which the transaction price gets back:
    the write-off had taken it off the price, the modification takes it off again."""
    released = 0
    for result, index, key, name, later in lifted:
        ob = book.by_key[key]
        measure = getattr(ob, name)
        taken = result.cuts[index][1 if name == "revenue" else 2]
        for m, c in later.items():
            again = max(min(c, measure.months.get(m, 0)), 0)
            measure.months[m] = measure.months.get(m, 0) - again
            taken[m] = taken[m] - c + again
            if name == "revenue":
                released += c - again
                book.reductions[key] -= c - again
                result.released += c - again
    return released


@dataclass(frozen=True)
class Recovery:
    """Cash received for an invoice after its write-off, split (pre-tax after ``tax``) into the
    credit loss it reverses, what goes back to the contract's schedule, and Recoverables."""

    revenue_contract_id: str
    tax: int          # the tax relief reversed
    reversal: int     # the credit loss (or bad debt) reversed
    restored: int     # given back to the schedule (recovery_after_write_off: revenue)
    recoverable: int  # the rest of what was written off
    overpaid: int = 0  # cash beyond what was written off: back on the receivable (a credit)
    owed_back: int = 0  # for service a later modification cancelled: the refund liability


@dataclass
class Forgiven:
    """What credit notes after an invoice's write-off forgave of it (gross, tax, pre-tax, and
    the share of the credit loss that became contra revenue)."""

    gross: int = 0
    tax: int = 0
    pre_tax: int = 0
    loss: int = 0


def _forgive(run: BookRun, written: list, waived: Forgiven, part) -> PartResult:
    """A credit note on a written-off invoice (``written_off_credit``): its pre-tax share of the
    write-off's credit loss (in the write-off's own recognized : pre-tax proportion, never more
    than is left) becomes contra revenue; nothing else moves; recoveries are capped lower."""
    results = [run.parts[p.part_id] for p in written if p.part_id in run.parts]
    off_pre_tax = sum(int(p.gross) - int(p.tax) for p in written)
    loss = sum(r.recognized for r in results)
    amount = int(part.pre_tax)
    share = round_half_up(Fraction(amount * loss, off_pre_tax)) if off_pre_tax > 0 else 0
    share = max(min(share, loss - waived.loss), 0)
    waived.gross += int(part.gross)
    waived.tax += int(part.tax)
    waived.pre_tax += amount
    waived.loss += share
    return PartResult(recognized=share, stated_recognized=share)


@dataclass
class BookRun:
    obligations: dict[tuple[str, str], Obligation]
    reductions: dict[tuple[str, str], int]
    parts: dict[str, PartResult]
    modifications: list[dict]
    recoveries: dict[str, Recovery] = field(default_factory=dict)


def run_books(obligations: pd.DataFrame, base: pd.DataFrame, stated_base: pd.DataFrame,
              comps: pd.DataFrame, parts: pd.DataFrame, lines: pd.DataFrame,
              policy: Policy, payments: pd.DataFrame) -> BookRun:
    """Every revenue contract with events, event by event through its book.

    ``recoveries`` (payment id -> ``Recovery``): cash for an invoice on or after its write-off,
    in date order per invoice, net of the tax relief it reverses in proportion, first reverses
    the credit loss (what the write-off recognized), then (``recovery_after_write_off:
    revenue``) gives back the deferred share the write-off took off the schedule (the customer
    pays for the service after all); only the rest is Recoverables."""
    amended = comps[comps["treatment"].isin(["prospective", "catch_up"])
                    & (comps["revenue_pattern"] != "usage")] if len(comps) else comps
    on_schedule = parts[parts["effect"].isin(SCHEDULE_EFFECTS)]
    busy = set(amended["contract_id"]) | set(on_schedule["position_key"].dropna())
    run = BookRun({}, defaultdict(int), {}, [])
    if not busy:
        return run
    obligations = obligations.reset_index(drop=True)
    chosen = obligations.index[obligations["revenue_contract_id"].isin(busy)].to_numpy()
    revenue_of, stated_of = defaultdict(dict), defaultdict(dict)
    for frame, target in ((base, revenue_of), (stated_base, stated_of)):
        for item, month, amount in frame[frame["item"].isin(chosen)].itertuples(index=False):
            target[int(item)][int(month)] = int(amount)
    members: dict[str, list[Obligation]] = defaultdict(list)
    for item in chosen:
        row = obligations.loc[item]
        stated = stated_of.get(int(item), {}) if pd.notna(row["stated"]) else None
        members[row["revenue_contract_id"]].append(
            _to_obligation(row, revenue_of.get(int(item), {}), stated))
    books = {rc: Book(rc, members.get(rc, [])) for rc in busy}

    events = []
    billed = lines[lines["position_key"].isin(busy) & lines["role"].isin(["contract", "own"])]
    for row in billed.itertuples(index=False):
        events.append((row.position_key, day_of(row.finalized_at), RANK_BILLING, 0,
                       pd.Timestamp(row.finalized_at), row.invoice_line_id, "billing", row))
    for row in parts[parts["position_key"].isin(busy)].itertuples(index=False):
        events.append((row.position_key, day_of(row.date), RANK_ADJUSTMENT,
                       KIND_ORDER.get(row.event, 9), pd.Timestamp(row.date), row.part_id,
                       "part", row))
        if row.event == "credit_note" and pd.notna(row.voided_at):
            events.append((row.position_key, day_of(row.voided_at), RANK_ADJUSTMENT,
                           KIND_ORDER["credit_note_void"], pd.Timestamp(row.voided_at),
                           row.part_id, "void", row))
    offs = parts[(parts["event"] == "uncollectible") & parts["position_key"].isin(busy)]
    off_parts: dict[str, list] = defaultdict(list)
    for row in offs.itertuples(index=False):
        off_parts[row.invoice_id].append(row)
    if len(offs):
        written = offs.groupby("invoice_id")["date"].min()
        late = payments[payments["invoice_id"].isin(written.index)]
        late = late[pd.to_datetime(late["paid_at"]) >= late["invoice_id"].map(written)]
        for row in late.itertuples(index=False):
            rc = off_parts[row.invoice_id][0].position_key
            events.append((rc, day_of(row.paid_at), RANK_ADJUSTMENT, KIND_ORDER["recovery"],
                           pd.Timestamp(row.paid_at), row.payment_id, "recovery", row))
    forgiven: dict[str, Forgiven] = defaultdict(Forgiven)  # credited after the write-off
    recovered: dict[str, int] = defaultdict(int)   # pre-tax recovered per invoice
    cash_in: dict[str, int] = defaultdict(int)     # cash received after the write-off
    rebilled: dict[str, int] = defaultdict(int)    # of it, owed back (released by a mod)
    for (contract, version), group in amended.groupby(["contract_id", "version"], sort=True):
        first = group.iloc[0]
        events.append((contract, day_of(first["version_accounting"]), RANK_MODIFICATION, 0,
                       pd.Timestamp(first["version_accounting"]), f"{contract}|v{version}",
                       "modification", group))
    events.sort(key=lambda e: e[:6])
    for rc, day, _rank, _kind, _ts, _id, what, row in events:
        book = books[rc]
        if what == "billing":
            book.billed += int(row.pre_tax)
            book.line_billed[row.invoice_line_id] += int(row.pre_tax)
        elif what == "modification":
            run.modifications.append(_modification(book, row, policy.amortization))
        elif what == "part" and row.effect == "written_off_credit":
            run.parts[row.part_id] = _forgive(run, off_parts[row.invoice_id],
                                              forgiven[row.invoice_id], row)
        elif what == "part":
            run.parts[row.part_id] = _apply_part(book, row, day)
            if row.effect == "collectibility":
                book.write_offs.append(run.parts[row.part_id])
            if row.event == "credit_note":
                book.line_billed[row.invoice_line_id] -= int(row.pre_tax)
        elif what == "recovery":
            written = off_parts[row.invoice_id]
            results = [run.parts[p.part_id] for p in written if p.part_id in run.parts]
            waived = forgiven[row.invoice_id]
            gross = sum(int(p.gross) for p in written) - waived.gross
            # only what was written off can be recovered; cash beyond it is an overpayment,
            # owed to the customer like any payment beyond its invoice (CustomerCredit)
            within = min(int(row.amount), max(gross - cash_in[row.invoice_id], 0))
            cash_in[row.invoice_id] += int(row.amount)
            tax = recovery_tax(within, gross, sum(int(p.tax) for p in written) - waived.tax)
            pre_tax = within - tax
            debt = sum(r.recognized for r in results) - waived.loss
            held = sum(r.deferred - r.released for r in results) \
                - (waived.pre_tax - waived.loss)
            before = recovered[row.invoice_id]
            recovered[row.invoice_id] = before + pre_tax
            reversal = min(pre_tax, max(debt - before, 0))
            due = min(max(before + pre_tax - debt, 0), held) - min(max(before - debt, 0), held)
            restored = book.recover(results, due, day) if (
                due > 0 and policy.recovery_after_write_off == "revenue") else 0
            # what a modification released from the write-off (service cancelled after it) is no
            # longer the contract's: cash for it is billed beyond the price, a refund liability
            released = sum(r.released for r in results) - rebilled[row.invoice_id]
            rest = pre_tax - reversal - restored
            back = min(rest, released) if policy.recovery_after_write_off == "revenue" else 0
            rebilled[row.invoice_id] += back
            run.recoveries[row.payment_id] = Recovery(
                rc, tax, reversal, restored, rest - back, int(row.amount) - within, back)
        else:  # the void of a credit note part
            result = run.parts.get(row.part_id)
            if result is not None:
                if row.effect in SCHEDULE_EFFECTS:
                    result.void_catch_up = book.undo(
                        result, int(row.pre_tax) - result.settled, day)
                book.billed += int(row.pre_tax)
                book.line_billed[row.invoice_line_id] += int(row.pre_tax)
    for book in books.values():
        for ob in book.obligations:
            run.obligations[ob.key] = ob
        for key, amount in book.reductions.items():
            run.reductions[key] += amount
    return run


def _apply_part(book: Book, part, day: int) -> PartResult:
    amount = int(part.pre_tax)
    if part.effect in CORRECTION_EFFECTS:
        book.billed -= amount
        return PartResult(settled=amount)
    if part.effect == "settle_then_price_change":
        settled = min(amount, book.refund_liability()) if part.position_kind == "contract" else 0
        book.billed -= settled
        result = book.price_change(part, amount - settled, day)
        book.billed -= amount - settled
        result.settled = settled
        return result
    result = book.price_change(part, amount, day)
    book.billed -= amount
    return result


def part_results(parts: pd.DataFrame, run: BookRun) -> pd.DataFrame:
    """Each part with its recognized, deferred and settled shares (pre-tax).

    A part that met no book keeps the simple split its effect implies: a billing correction
    settles in full; a price change on nothing scheduled (billed usage, a customer credit) is
    recognized in full; a settlement has no share at all.
    """
    out = parts.copy()
    rec, dfr, s_rec, settled, caught = [], [], [], [], []
    for part_id, effect, pre_tax in zip(out["part_id"], out["effect"], out["pre_tax"],
                                        strict=True):
        result = run.parts.get(part_id)
        if result is None:
            result = PartResult()
            if effect in SCHEDULE_EFFECTS:
                result.recognized = result.stated_recognized = int(pre_tax)
            elif effect in CORRECTION_EFFECTS:
                result.settled = int(pre_tax)
        rec.append(result.recognized)
        dfr.append(result.deferred)
        s_rec.append(result.stated_recognized)
        settled.append(result.settled)
        caught.append(result.void_catch_up)
    out["recognized_share"] = np.asarray(rec, dtype=np.int64)
    out["deferred_share"] = np.asarray(dfr, dtype=np.int64)
    out["stated_recognized_share"] = np.asarray(s_rec, dtype=np.int64)
    out["settled_share"] = np.asarray(settled, dtype=np.int64)
    out["void_catch_up"] = np.asarray(caught, dtype=np.int64)
    return out


# ------------------------------------------------------------------ schedule rows
SCHEDULE_ROW_COLUMNS = ["source_type", "source_id", "month", "amount", "stated", "day",
                        "schedule_version", "treatment"]


def schedule_rows(obligations: pd.DataFrame, base: pd.DataFrame, stated_base: pd.DataFrame,
                  run: BookRun) -> pd.DataFrame:
    """One row per obligation and month (``day`` empty) or point amount (``day`` its date): the
    revenue amount and the stated amount (the right to bill; empty = follows revenue)."""
    obligations = obligations.reset_index(drop=True)
    keys = list(zip(obligations["source_type"], obligations["source_id"], strict=True))
    untouched = np.asarray([k not in run.obligations for k in keys], dtype=bool)
    frames = []
    if untouched.any():
        rows = base[untouched[base["item"].to_numpy()]] if len(base) else base
        stated = stated_base[untouched[stated_base["item"].to_numpy()]] if len(
            stated_base) else stated_base
        merged = rows.merge(stated.rename(columns={"amount": "stated"}), on=["item", "month"],
                            how="outer")
        item = merged["item"].to_numpy()
        frames.append(pd.DataFrame({
            "source_type": obligations["source_type"].to_numpy()[item],
            "source_id": obligations["source_id"].to_numpy()[item],
            "month": merged["month"].astype("int64").to_numpy(),
            "amount": merged["amount"].fillna(0).astype("int64").to_numpy(),
            "stated": merged["stated"].astype("Int64").to_numpy(),
            "day": pd.NaT,
            "schedule_version": obligations["version"].to_numpy()[item].astype("int64"),
            "treatment": obligations["treatment"].to_numpy()[item],
        }))
    records = []
    for key, ob in run.obligations.items():
        default = (ob.version, "original")
        months = set(ob.revenue.months) | (set(ob.stated.months) if ob.stated else set())
        for m in sorted(months):
            version, treatment = ob.attrs.get(m, default)
            stated = ob.stated.months.get(m, 0) if ob.stated is not None else None
            records.append((key[0], key[1], m, ob.revenue.months.get(m, 0), stated, pd.NaT,
                            version, treatment))
        for measure, is_stated in ((ob.revenue, False), (ob.stated, True)):
            if measure is None:
                continue
            for day, amount in measure.points:
                stamp = pd.Timestamp(np.datetime64("1970-01-01") + np.timedelta64(day, "D"))
                month = int(month_index(np.array([stamp], dtype="datetime64[ns]"))[0])
                version, treatment = ob.attrs.get(month, default)
                records.append((key[0], key[1], month, 0 if is_stated else amount,
                                amount if is_stated else (0 if ob.stated is not None else None),
                                stamp, version, "catch_up" if treatment == "original"
                                else treatment))
    if records:
        frame = pd.DataFrame(records, columns=SCHEDULE_ROW_COLUMNS)
        frame["stated"] = frame["stated"].astype("Int64")
        frames.append(frame)
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in SCHEDULE_ROW_COLUMNS})
    out = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(
        len(f) for f in frames) else frames[0]
    out["day"] = pd.to_datetime(out["day"])
    return out.sort_values(["source_type", "source_id", "month", "day"], kind="mergesort",
                           na_position="first").reset_index(drop=True)


# ------------------------------------------------------------------ the whole company
@dataclass(frozen=True)
class ContractFacts:
    """Contract-side facts: components, invoice lines, parts, obligations and schedule rows."""

    components: pd.DataFrame
    headers: pd.DataFrame
    invoice_lines: pd.DataFrame
    parts: pd.DataFrame
    customer_credits: pd.DataFrame
    obligations: pd.DataFrame
    schedule: pd.DataFrame
    run: BookRun


def build_contract_facts(t: dict[str, pd.DataFrame], policy: Policy, rates: RateBook,
                         treatments: TreatmentTable) -> ContractFacts:
    """Components, allocation at inception, obligations, billing parts and their books."""
    headers = contract_headers(t["contracts"])
    if len(t["contract_lines"]):
        comps = build_components(t["contract_lines"], headers, t["products"], rates)
        comps["inception_allocated"] = allocate_at_inception(comps, policy.allocation_rounding)
    else:
        comps = pd.DataFrame(columns=[
            "contract_line_id", "contract_id", "revenue_pattern", "legal_entity", "customer_id",
            "obligation_id", "revenue_contract_id", "treatment", "inception_allocated",
            "version", "is_delta", "is_added", "ssp", "ssp_source", "currency", "amount"])
    lines = classify_invoice_lines(t, comps, headers)
    parts, customer_credits = document_parts(t, lines)
    bad_debt = "CreditLossExpense" if policy.bad_debt_presentation == "credit_loss_expense" \
        else "BadDebt"
    parts = classify_parts(parts, lines, treatments, bad_debt)
    if policy.credit_note_treatment == "contra_in_full":
        # the whole credit is contra revenue when issued; the schedule is untouched
        priced = (parts["event"] == "credit_note") & parts["effect"].isin(
            ["price_change", "settle_then_price_change"])
        parts.loc[priced, "allocation"] = "recognized"
    frames = [f for f in (contract_line_obligations(comps, policy) if len(comps) else None,
                          invoice_line_obligations(lines, policy)) if f is not None and len(f)]
    obligations = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=OBLIGATION_COLUMNS)
    for column in ("start", "end", "floor", "booking_date"):
        obligations[column] = pd.to_datetime(obligations[column])
    obligations["amount"] = obligations["amount"].astype("int64")
    base = spread_base(obligations, policy, "amount")
    stated_base = spread_base(obligations, policy, "stated")
    run = run_books(obligations, base, stated_base, comps, parts, lines, policy,
                    t["payments"])
    parts = part_results(parts, run)
    schedule = schedule_rows(obligations, base, stated_base, run)
    return ContractFacts(components=comps, headers=headers, invoice_lines=lines, parts=parts,
                         customer_credits=customer_credits, obligations=obligations,
                         schedule=schedule, run=run)
