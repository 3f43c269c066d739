"""Functional-currency measurement where rounded layers meet: a reclassification between two
position accounts inside a recognition entry, at one unchanged rate, balances in the functional
currency with no exchange difference (found by the revenue-contract property test)."""

from datetime import date

import pandas as pd

from q2c_pipeline.core.policy import Policy
from q2c_pipeline.engine import run_engine

T = pd.Timestamp


def _line(lid, start, end, pattern="ratable", **extra):
    return {"contract_line_id": lid, "contract_id": "C1", "product_code": "P", "quantity": 1.0,
            "amount": 10_000, "ssp_amount": None, "service_start": T(start),
            "service_end": T(end) if end else pd.NaT, "revenue_pattern": pattern,
            "revises_line_id": None, "effective_date": pd.NaT, "allocation_group": None,
            "modification_treatment": None, "version": None, **extra}


def _tables():
    header = {"contract_id": "C1", "customer_id": "K1", "legal_entity": "US01",
              "currency": "EUR", "transaction_price": None}
    lines = [
        _line("L0", "2026-02-23", "2026-03-25"),
        _line("L1", "2026-01-20", "2026-02-19"),
        _line("L2", "2026-01-01", None, pattern="point_in_time"),
        # a price cut of 0.01 on L0 from 2026-01-31 (a prospective modification)
        _line("LA", None, "2026-03-25", quantity=-1.0, amount=-1, revises_line_id="L0",
              effective_date=T("2026-01-31"), modification_treatment="prospective", version=2),
    ]
    lines[3]["service_start"] = pd.NaT
    invoices = [{"invoice_id": f"in_{k}", "customer_id": "K1", "currency": "EUR",
                 "finalized_at": T("2026-01-01"), "contract_id": "C1", "status": "open"}
                for k in range(3)]
    items = [{"invoice_line_id": f"in_{k}_l", "invoice_id": f"in_{k}", "amount": 1_000,
              "contract_line_id": "L0", "product_code": "P", "quantity": 1.0,
              "service_start": T("2026-01-01"), "service_end": T("2026-01-02")}
             for k in range(3)]
    return {
        "legal_entities": pd.DataFrame([{"legal_entity": "US01", "functional_currency": "USD"}]),
        "customers": pd.DataFrame([{"customer_id": "K1", "name": "K1", "legal_entity": "US01",
                                    "currency": "EUR"}]),
        "products": pd.DataFrame([{"product_code": "P", "revenue_pattern": "ratable"}]),
        "fx_rates": pd.DataFrame([{"rate_date": T("2026-01-01"), "from_currency": "EUR",
                                   "to_currency": "USD", "rate": "1.05"}]),
        "contracts": pd.DataFrame([
            {**header, "signed_date": T("2026-01-01"), "effective_date": pd.NaT, "version": 1},
            {**header, "signed_date": T("2026-01-31"), "effective_date": T("2026-01-31"),
             "version": 2}]),
        "contract_lines": pd.DataFrame(lines),
        "invoices": pd.DataFrame(invoices),
        "invoice_lines": pd.DataFrame(items),
    }


def test_a_reclass_inside_a_recognition_entry_balances_in_functional_currency_at_one_rate():
    policy = Policy(amortization="day", catch_up=False, journal_granularity="day")
    jl = run_engine(_tables(), policy, date(2026, 12, 31)).journal_lines
    sums = jl.groupby("journal_id")[["debit", "credit", "debit_functional",
                                     "credit_functional"]].sum()
    assert (sums["debit"] == sums["credit"]).all()
    assert (sums["debit_functional"] == sums["credit_functional"]).all()
    # one rate throughout: no exchange difference anywhere, only rounding
    assert not jl["account"].isin(["FxGain", "FxLoss"]).any()
    # the January 31 reclassification of L0: 4.83 EUR of contract asset becomes unbilled
    # receivable; 4.83 x 1.05 = 5.0715 (5.07) on both sides, but the contract asset's small
    # daily layers carry 5.05 once each was rounded. The 0.02 between them is rounding: it goes
    # to the largest line (the unbilled debit, 5.07 -> 5.05), never to FX
    reclass = jl[(jl["entry_date"].astype(str) == "2026-01-31") & (jl["source_id"] == "L0")]
    rows = {a: (int(d), int(c), int(df), int(cf)) for a, d, c, df, cf in reclass[
        ["account", "debit", "credit", "debit_functional", "credit_functional"]].itertuples(
        index=False)}
    assert rows["UnbilledAccountsReceivable"][0] == 483
    assert rows["ContractAsset"][1] == 483
    assert rows["ContractAsset"][3] == 505
    assert rows["UnbilledAccountsReceivable"][2] == 505
