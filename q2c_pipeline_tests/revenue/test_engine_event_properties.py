"""Invariants of docs/canonical-model.md over random contracts AND event sequences:
invoices, credit notes (some voided), payments, refunds, voids and write-offs, closed periods."""

from datetime import date

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from q2c_pipeline.accounting.accounts import CONTRA_REVENUE
from q2c_pipeline.core.policy import Policy
from q2c_pipeline.engine import run_engine
from q2c_pipeline_tests.revenue.builders import (
    T,
    company,
    frames,
    invoice,
    invoice_line,
    with_catalog,
)

AS_OF = date(2026, 12, 31)
DAY0 = T("2026-01-01")
REDUCTIONS = ("credit_note", "credit_note_void", "refund", "invoice_void", "uncollectible")


def _day(n):
    return DAY0 + pd.Timedelta(days=n)


@st.composite
def histories(draw):
    n_lines = draw(st.integers(1, 3))
    lines = []
    for i in range(n_lines):
        start = draw(st.integers(0, 150))
        lines.append({
            "contract_line_id": f"L{i}", "contract_id": "C1", "product_code": "P",
            "quantity": 1.0, "amount": draw(st.integers(1, 3_000_000)),
            "ssp_amount": None, "service_start": _day(start),
            "service_end": _day(start + draw(st.integers(1, 300))),
            "revenue_pattern": "ratable", "revises_line_id": None, "effective_date": pd.NaT,
            "allocation_group": None})
    invoices, inv_lines, notes, payments, refunds, events = [], [], [], [], [], []
    for k in range(draw(st.integers(1, 3))):
        inv_id, day = f"in_{k}", draw(st.integers(0, 200))
        pre_tax = draw(st.integers(1, 2_000_000))
        tax = draw(st.integers(0, pre_tax // 5))
        inclusive = draw(st.booleans())
        invoices.append(invoice(inv_id, _day(day), contract="C1"))
        inv_lines.append(invoice_line(
            f"il_{k}", inv_id, pre_tax + tax if inclusive else pre_tax, tax=tax,
            inclusive=inclusive, contract_line=f"L{draw(st.integers(0, n_lines - 1))}"))
        gross = pre_tax + tax
        kind = draw(st.sampled_from(["none", "credit", "pay", "pay_refund", "void", "write_off"]))
        when = day + draw(st.integers(0, 120))
        if kind == "credit":
            credit = draw(st.integers(1, pre_tax))
            notes.append({"credit_note_id": f"cn_{k}", "issued_at": _day(when),
                          "amount": credit, "currency": "USD", "invoice_id": inv_id,
                          "invoice_line_id": f"il_{k}", "tax_amount": 0,
                          "voided_at": _day(when + 10) if draw(st.booleans()) else pd.NaT})
        if kind in ("pay", "pay_refund"):
            payments.append({"payment_id": f"py_{k}", "paid_at": _day(when), "amount": gross,
                             "currency": "USD", "invoice_id": inv_id})
        if kind == "pay_refund":
            refunds.append({"refund_id": f"re_{k}", "invoice_id": inv_id,
                            "refunded_at": _day(when + draw(st.integers(0, 90))),
                            "amount": draw(st.integers(1, gross)), "currency": "USD"})
        if kind in ("void", "write_off"):
            events.append({"invoice_id": inv_id, "occurred_at": _day(when),
                           "event": "void" if kind == "void" else "uncollectible"})
    closed = draw(st.sampled_from([[], ["2026-01"], ["2026-01", "2026-02"]]))
    policy = Policy(
        amortization=draw(st.sampled_from(["day", "millisecond", "month_even",
                                           "month_prorated"])),
        credit_note_treatment=draw(st.sampled_from(["proportional", "contra_in_full"])),
        catch_up=draw(st.booleans()),
        journal_granularity=draw(st.sampled_from(["period", "day"])))
    tables = {**company(), **frames(
        contracts=[{"contract_id": "C1", "customer_id": "K1", "legal_entity": "US01",
                    "currency": "USD", "signed_date": DAY0, "transaction_price": None,
                    "version": 1, "correlation_id": "C1"}],
        contract_lines=lines, invoices=invoices, invoice_lines=inv_lines)}
    for name, rows in (("credit_notes", notes), ("payments", payments), ("refunds", refunds),
                       ("invoice_events", events)):
        if rows:
            tables[name] = pd.DataFrame(rows)
    if closed:
        tables["accounting_periods"] = pd.DataFrame(
            [{"legal_entity": "US01", "period": p, "status": "closed"} for p in closed])
    return with_catalog(tables), policy, closed


def _net_credit(jl, accounts):
    rows = jl[jl["account"].isin(accounts)]
    return int((rows["credit"] - rows["debit"]).sum())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_ledger_invariants_hold_for_random_contracts_and_event_sequences(case):
    tables, policy, closed = case
    result = run_engine(tables, policy, AS_OF)
    jl = result.journal_lines

    # every journal balances per currency and in functional currency
    sums = jl.groupby(["journal_id", "currency"])[
        ["debit", "credit", "debit_functional", "credit_functional"]].sum()
    assert (sums["debit"] == sums["credit"]).all()
    assert (sums["debit_functional"] == sums["credit_functional"]).all()

    # no journal line in a closed period
    assert not jl["period"].isin(closed).any()

    # each obligation: scheduled revenue + deferred share of its reductions = its allocation
    alloc = result.allocation.set_index("contract_line_id")
    scheduled = result.revenue_schedule.groupby("source_id")["amount"].sum()
    for line_id, row in alloc.iterrows():
        assert scheduled.get(line_id, 0) == row["allocated_amount"] - row["deferred_reductions"]

    # contract position: Deferred + RefundLiability - Unbilled - ContractAsset
    #                    = billed pre-tax - reductions pre-tax - (revenue - contra revenue)
    lines = tables["invoice_lines"]
    billed = int((lines["amount"] - lines["tax_amount"].where(lines["tax_inclusive"], 0)).sum())
    red = jl[jl["source_type"].isin(REDUCTIONS)]
    reduced = (_net_credit(red, ["AccountsReceivable", "Cash"])
               + _net_credit(red, ["TaxLiability"]))
    # (a write-off's recognized share is credit loss expense by default; cash after it, less
    # its tax, reverses that and gives the rest back to the position or to Recoverables)
    revenue = _net_credit(jl, ["Revenue"]) + _net_credit(
        jl, [*CONTRA_REVENUE, "CreditLossExpense", "Recoverables"])
    recoveries = jl[jl["source_type"] == "recovery"]
    recovered = -_net_credit(recoveries, ["Cash"]) - _net_credit(recoveries, ["TaxLiability"])
    position = _net_credit(jl, ["DeferredRevenue", "RefundLiability", "UnbilledAccountsReceivable",
                                "ContractAsset"])
    assert position == billed - reduced + recovered - revenue

    # determinism: same input twice -> identical frames and journal keys
    again = run_engine(tables, policy, AS_OF)
    for name in ("allocation", "revenue_schedule", "journal_lines", "account_balances"):
        assert getattr(again, name).equals(getattr(result, name)), name
    assert again.journal_lines["journal_key"].tolist() == jl["journal_key"].tolist()
