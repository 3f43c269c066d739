"""Properties of revenue contracts over random histories: contracts with amendments, monthly or
up-front billing with tax, credit notes (some voided, with reasons), payments, refunds (some
settling a credit note), voids and write-offs, in the functional currency or in EUR at moving
rates. Each property compares the engine with something it does not compute itself: the
inputs, the same history without tax, the same company without another contract, the same
history without the amendment.
"""

from datetime import date

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from q2c_pipeline.accounting.remeasurement import MONETARY_ACCOUNTS
from q2c_pipeline.core.policy import Policy
from q2c_pipeline.engine import run_engine
from q2c_pipeline_tests.revenue.builders import T, with_catalog

AS_OF = date(2026, 12, 31)
POSITION = ["DeferredRevenue", "RefundLiability", "UnbilledAccountsReceivable", "ContractAsset"]
CONTRA = ["CreditNotes", "Refunds", "Voids", "BadDebt"]
REASONS = [None, "duplicate", "order_change", "product_unsatisfactory", "fraudulent"]


def _day(n: int) -> pd.Timestamp:
    return T("2026-01-01") + pd.Timedelta(days=n)


@st.composite
def contract_histories(draw, contract="C1", customer="K1", prefix=""):
    """One contract of 1-3 lines, maybe amended, with its billing and what happens to it."""
    lines = []
    for i in range(draw(st.integers(1, 3))):
        start = draw(st.integers(0, 60))
        point = draw(st.booleans()) and i > 0
        lines.append({
            "contract_line_id": f"{prefix}L{i}", "contract_id": contract, "product_code": "P",
            "quantity": 1.0, "amount": draw(st.integers(10_000, 2_000_000)),
            "ssp_amount": draw(st.one_of(st.none(), st.integers(10_000, 2_000_000))),
            "service_start": _day(start),
            "service_end": pd.NaT if point else _day(start + draw(st.integers(30, 400))),
            "revenue_pattern": "point_in_time" if point else "ratable",
            "revises_line_id": None, "effective_date": pd.NaT, "allocation_group": None,
            "modification_treatment": None, "version": None})
    header = {"contract_id": contract, "customer_id": customer, "legal_entity": "US01",
              "currency": "USD", "transaction_price": None, "correlation_id": contract}
    versions = [{**header, "signed_date": _day(0), "effective_date": pd.NaT, "version": 1}]
    amendment = draw(st.sampled_from([None, "prospective", "catch_up", "separate_contract",
                                      "cancel"]))
    if amendment is not None:
        effective = draw(st.integers(30, 200))
        signed = effective + draw(st.integers(-20, 20))
        base = lines[0]
        if amendment == "cancel":
            delta = {"amount": -draw(st.integers(1, base["amount"])), "quantity": -1.0,
                     "modification_treatment": "prospective"}
        else:
            delta = {"amount": draw(st.integers(-base["amount"] // 2, 1_000_000)),
                     "quantity": 1.0, "modification_treatment": amendment}
            if amendment == "separate_contract":
                delta["amount"] = abs(delta["amount"]) + 1
        lines.append({**base, **delta, "contract_line_id": f"{prefix}LA",
                      "service_start": pd.NaT, "service_end": base["service_end"],
                      "revises_line_id": base["contract_line_id"],
                      "effective_date": _day(effective), "ssp_amount": None, "version": 2})
        versions.append({**header, "signed_date": _day(max(signed, 1)),
                         "effective_date": _day(effective), "version": 2})
    invoices, items, notes, pays, refunds, events = [], [], [], [], [], []
    for k in range(draw(st.integers(1, 4))):
        inv = f"{prefix}in_{k}"
        day = draw(st.integers(0, 250))
        target = draw(st.sampled_from(lines))["contract_line_id"]
        pre_tax = draw(st.integers(1_000, 1_500_000))
        tax = draw(st.integers(0, pre_tax // 5))
        start = _day(day)
        invoices.append({"invoice_id": inv, "customer_id": customer, "currency": "USD",
                         "finalized_at": start, "contract_id": contract, "legal_entity": None,
                         "status": "open", "correlation_id": contract})
        items.append({"invoice_line_id": f"{inv}_l", "invoice_id": inv, "amount": pre_tax,
                      "contract_line_id": target, "product_code": "P", "quantity": 1.0,
                      "tax_amount": tax, "tax_inclusive": False, "service_start": start,
                      "service_end": start + pd.Timedelta(days=draw(st.integers(1, 120))),
                      "is_proration": False, "created_at": pd.NaT})
        gross = pre_tax + tax
        fate = draw(st.sampled_from(["open", "paid", "credit", "credit_refund", "refund", "void",
                                     "write_off", "write_off_paid"]))
        when = day + draw(st.integers(0, 90))
        if fate in ("paid", "credit_refund", "refund", "write_off_paid"):
            pays.append({"payment_id": f"{inv}_p", "paid_at": _day(when if fate != "write_off_paid"
                                                                   else when + 30),
                         "amount": gross, "currency": "USD", "invoice_id": inv})
        if fate in ("credit", "credit_refund"):
            amount = draw(st.integers(1, pre_tax))
            note_tax = amount * tax // pre_tax
            notes.append({"credit_note_id": f"{inv}_cn", "issued_at": _day(when + 1),
                          "amount": amount, "currency": "USD", "invoice_id": inv,
                          "invoice_line_id": f"{inv}_l", "tax_amount": note_tax,
                          "reason": draw(st.sampled_from(REASONS)),
                          "voided_at": _day(when + 20) if draw(st.booleans()) else pd.NaT})
            if fate == "credit_refund":
                refunds.append({"refund_id": f"{inv}_r", "invoice_id": inv,
                                "refunded_at": _day(when + 5), "amount": amount + note_tax,
                                "currency": "USD", "credit_note_id": f"{inv}_cn"})
        if fate == "refund":
            refunds.append({"refund_id": f"{inv}_r", "invoice_id": inv,
                            "refunded_at": _day(when + 3), "amount": draw(st.integers(1, gross)),
                            "currency": "USD", "credit_note_id": None})
        if fate in ("void", "write_off", "write_off_paid"):
            events.append({"invoice_id": inv, "occurred_at": _day(when),
                           "event": "void" if fate == "void" else "uncollectible"})
    return {"contracts": versions, "contract_lines": lines, "invoices": invoices,
            "invoice_lines": items, "credit_notes": notes, "payments": pays, "refunds": refunds,
            "invoice_events": events}


def _company(*histories, currency="USD", rates=()):
    rows: dict[str, list] = {}
    customers = set()
    for history in histories:
        for name, part in history.items():
            rows.setdefault(name, []).extend(part)
        customers.update(r["customer_id"] for r in history["contracts"])
    tables = {name: pd.DataFrame(part) for name, part in rows.items() if part}
    for name in ("contracts", "invoices", "credit_notes", "payments", "refunds"):
        if name in tables:
            tables[name]["currency"] = currency
    tables["legal_entities"] = pd.DataFrame([{"legal_entity": "US01",
                                              "functional_currency": "USD"}])
    tables["customers"] = pd.DataFrame([{"customer_id": c, "name": c, "legal_entity": "US01",
                                         "currency": currency, "correlation_id": c}
                                        for c in sorted(customers)])
    if rates:
        tables["fx_rates"] = pd.DataFrame([{"rate_date": _day(d), "from_currency": "EUR",
                                            "to_currency": "USD", "rate": r} for d, r in rates])
    return with_catalog(tables)


policies = st.builds(
    Policy, amortization=st.sampled_from(["day", "month_even", "month_prorated", "millisecond"]),
    catch_up=st.booleans(), journal_granularity=st.sampled_from(["period", "day"]),
    bad_debt_presentation=st.sampled_from(["contra_revenue", "credit_loss_expense"]))
fx = st.one_of(st.just(("USD", ())), st.lists(
    st.sampled_from(["1.05", "1.10", "1.125", "1.2"]), min_size=1, max_size=4).map(
    lambda rs: ("EUR", tuple((i * 60, r) for i, r in enumerate(rs)))))


def _untaxed(tables):
    """The history with no tax: invoices and credit notes without it, and every payment and
    refund without the tax it carried (its share of its invoice's tax, half-up)."""
    out = dict(tables)
    lines = tables["invoice_lines"].set_index("invoice_id")
    gross = lines["amount"] + lines["tax_amount"]
    out["invoice_lines"] = tables["invoice_lines"].assign(tax_amount=0)
    if "credit_notes" in tables:
        out["credit_notes"] = tables["credit_notes"].assign(tax_amount=0)
    for name in ("payments", "refunds"):
        if name in tables:
            frame = tables[name].copy()
            g = frame["invoice_id"].map(gross)
            tax = frame["invoice_id"].map(lines["tax_amount"])
            share = (2 * frame["amount"] * tax + g) // (2 * g)
            frame["amount"] = frame["amount"] - share
            out[name] = frame[frame["amount"] > 0]
    return out


def _net_credit(jl, accounts, functional=False):
    rows = jl[jl["account"].isin(accounts)]
    suffix = "_functional" if functional else ""
    return int((rows["credit" + suffix] - rows["debit" + suffix]).sum())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(contract_histories(), policies, fx)
def test_revenue_contract_properties_hold_over_random_histories(history, policy, money):
    currency, rates = money
    tables = _company(history, currency=currency, rates=rates)
    result = run_engine(tables, policy, AS_OF)
    jl = result.journal_lines

    # every journal balances in the transaction and in the functional currency
    sums = jl.groupby(["journal_id", "currency"])[
        ["debit", "credit", "debit_functional", "credit_functional"]].sum()
    assert (sums["debit"] == sums["credit"]).all()
    assert (sums["debit_functional"] == sums["credit_functional"]).all()

    # revenue recognized (net of contra) + contract liability - contract asset - unbilled
    # + refund liability = consideration billed net of reductions, from the inputs: invoiced
    # pre-tax less what reduced it (the reductions' receivable/cash side less their tax)
    billed = int(tables["invoice_lines"]["amount"].sum())
    reductions = jl[jl["source_type"].isin(["credit_note", "credit_note_void", "refund",
                                            "invoice_void", "uncollectible"])]
    reduced = _net_credit(reductions, ["AccountsReceivable", "Cash"]) + _net_credit(
        reductions, ["TaxLiability"])
    # (a write-off's recognized share reduces the position whether presented as contra revenue
    # or as credit loss expense; cash after a write-off, less its tax, first reverses that, then
    # goes back to the position what the write-off took off the schedule, the rest is
    # Recoverables: it adds to the consideration like a billing)
    recoveries = jl[jl["source_type"] == "recovery"]
    recovered = -_net_credit(recoveries, ["Cash"]) - _net_credit(recoveries, ["TaxLiability"])
    net_revenue = _net_credit(jl, ["Revenue"]) + _net_credit(
        jl, [*CONTRA, "CreditLossExpense", "Recoverables"])
    assert _net_credit(jl, POSITION) == billed - reduced + recovered - net_revenue

    # tax never reaches revenue: the same history with no tax (and cash without the tax in it)
    # gives the same revenue and contra revenue
    bare = run_engine(_untaxed(tables), policy, AS_OF).journal_lines
    for account in ["Revenue", *CONTRA, "CreditLossExpense"]:
        assert _net_credit(bare, [account]) == _net_credit(jl, [account]), account

    # nothing but monetary items is remeasured
    remeasured = set(jl.loc[jl["source_type"] == "fx_remeasurement", "account"])
    assert remeasured <= set(MONETARY_ACCOUNTS) | {"FxGain", "FxLoss"}

    # at one rate there is no FX at all (no FX line from rounding)
    if len(rates) <= 1:
        assert not jl["account"].isin(["FxGain", "FxLoss"]).any()

    # schedule and allocation agree: each obligation's schedule + what reductions took off
    # it = its allocation after modifications
    alloc = result.allocation.set_index("contract_line_id")
    scheduled = result.revenue_schedule.groupby("source_id")["amount"].sum()
    for line_id, row in alloc.iterrows():
        assert scheduled.get(line_id, 0) == row["allocated_amount"] - row["deferred_reductions"]

    # the same input gives the same bytes and keys
    again = run_engine(tables, policy, AS_OF)
    assert again.journal_lines.equals(jl)
    assert again.revenue_schedule.equals(result.revenue_schedule)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(contract_histories("C1", "K1", "a"), contract_histories("C2", "K2", "b"), policies)
def test_a_revenue_contract_computed_alone_gives_the_rows_it_has_in_the_company(one, two,
                                                                               policy):
    company = run_engine(_company(one, two), policy, AS_OF)
    alone = run_engine(_company(one), policy, AS_OF)
    mine = company.revenue_schedule[company.revenue_schedule["customer_id"] == "K1"]
    assert mine.reset_index(drop=True).equals(alone.revenue_schedule.reset_index(drop=True))
    jl = company.journal_lines
    own = jl[(jl["customer_id"] == "K1") & (jl["source_type"] != "fx_remeasurement")]
    solo = alone.journal_lines[alone.journal_lines["source_type"] != "fx_remeasurement"]
    columns = ["journal_key", "account", "debit", "credit", "debit_functional",
               "credit_functional", "period"]
    assert sorted(map(tuple, own[columns].to_numpy().tolist())) == sorted(
        map(tuple, solo[columns].to_numpy().tolist()))
    positions = company.contract_positions
    assert positions[positions["revenue_contract_id"].str.startswith("C1")].reset_index(
        drop=True).equals(alone.contract_positions.reset_index(drop=True))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(contract_histories(), policies)
def test_a_close_before_an_amendment_is_known_is_unchanged_by_it(history, policy):
    if len(history["contracts"]) < 2:
        return
    amendment = history["contracts"][1]
    known = max(amendment["signed_date"], amendment["effective_date"])
    before = (known - pd.Timedelta(days=1)).date()
    kept = [line for line in history["contract_lines"] if line["version"] is None]
    ids = {line["contract_line_id"] for line in kept}
    # Without the amendment its line does not exist: an invoice line that billed it names no
    # contract line (what the amended history looks like before the amendment is known).
    items = [item if item["contract_line_id"] in ids else {**item, "contract_line_id": None}
             for item in history["invoice_lines"]]
    without = {**history, "contracts": history["contracts"][:1], "contract_lines": kept,
               "invoice_lines": items}
    amended = run_engine(_company(history), policy, before)
    plain = run_engine(_company(without), policy, before)
    assert amended.revenue_schedule.equals(plain.revenue_schedule)
    assert amended.journal_lines.equals(plain.journal_lines)
