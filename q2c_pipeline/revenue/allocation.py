"""Performance obligations from contract lines and allocation of the transaction price.

ASC 606-10-32-28..41 / IFRS 15.73-86: the transaction price is spread over the obligations by
relative standalone selling price; a discount that belongs entirely to an ``allocation_group`` is
allocated to that group only (ASC 606-10-32-37, IFRS 15.82). Variable (usage) consideration is
allocated to the usage line itself (ASC 606-10-32-40) and stays out of the fixed price.
"""

from __future__ import annotations

import pandas as pd

from q2c_pipeline.core.money import minor_exponent
from q2c_pipeline.core.rounding import distribute_by_weight

MODIFICATION_TREATMENTS = ("prospective", "catch_up", "separate_contract")

ALLOCATION_COLUMNS = [
    "contract_id", "contract_line_id", "ssp_amount", "transaction_price", "allocated_amount",
    "currency", "legal_entity", "schedule_version",
]


def resolve_root_lines(contract_lines: pd.DataFrame) -> pd.Series:
    """The original line each line belongs to (follows ``revises_line_id`` chains to the root)."""
    ids = contract_lines["contract_line_id"].astype(str)
    parent = contract_lines["revises_line_id"].where(
        contract_lines["revises_line_id"].notna(), ids
    ).astype(str)
    step = dict(zip(ids, parent, strict=True))
    root = parent.copy()
    for _ in range(len(step) + 1):
        nxt = root.map(lambda value: step.get(value, value))
        if nxt.equals(root):
            return root
        root = nxt
    raise ValueError("contract_lines: revises_line_id forms a cycle")


def build_components(
    contract_lines: pd.DataFrame, headers: pd.DataFrame, products: pd.DataFrame
) -> pd.DataFrame:
    """One row per contract line (original or amendment delta), tied to its obligation.

    ``headers`` is one row per contract (latest version) with ``first_signed_date``. An amendment
    delta's ``modification_treatment`` (optional column, default ``prospective``) says how it is
    accounted for:

    - ``prospective`` (ASC 606-10-25-13(a)): it keeps the root line's contract, pattern and end,
      runs from ``effective_date`` (never before the root's start) and adds its amount to the
      root's obligation;
    - ``catch_up`` (ASC 606-10-25-13(b)): the same, but spread over the root's whole term, the
      part for time already elapsed recognized in the month it becomes effective
      (``recognize_from``);
    - ``separate_contract`` (ASC 606-10-25-12): its own obligation (its own id), priced at its
      own amount, from ``effective_date`` (or its own start) to its own end (or the root's).
    """
    lines = contract_lines.copy()
    if "modification_treatment" not in lines.columns:
        lines["modification_treatment"] = None
    is_delta = lines["revises_line_id"].notna()
    chosen = lines["modification_treatment"].where(
        lines["modification_treatment"].notna(), "prospective").astype(str).str.strip()
    unknown = is_delta & ~chosen.isin(MODIFICATION_TREATMENTS)
    if unknown.any():
        bad = lines.loc[unknown, "contract_line_id"].iloc[0]
        raise ValueError(
            f"contract_lines: modification_treatment {chosen[unknown].iloc[0]!r} of {bad!r} is not "
            f"one of {', '.join(MODIFICATION_TREATMENTS)}")
    lines["treatment"] = chosen.where(is_delta, "original")
    separate = lines["treatment"] == "separate_contract"
    lines["obligation_id"] = resolve_root_lines(lines).where(~separate, lines["contract_line_id"])
    root = lines.set_index("contract_line_id")
    root_of = resolve_root_lines(lines)
    own_start = pd.to_datetime(contract_lines["service_start"])
    own_pattern = contract_lines["revenue_pattern"]
    for column in ("contract_id", "service_start", "service_end", "revenue_pattern",
                   "product_code", "allocation_group"):
        root_values = root_of.map(root[column])
        lines[column] = lines[column].where(~is_delta, root_values)
    effective = pd.to_datetime(lines["effective_date"])
    root_end = root_of.map(root["service_end"])
    own_end = pd.to_datetime(contract_lines["service_end"])
    lines["service_end"] = pd.to_datetime(
        root_end.where(~is_delta, own_end.where(own_end.notna(), root_end))
    )
    start = pd.to_datetime(lines["service_start"])
    delta_start = effective.where(effective.notna() & (effective > start), start)
    lines["service_start"] = start.where(~is_delta | (lines["treatment"] == "catch_up"),
                                         delta_start)
    separate_start = own_start.where(own_start.notna(), effective)
    lines["service_start"] = lines["service_start"].where(~separate, separate_start)
    lines["revenue_pattern"] = lines["revenue_pattern"].where(
        ~separate | own_pattern.isna(), own_pattern)
    lines["allocation_group"] = lines["allocation_group"].where(~separate, None)
    catch_up = lines["treatment"] == "catch_up"
    lines["recognize_from"] = pd.to_datetime(delta_start.where(catch_up, pd.NaT))
    lines["is_delta"] = is_delta

    pattern_of_product = products.set_index("product_code")["revenue_pattern"] if len(
        products) else pd.Series(dtype=object)
    pattern = lines["revenue_pattern"]
    pattern = pattern.where(pattern.notna(), lines["product_code"].map(pattern_of_product))
    has_period = lines["service_start"].notna() & lines["service_end"].notna()
    default = pd.Series("point_in_time", index=lines.index).where(~has_period, "ratable")
    lines["revenue_pattern"] = pattern.where(pattern.notna(), default)

    head = headers.set_index("contract_id")
    missing = sorted(set(lines["contract_id"]) - set(head.index))
    if missing:
        raise ValueError(f"contract_lines: contract_id {missing[0]!r} has no contract header")
    for column in ("legal_entity", "currency", "customer_id", "correlation_id", "version",
                   "signed_date", "first_signed_date", "transaction_price"):
        lines[column] = lines["contract_id"].map(head[column])
    if "first_transaction_price" in head.columns:
        lines["transaction_price"] = lines["contract_id"].map(head["first_transaction_price"])
    if "first_version" in head.columns:
        # an original line belongs to the first version; a delta to the version that signed it
        version = lines["contract_id"].map(head["first_version"])
        signed = lines["first_signed_date"]
        if "amendment_version" in lines.columns:
            version = lines["amendment_version"].where(is_delta, version)
            signed = lines["amendment_signed"].where(is_delta, signed)
        lines["version"] = version.astype("int64")
        lines["signed_date"] = pd.to_datetime(signed)
    lines["ssp"] = lines["ssp_amount"].where(lines["ssp_amount"].notna(), lines["amount"])
    lines["ssp"] = lines["ssp"].astype("int64")
    lines["amount"] = lines["amount"].astype("int64")
    return lines


