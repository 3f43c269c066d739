"""Intercompany pairs: a sale invoiced by one entity and contracted by another.

The contracting entity owns the obligation: revenue, the contract position and the reductions of
revenue; the invoicing entity keeps the customer side: receivable, cash and tax (it issued the
tax invoice). Every posting of the invoicing entity on a contracting-side account moves to the
contracting entity, in a journal of its own (``journal_group`` + ``|ic|`` + entity), against
``IntercompanyReceivable``; the invoicing entity books ``IntercompanyPayable`` in its place. Both
legs keep the posting's amount, rate and measure date, so each entity's journal balances and the
receivable equals the payable.
"""

from __future__ import annotations

import pandas as pd

# Accounts of the contracting entity's side of an intercompany sale: the contract position, its
# revenue and the reductions of it. AR, cash and tax stay with the invoicing entity.
INTERCOMPANY_MOVED_ACCOUNTS = (
    "DeferredRevenue", "UnbilledAccountsReceivable", "ContractAsset", "RefundLiability",
    "Revenue", "CreditNotes", "Refunds", "Voids", "BadDebt", "CreditLossExpense", "Recoverables",
)


def post_intercompany_pairs(postings: pd.DataFrame) -> pd.DataFrame:
    """Postings with every cross-entity sale split into a balanced pair of entity journals.

    ``postings`` carries ``revenue_entity``: the contracting entity that owns the obligation.
    The moved legs keep their measure (a position account stays layered in the contracting
    entity); the intercompany legs are spot lines at the moved posting's rate date.
    """
    if "revenue_entity" not in postings.columns or len(postings) == 0:
        return postings
    owner = postings["revenue_entity"]
    moved = (owner.notna() & (owner != postings["legal_entity"])
             & postings["account"].isin(INTERCOMPANY_MOVED_ACCOUNTS)).to_numpy()
    if not moved.any():
        return postings
    source = postings[moved]
    contracting = source.assign(
        legal_entity=source["revenue_entity"],
        journal_group=source["journal_group"] + "|ic|" + source["revenue_entity"].astype(str),
        is_cash=False,
    )
    receivable = contracting.assign(account="IntercompanyReceivable",
                                    amount=-contracting["amount"], order=7, measure="spot",
                                    layer=None)
    payable = source.assign(account="IntercompanyPayable", order=7, measure="spot", layer=None)
    # the contracting entity's journal is revenue recognition only if the source was
    contracting = contracting.assign(
        measure=contracting["measure"].where(contracting["measure"] != "balance", "spot"))
    return pd.concat([postings[~moved], payable, contracting, receivable], ignore_index=True)
