"""Logical accounts of the canonical model and their normal balances (docs/canonical-model.md)."""

from __future__ import annotations

NORMAL_DEBIT = (
    "AccountsReceivable", "UnbilledAccountsReceivable", "ContractAsset", "Cash",
    "IntercompanyReceivable", "CreditNotes", "Refunds", "Voids", "BadDebt", "CreditLossExpense",
    "FxLoss",
)
NORMAL_CREDIT = (
    "Revenue", "DeferredRevenue", "RefundLiability", "CustomerCredit", "TaxLiability",
    "Recoverables", "FxGain", "IntercompanyPayable",
)
ACCOUNTS = NORMAL_DEBIT + NORMAL_CREDIT
# Reductions of revenue presented against it (BadDebt only under bad_debt_presentation:
# contra_revenue; CreditLossExpense is an expense, ASC 326).
CONTRA_REVENUE = ("CreditNotes", "Refunds", "Voids", "BadDebt")
# The contract position (ASC 606-10-45-1..4) and the liabilities it can turn into.
CONTRACT_POSITION_ACCOUNTS = ("DeferredRevenue", "ContractAsset", "UnbilledAccountsReceivable",
                              "RefundLiability")


def normal_sign(account: str) -> int:
    """+1 when a debit increases the account, -1 when a credit does; ValueError if unknown."""
    if account in NORMAL_DEBIT:
        return 1
    if account in NORMAL_CREDIT:
        return -1
    raise ValueError(f"unknown logical account {account!r}")