def allocate_transaction_price(components: pd.DataFrame, allocation_rounding: str) -> pd.DataFrame:
    """Adds ``allocated`` and ``contract_price`` to each component.

    The price is the first version's ``transaction_price`` else the sum of the original fixed
    lines' amounts. Without a group, one pool per contract shared by relative SSP. With an
    ``allocation_group``, lines outside it get exactly their SSP and the group shares the rest.
    Largest-remainder rounding makes the parts sum exactly to the price; ``whole_unit`` rounds to
    whole major units first. An amendment delta is never re-pooled: it brings exactly its own
    amount (added consideration) to its obligation, so an amendment cannot change the allocation
    of an earlier version; its ``contract_price`` is the contract's price plus every such delta
    (a ``separate_contract`` delta is its own contract: its price is its amount).
    """
    comp = components.copy()
    variable = comp["revenue_pattern"] == "usage"
    delta = comp["is_delta"].astype(bool)
    separate = comp["treatment"] == "separate_contract"
    fixed = comp[~variable & ~delta]
    summed = fixed.groupby("contract_id")["amount"].sum()
    stated = comp.groupby("contract_id")["transaction_price"].first()
    price = stated.astype("Float64").where(stated.notna(), summed.reindex(stated.index))
    price = price.fillna(0).astype("int64")
    added = comp["amount"].where(delta & ~variable & ~separate, 0).groupby(
        comp["contract_id"]).sum()
    comp["contract_price"] = (comp["contract_id"].map(price) + comp["contract_id"].map(added))
    comp["contract_price"] = comp["contract_price"].where(~separate, comp["amount"])
    comp["contract_price"] = comp["contract_price"].astype("int64")
    grouped = fixed["allocation_group"].notna()
    has_group = fixed.groupby("contract_id")["allocation_group"].transform(
        lambda s: s.notna().any()
    ).astype(bool) if len(fixed) else pd.Series(dtype=bool)
    outside = has_group & ~grouped
    outside_ssp = fixed["ssp"].where(outside, 0).groupby(fixed["contract_id"]).transform("sum")
    pool_id = fixed["contract_id"].where(~has_group, fixed["contract_id"] + "|group")
    pool_id = pool_id.where(~outside, "own|" + fixed["contract_line_id"])
    pool = fixed["contract_id"].map(price) - outside_ssp.where(has_group, 0)
    pool = pool.where(~outside, fixed["ssp"])
    if allocation_rounding == "whole_unit":
        unit = fixed["currency"].map(lambda c: 10 ** minor_exponent(c))
    else:
        unit = pd.Series(1, index=fixed.index)
    allocated = distribute_by_weight(
        pool_id, pool.astype("int64"), fixed["ssp"], unit.astype("int64"),
        fixed["contract_line_id"],
    )
    comp["allocated"] = allocated.reindex(comp.index).fillna(0).astype("int64")
    comp["allocated"] = comp["allocated"].where(~delta | variable, comp["amount"])
    return comp


def summarize_allocation(components: pd.DataFrame) -> pd.DataFrame:
    """One row per obligation (root contract line): SSP, price and allocated amount."""
    if len(components) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ALLOCATION_COLUMNS})
    grouped = components.groupby("obligation_id", sort=True)
    out = grouped.agg(
        contract_id=("contract_id", "first"), ssp_amount=("ssp", "sum"),
        transaction_price=("contract_price", "first"), allocated_amount=("allocated", "sum"),
        currency=("currency", "first"), legal_entity=("legal_entity", "first"),
        schedule_version=("version", "max"),
    ).reset_index().rename(columns={"obligation_id": "contract_line_id"})
    for column in ("ssp_amount", "transaction_price", "allocated_amount", "schedule_version"):
        out[column] = out[column].astype("int64")
    out = out.sort_values(["contract_id", "contract_line_id"], kind="mergesort")
    return out[ALLOCATION_COLUMNS].reset_index(drop=True)
