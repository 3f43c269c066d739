"""Logical accounts of the canonical model and their normal balances."""

from __future__ import annotations

NORMAL_DEBIT = (
    "AccountsReceivable", "UnbilledAccountsReceivable", "Cash", "IntercompanyReceivable",
    "CreditNotes", "Refunds", "Voids", "BadDebt", "FxLoss",
)
NORMAL_CREDIT = (
    "Revenue", "DeferredRevenue", "TaxLiability", "Recoverables", "FxGain", "IntercompanyPayable",
)
ACCOUNTS = NORMAL_DEBIT + NORMAL_CREDIT
CONTRA_REVENUE = ("CreditNotes", "Refunds", "Voids", "BadDebt")


def normal_sign(account: str) -> int:
    """+1 when a debit increases the account, -1 when a credit does; ValueError if unknown."""
    if account in NORMAL_DEBIT:
        return 1
    if account in NORMAL_CREDIT:
        return -1
    raise ValueError(f"unknown logical account {account!r}")
