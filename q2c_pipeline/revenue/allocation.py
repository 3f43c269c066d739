"""Performance obligations from contract lines, and the allocation of the transaction price.

ASC 606-10-32-28..41 / IFRS 15.73-86: the transaction price is spread over the obligations by
relative standalone selling price (``q2c_pipeline.revenue.ssp``); a discount that belongs entirely
to an ``allocation_group`` is allocated to that group only (32-37, IFRS 15.82), otherwise to all
obligations in proportion (32-36). Variable (usage) consideration is allocated to the usage line
itself (32-40) and stays out of the fixed price.

Each contract line is a *component*: an original line of version 1 (its own obligation), a delta
of an amendment (it revises the obligation of its root line), or a product an amendment added
(an obligation of its own from that version). How a delta or added product is accounted for is
its ``modification_treatment`` (ASC 606-10-25-12/13; default ``prospective``):

- ``separate_contract`` (25-12): the version's separate lines form a revenue contract of their own
  (``<contract_id>|v<version>``), priced at their stated amounts and allocated among themselves;
- ``prospective`` (25-13(a)) and ``catch_up`` (25-13(b)) are applied by
  ``q2c_pipeline.revenue.modifications`` at the version's accounting date.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from q2c_pipeline.core.fx import RateBook
from q2c_pipeline.core.money import minor_exponent
from q2c_pipeline.core.rounding import distribute_by_weight
from q2c_pipeline.revenue.ssp import standalone_selling_prices

MODIFICATION_TREATMENTS = ("prospective", "catch_up", "separate_contract")

ALLOCATION_COLUMNS = [
    "contract_id", "contract_line_id", "ssp_amount", "transaction_price", "allocated_amount",
    "currency", "legal_entity", "schedule_version", "revenue_contract_id", "ssp_source",
    "inception_allocated_amount",
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


def contract_headers(contracts: pd.DataFrame) -> pd.DataFrame:
    """Latest known version per contract, with the first version's number, signing date and
    price (the price the inception allocation spreads)."""
    ordered = contracts.sort_values(["contract_id", "version"], kind="mergesort")
    latest = ordered.drop_duplicates("contract_id", keep="last").copy()
    earliest = ordered.drop_duplicates("contract_id", keep="first").set_index("contract_id")
    latest["first_signed_date"] = latest["contract_id"].map(earliest["signed_date"])
    latest["first_version"] = latest["contract_id"].map(earliest["version"]).astype("int64")
    latest["first_transaction_price"] = latest["contract_id"].map(earliest["transaction_price"])
    latest["version"] = latest["version"].astype("int64")
    latest["correlation_id"] = latest["correlation_id"].where(
        latest["correlation_id"].notna(), latest["contract_id"])
    return latest.reset_index(drop=True)


def build_components(contract_lines: pd.DataFrame, headers: pd.DataFrame,
                     products: pd.DataFrame, rates: RateBook) -> pd.DataFrame:
    """One row per contract line with its obligation, window, pattern, SSP and version dates.

    ``contract_lines`` comes from ``q2c_pipeline.revenue.inputs.prepare_inputs`` (each line's
    ``version``, ``version_effective`` and ``version_accounting``). A delta takes its root's
    product, pattern and group; its window starts at the version's effective date and ends at
    its own end (an extension) or the root's. An added product runs from its own start (else the
    effective date) to its own end.
    """
    lines = contract_lines.copy()
    if "modification_treatment" not in lines.columns:
        lines["modification_treatment"] = None
    head = headers.set_index("contract_id")
    missing = sorted(set(lines["contract_id"]) - set(head.index))
    if missing:
        raise ValueError(f"contract_lines: contract_id {missing[0]!r} has no contract header")
    first_version = lines["contract_id"].map(head["first_version"])
    is_delta = lines["revises_line_id"].notna()
    is_added = ~is_delta & (lines["version"] > first_version)
    amended = is_delta | is_added
    chosen = lines["modification_treatment"].where(
        lines["modification_treatment"].notna(), "prospective").astype(str).str.strip()
    unknown = amended & ~chosen.isin(MODIFICATION_TREATMENTS)
    if unknown.any():
        bad = lines.loc[unknown, "contract_line_id"].iloc[0]
        raise ValueError(
            f"contract_lines: modification_treatment {chosen[unknown].iloc[0]!r} of {bad!r} is not "
            f"one of {', '.join(MODIFICATION_TREATMENTS)}")
    lines["treatment"] = chosen.where(amended, "original")
    lines["treatment_source"] = np.where(
        amended, np.where(lines["modification_treatment"].notna(), "stated", "default"), "")
    separate = lines["treatment"] == "separate_contract"
    lines["root_line_id"] = resolve_root_lines(lines)
    lines["obligation_id"] = lines["root_line_id"].where(is_delta & ~separate,
                                                         lines["contract_line_id"])
    lines["revenue_contract_id"] = lines["contract_id"].where(
        ~separate, lines["contract_id"] + "|v" + lines["version"].astype(str))
    lines["is_delta"] = is_delta
    lines["is_added"] = is_added

    root = lines.set_index("contract_line_id")
    own_start = pd.to_datetime(lines["service_start"])
    own_end = pd.to_datetime(lines["service_end"])
    effective = pd.to_datetime(lines["version_effective"])
    for column in ("product_code", "revenue_pattern", "allocation_group"):
        inherited = lines["root_line_id"].map(root[column])
        lines[column] = lines[column].where(~is_delta | lines[column].notna(), inherited)
        if column == "allocation_group":
            lines[column] = lines[column].where(~is_delta, inherited)
    root_start = pd.to_datetime(lines["root_line_id"].map(root["service_start"]))
    root_end = pd.to_datetime(lines["root_line_id"].map(root["service_end"]))
    delta_start = effective.where(effective.notna() & (effective > root_start), root_start)
    start = own_start.where(~is_delta, delta_start)
    start = start.where(~(separate & is_delta) | own_start.isna(), own_start)
    start = start.where(~is_added | own_start.notna(), effective)
    end = own_end.where(~is_delta | own_end.notna(), root_end)
    lines["service_start"], lines["service_end"] = start, end
    lines["allocation_group"] = lines["allocation_group"].where(~separate & ~is_added, None)

    pattern_of_product = products.set_index("product_code")["revenue_pattern"] if len(
        products) else pd.Series(dtype=object)
    pattern = lines["revenue_pattern"]
    pattern = pattern.where(pattern.notna(), lines["product_code"].map(pattern_of_product))
    has_period = lines["service_start"].notna() & lines["service_end"].notna()
    default = pd.Series("point_in_time", index=lines.index).where(~has_period, "ratable")
    lines["revenue_pattern"] = pattern.where(pattern.notna(), default)

    for column in ("legal_entity", "currency", "customer_id", "correlation_id",
                   "first_signed_date"):
        lines[column] = lines["contract_id"].map(head[column])
    lines["transaction_price"] = lines["contract_id"].map(head["first_transaction_price"])
    lines["signed_date"] = pd.to_datetime(
        lines["first_signed_date"].where(~amended, lines["version_accounting"]))
    lines["amount"] = lines["amount"].astype("int64")
    prices = standalone_selling_prices(lines, products, rates)
    lines["ssp"], lines["ssp_source"] = prices["ssp"], prices["ssp_source"]
    return lines.reset_index(drop=True)


def allocate_at_inception(components: pd.DataFrame, allocation_rounding: str) -> pd.Series:
    """The allocated amount of each original line and separate-contract line (others 0).

    Pools: version 1's fixed lines per contract, priced at its first ``transaction_price`` else
    the sum of their stated amounts (with an ``allocation_group``, lines outside it get exactly
    their SSP and the group shares the rest); each separate contract's lines, priced at their
    stated amounts. Largest remainder so the parts sum exactly to the price; ``whole_unit``
    rounds to whole major units first.
    """
    comp = components
    variable = comp["revenue_pattern"] == "usage"
    pooled = ((comp["treatment"] == "original") | (comp["treatment"] == "separate_contract")) \
        & ~variable
    fixed = comp[pooled]
    if len(fixed) == 0:
        return pd.Series(0, index=comp.index, dtype="int64")
    rc = fixed["revenue_contract_id"]
    summed = fixed.groupby(rc)["amount"].sum()
    is_original = fixed["treatment"] == "original"
    stated = fixed[is_original].groupby(rc[is_original])["transaction_price"].first()
    price = summed.astype("Int64")
    known = stated.reindex(price.index)
    price = known.where(known.notna(), price).astype("int64")
    grouped = fixed["allocation_group"].notna()
    has_group = grouped.groupby(rc).transform("any").astype(bool)
    outside = has_group & ~grouped
    outside_ssp = fixed["ssp"].where(outside, 0).groupby(rc).transform("sum")
    pool_id = rc.where(~has_group, rc + "|group")
    pool_id = pool_id.where(~outside, "own|" + fixed["contract_line_id"])
    pool = rc.map(price) - outside_ssp.where(has_group, 0)
    pool = pool.where(~outside, fixed["ssp"])
    if allocation_rounding == "whole_unit":
        unit = fixed["currency"].map(lambda c: 10 ** minor_exponent(c))
    else:
        unit = pd.Series(1, index=fixed.index)
    allocated = distribute_by_weight(pool_id, pool.astype("int64"), fixed["ssp"],
                                     unit.astype("int64"), fixed["contract_line_id"])
    return allocated.reindex(comp.index).fillna(0).astype("int64")


def summarize_allocation(components: pd.DataFrame, totals: pd.Series) -> pd.DataFrame:
    """One row per obligation: its SSP, its allocation at inception and now (``totals``:
    obligation id -> allocated amount after every modification, what its schedule plus its
    deferred reductions sum to), and the revenue contract's transaction price (the sum of its
    obligations' allocations)."""
    comp = components[components["revenue_pattern"] != "usage"]
    if len(comp) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ALLOCATION_COLUMNS})
    own = comp[comp["obligation_id"] == comp["contract_line_id"]]
    grouped = own.groupby("obligation_id", sort=True)
    out = grouped.agg(
        contract_id=("contract_id", "first"), ssp_amount=("ssp", "first"),
        currency=("currency", "first"), legal_entity=("legal_entity", "first"),
        revenue_contract_id=("revenue_contract_id", "first"),
        ssp_source=("ssp_source", "first"),
        inception_allocated_amount=("inception_allocated", "first"),
    ).reset_index().rename(columns={"obligation_id": "contract_line_id"})
    version = comp.groupby("obligation_id")["version"].max()
    out["schedule_version"] = out["contract_line_id"].map(version).astype("int64")
    out["allocated_amount"] = out["contract_line_id"].map(totals).fillna(
        out["inception_allocated_amount"]).astype("int64")
    out["transaction_price"] = out.groupby("revenue_contract_id")["allocated_amount"].transform(
        "sum").astype("int64")
    for column in ("ssp_amount", "inception_allocated_amount"):
        out[column] = out[column].astype("int64")
    out = out.sort_values(["contract_id", "contract_line_id"], kind="mergesort")
    return out[ALLOCATION_COLUMNS].reset_index(drop=True)
