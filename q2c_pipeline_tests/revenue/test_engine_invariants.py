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


@st.composite
def contracts(draw):
    n = draw(st.integers(1, 3))
    lines, bills = [], []
    for i in range(n):
        start = T("2026-01-01") + pd.Timedelta(days=draw(st.integers(0, 200)))
        days = draw(st.integers(1, 400))
        point = draw(st.booleans())
        lines.append({
            "contract_line_id": f"L{i}", "contract_id": "C1", "product_code": "P",
            "quantity": 1.0, "amount": draw(st.integers(0, 5_000_000)),
            "ssp_amount": draw(st.one_of(st.none(), st.integers(1, 5_000_000))),
            "service_start": start, "service_end": pd.NaT if point else start
            + pd.Timedelta(days=days), "revenue_pattern": "point_in_time" if point else "ratable",
            "revises_line_id": None, "effective_date": pd.NaT, "allocation_group": None})
        if draw(st.booleans()):
            bills.append((f"L{i}", draw(st.integers(1, 3_000_000)), draw(st.integers(0, 300))))
    price = draw(st.one_of(st.none(), st.integers(1, 9_000_000)))
    credit = draw(st.integers(0, 1_000_000))
    policy = Policy(amortization=draw(st.sampled_from(
        ["day", "millisecond", "month_even", "month_prorated"])),
        credit_note_treatment=draw(st.sampled_from(["proportional", "contra_in_full"])))
    return lines, bills, price, credit, policy


def _tables(lines, bills, price, credit):
    tables = {**company(), **frames(
        contracts=[{"contract_id": "C1", "customer_id": "K1", "legal_entity": "US01",
                    "currency": "USD", "signed_date": T("2026-01-01"),
                    "transaction_price": price, "version": 1, "correlation_id": "C1"}],
        contract_lines=lines)}
    tables["contracts"]["transaction_price"] = tables["contracts"]["transaction_price"].astype(
        "Int64")
    tables["contract_lines"]["ssp_amount"] = tables["contract_lines"]["ssp_amount"].astype("Int64")
    if bills:
        tables["invoices"] = pd.DataFrame(
            [invoice(f"in_{i}", T("2026-01-01") + pd.Timedelta(days=d), contract="C1")
             for i, (_, _, d) in enumerate(bills)])
        tables["invoice_lines"] = pd.DataFrame(
            [invoice_line(f"il_{i}", f"in_{i}", amount, contract_line=line, tax=amount // 10)
             for i, (line, amount, _) in enumerate(bills)])
        if credit:
            tables["credit_notes"] = pd.DataFrame([{
                "credit_note_id": "cn_1", "issued_at": T("2026-07-01"), "amount": credit,
                "currency": "USD", "invoice_id": "in_0", "invoice_line_id": None,
                "tax_amount": 0, "voided_at": pd.NaT}])
    return with_catalog(tables)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(contracts())
def test_engine_invariants_hold_for_random_contracts(case):
    lines, bills, price, credit, policy = case
    tables = _tables(lines, bills, price, credit)
    result = run_engine(tables, policy, AS_OF)
    jl = result.journal_lines

    # every journal balances in transaction and in functional currency
    sums = jl.groupby(["journal_id", "currency"])[
        ["debit", "credit", "debit_functional", "credit_functional"]].sum()
    assert (sums["debit"] == sums["credit"]).all()
    assert (sums["debit_functional"] == sums["credit_functional"]).all()

    # allocation sums to the transaction price; each obligation's schedule plus the deferred
    # share of its reductions equals its allocation
    alloc = result.allocation
    expected_price = price if price is not None else sum(line["amount"] for line in lines)
    assert alloc["allocated_amount"].sum() == expected_price
    scheduled = result.revenue_schedule.groupby("source_id")["amount"].sum()
    contra = jl[jl["account"].isin(CONTRA_REVENUE)]
    contra_total = (contra["debit"] - contra["credit"]).sum()
    credited = jl[jl["source_type"] == "credit_note"]
    credited_pre_tax = (credited.loc[credited["account"] == "AccountsReceivable", "credit"].sum()
                        - credited.loc[credited["account"] == "TaxLiability", "debit"].sum())
    # (what a credit note settles of a refund liability -- billed beyond the price -- is neither
    # contra revenue nor taken off a schedule)
    settled = (credited.loc[credited["account"] == "RefundLiability", "debit"].sum()
               - credited.loc[credited["account"] == "RefundLiability", "credit"].sum())
    assert scheduled.sum() + credited_pre_tax - settled - contra_total == alloc[
        "allocated_amount"].sum()

    # contract position: Deferred - Unbilled = net billings - net revenue (all periods <= as_of)
    def total(account):
        rows = jl[jl["account"] == account]
        return int((rows["credit"] - rows["debit"]).sum())

    # total() is credit-minus-debit, so Unbilled (normal debit) enters with a plus sign
    billed = (total("DeferredRevenue") + total("RefundLiability")
              + total("UnbilledAccountsReceivable") + total("ContractAsset"))
    invoiced_pre_tax = sum(amount for _, amount, _ in bills)
    recognized = result.revenue_schedule.query("period <= '2026-12'")["amount"].sum()
    assert billed == invoiced_pre_tax - credited_pre_tax - (recognized - contra_total)

    # same input -> same keys and byte-identical CSV
    again = run_engine(_tables(lines, bills, price, credit), policy, AS_OF)
    assert again.journal_lines.to_csv(index=False) == jl.to_csv(index=False)
    assert again.account_balances.to_csv(index=False) == result.account_balances.to_csv(
        index=False)
