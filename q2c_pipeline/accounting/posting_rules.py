"""Posting rules as data: where each logical account posts in each entity's general ledger.

The ledger engine books logical accounts (``Revenue``, ``DeferredRevenue``, ...; canonical model).
The ERP needs GL account numbers and dimensions. The rules are rows, one per (legal entity,
logical account), read from the canonical ``chart_of_accounts`` frame (ERP reference data):
``gl_account``, ``gl_name``, ``department`` and, when the chart carries one, ``class`` (NetSuite's
classification segment; absent from the canonical chart, so null unless supplied). Changing where
an account posts is a data change to the chart, never a code change. ``RULE_VERSION`` names the
way rules are applied, so a change in it is visible wherever posted output records it.
"""

from __future__ import annotations

import pandas as pd

RULE_VERSION = "q2c-posting-rules-1"
RULE_COLUMNS = ["legal_entity", "account", "gl_account", "gl_name", "department", "class"]
GL_COLUMNS = ["gl_account", "gl_name", "department", "class"]


class UnmappedAccountError(ValueError):
    """Journal lines post to (entity, logical account) pairs the chart of accounts lacks."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs
        listed = ", ".join(f"{entity}/{account}" for entity, account in pairs)
        super().__init__(f"no chart_of_accounts mapping for {len(pairs)} entity/account "
                         f"pair(s): {listed}")


def build_posting_rules(chart_of_accounts: pd.DataFrame) -> pd.DataFrame:
    """One rule per (legal_entity, account), sorted; ValueError on a duplicated pair."""
    chart = chart_of_accounts.copy()
    for column in ("gl_name", "department", "class"):
        if column not in chart.columns:
            chart[column] = None
    duplicated = chart[chart.duplicated(["legal_entity", "account"], keep=False)]
    if len(duplicated):
        pairs = sorted(set(zip(duplicated["legal_entity"], duplicated["account"], strict=True)))
        raise ValueError("chart_of_accounts maps these entity/account pairs more than once: "
                         + ", ".join(f"{e}/{a}" for e, a in pairs))
    rules = chart[RULE_COLUMNS].astype(object).where(chart[RULE_COLUMNS].notna(), None)
    rules["gl_account"] = rules["gl_account"].astype(str)
    return rules.sort_values(["legal_entity", "account"], kind="mergesort").reset_index(drop=True)


def apply_posting_rules(
    journal_lines: pd.DataFrame, chart_of_accounts: pd.DataFrame
) -> pd.DataFrame:
    """``journal_lines`` with ``gl_account``, ``gl_name``, ``department`` and ``class`` added,
    row order and index kept. Raises ``UnmappedAccountError`` listing every (entity, account)
    pair that has no rule, so one run shows the whole list to fix.
    """
    rules = build_posting_rules(chart_of_accounts)
    base = journal_lines.drop(columns=[c for c in GL_COLUMNS if c in journal_lines.columns])
    merged = base.merge(rules, on=["legal_entity", "account"], how="left", validate="many_to_one")
    merged.index = journal_lines.index
    unmapped = merged["gl_account"].isna()
    if unmapped.any():
        pairs = sorted(set(zip(merged.loc[unmapped, "legal_entity"].astype(str),
                               merged.loc[unmapped, "account"].astype(str), strict=True)))
        raise UnmappedAccountError(pairs)
    return merged
