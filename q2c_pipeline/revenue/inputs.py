"""The engine's view of the canonical tables as of a day: complete columns, parsed timestamps,
and only what was known by then.

A contract version is known from the later of its ``signed_date`` and ``effective_date`` (its
accounting date): a close as of an earlier day does not see it, nor the lines it introduced.
Every other event (invoice, credit note, payment, refund, status change, usage) is known from its
own date; a credit note voided after the day is not yet void.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import numpy as np
import pandas as pd

from q2c_pipeline.schemas import CANONICAL_TABLES, timestamp_columns

_EVENT_DATES = {
    "invoices": "finalized_at", "credit_notes": "issued_at", "payments": "paid_at",
    "refunds": "refunded_at", "invoice_events": "occurred_at", "usage": "occurred_at",
}


# Instants that date an accounting event: they are read as the entity's local time (its
# legal_entities.timezone; UTC when empty). Service periods and contract dates are dates already.
_LOCAL_INSTANTS = {
    "invoices": ("finalized_at", "due_date"), "credit_notes": ("issued_at", "voided_at"),
    "payments": ("paid_at",), "refunds": ("refunded_at",), "invoice_events": ("occurred_at",),
    "usage": ("occurred_at",),
}


def localize_instants(t: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Event instants (naive UTC in the canonical model) as the wall-clock time of the entity
    they book in, so every date, month and cut-off after this is the entity's local one: an
    invoice finalized at 02:00 UTC on 1 February is a 31 January invoice of a Los Angeles
    entity. The entity is the invoice's (else its customer's) for billing and settlements, the
    customer's for usage. DECISIONLOG.md "Accounting dates are the entity's local dates"."""
    entities = t["legal_entities"]
    if "timezone" not in entities.columns:
        return t
    zones = {str(e): str(z) for e, z in zip(entities["legal_entity"], entities["timezone"],
                                             strict=True)
             if isinstance(z, str) and z.strip() and z.strip() not in ("UTC", "Etc/UTC")}
    if not zones:
        return t
    of_customer = t["customers"].drop_duplicates("customer_id").set_index(
        "customer_id")["legal_entity"]
    invoices = t["invoices"]
    of_invoice = invoices.drop_duplicates("invoice_id").set_index("invoice_id")["legal_entity"]
    of_invoice = of_invoice.where(of_invoice.notna(), invoices.drop_duplicates(
        "invoice_id").set_index("invoice_id")["customer_id"].map(of_customer))
    for name, columns in _LOCAL_INSTANTS.items():
        frame = t[name]
        if not len(frame):
            continue
        if name == "invoices":
            entity = frame["legal_entity"].where(frame["legal_entity"].notna(),
                                                 frame["customer_id"].map(of_customer))
        elif name == "usage":
            entity = frame["customer_id"].map(of_customer)
        else:
            entity = frame["invoice_id"].map(of_invoice)
            if "customer_id" in frame.columns:
                entity = entity.where(entity.notna(), frame["customer_id"].map(of_customer))
        for code, zone in sorted(zones.items()):
            rows = (entity == code).to_numpy()
            if not rows.any():
                continue
            for column in columns:
                values = pd.to_datetime(frame.loc[rows, column])
                frame.loc[rows, column] = values.dt.tz_localize("UTC").dt.tz_convert(
                    zone).dt.tz_localize(None)
    return t


def cutoff_of(as_of: date) -> pd.Timestamp:
    """The first instant after ``as_of`` (everything dated before it is known)."""
    return pd.Timestamp(as_of) + pd.Timedelta(days=1)


def complete_tables(tables: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Every canonical table, with every column of its model (absent ones null) and timestamps
    parsed; tables that are absent come out empty."""
    out: dict[str, pd.DataFrame] = {}
    for name, (model, _keys) in CANONICAL_TABLES.items():
        columns = list(model.to_schema().columns)
        frame = tables.get(name)
        frame = pd.DataFrame(columns=columns) if frame is None else frame.copy()
        for column in columns:
            if column not in frame.columns:
                frame[column] = pd.NA
        for column in timestamp_columns(name):
            frame[column] = pd.to_datetime(frame[column])
        out[name] = frame.reset_index(drop=True)
    return out


def contract_versions(contracts: pd.DataFrame) -> pd.DataFrame:
    """One row per contract version with its dates: ``effective_date`` (default the signing
    date) and ``accounting_date`` = the later of the two, when the version becomes known."""
    versions = contracts.copy()
    versions["version"] = pd.to_numeric(versions["version"]).fillna(1).astype("int64")
    versions["effective_date"] = versions["effective_date"].where(
        versions["effective_date"].notna(), versions["signed_date"])
    versions["accounting_date"] = versions[["signed_date", "effective_date"]].max(axis=1)
    return versions.sort_values(["contract_id", "version"], kind="mergesort").reset_index(
        drop=True)


def assign_line_versions(lines: pd.DataFrame, versions: pd.DataFrame) -> pd.DataFrame:
    """Each contract line's version (the one that introduced it).

    A stated ``version`` wins. Otherwise a line without ``effective_date`` and without
    ``revises_line_id`` belongs to its contract's first version; an amendment line (a delta, or a
    product added by an amendment, i.e. any line with an ``effective_date``) belongs to the lowest
    version >= 2 whose effective date is that day, else to the latest version >= 2 effective on
    or before it. An amendment line no version explains gets a version of its own, signed and
    effective on its effective date (``version_source = derived``), so a delta never vanishes.
    """
    out = lines.copy()
    root_contract = out.set_index("contract_line_id")["contract_id"]
    out["contract_id"] = out["contract_id"].where(
        out["contract_id"].notna(), out["revises_line_id"].map(root_contract))
    stated = pd.to_numeric(out["version"], errors="coerce")
    first = versions.groupby("contract_id")["version"].min()
    amendment = out["revises_line_id"].notna() | out["effective_date"].notna()
    version = pd.Series(np.nan, index=out.index, dtype="float64")
    version[~amendment] = out.loc[~amendment, "contract_id"].map(first).astype("float64")
    later = versions[versions["version"] >= 2][["contract_id", "version", "effective_date"]]
    rows = out[amendment & stated.isna()]
    if len(rows) and len(later):
        pairs = pd.DataFrame({"row": rows.index, "contract_id": rows["contract_id"].to_numpy(),
                              "day": pd.to_datetime(rows["effective_date"]).dt.normalize()
                              .to_numpy()}).merge(later, on="contract_id", how="inner")
        pairs["on_day"] = pairs["effective_date"].dt.normalize() == pairs["day"]
        pairs["before"] = pairs["effective_date"].dt.normalize() <= pairs["day"]
        exact = pairs[pairs["on_day"]].sort_values(["row", "version"]).drop_duplicates("row")
        version[exact["row"].to_numpy()] = exact["version"].to_numpy(dtype="float64")
        rest = pairs[pairs["before"] & ~pairs["row"].isin(exact["row"])]
        rest = rest.sort_values(["row", "version"]).drop_duplicates("row", keep="last")
        version[rest["row"].to_numpy()] = rest["version"].to_numpy(dtype="float64")
    version = version.where(stated.isna(), stated)
    out["version_source"] = np.where(stated.notna(), "stated",
                                     np.where(version.notna(), "matched", "derived"))
    out["version"] = version
    return out


def _synthesize_versions(lines: pd.DataFrame,
                         versions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A version for every amendment line no contract version explains (see above): one per
    contract and effective day, numbered after the contract's last version."""
    orphan = lines["version"].isna()
    if not orphan.any():
        return versions, lines
    top = versions.groupby("contract_id")["version"].max()
    day = pd.to_datetime(lines["effective_date"]).dt.normalize()
    days = pd.DataFrame({"contract_id": lines.loc[orphan, "contract_id"],
                         "day": day[orphan]}).drop_duplicates().sort_values(["contract_id", "day"])
    days["version"] = (days["contract_id"].map(top).fillna(0).astype("int64")
                       + days.groupby("contract_id").cumcount() + 1)
    heads = versions.drop_duplicates("contract_id", keep="last").set_index("contract_id")
    made = heads.reindex(days["contract_id"]).reset_index()
    made["version"] = days["version"].to_numpy()
    for column in ("signed_date", "effective_date", "accounting_date"):
        made[column] = days["day"].to_numpy()
    number = days.set_index(["contract_id", "day"])["version"]
    lines = lines.copy()
    lines.loc[orphan, "version"] = number.reindex(pd.MultiIndex.from_arrays(
        [lines.loc[orphan, "contract_id"], day[orphan]])).to_numpy(dtype="float64")
    versions = pd.concat([versions, made[versions.columns]], ignore_index=True).sort_values(
        ["contract_id", "version"], kind="mergesort").reset_index(drop=True)
    return versions, lines


def prepare_inputs(tables: Mapping[str, pd.DataFrame], as_of: date) -> dict[str, pd.DataFrame]:
    """The canonical tables as known at the end of ``as_of`` (see the module docstring).

    ``contracts`` keeps one row per known version with ``effective_date`` and
    ``accounting_date``; ``contract_lines`` carries each line's ``version`` and the dates of that
    version (``version_effective``, ``version_accounting``).
    """
    t = localize_instants(complete_tables(tables))
    cutoff = cutoff_of(as_of)
    versions = contract_versions(t["contracts"])
    lines = assign_line_versions(t["contract_lines"], versions)
    versions, lines = _synthesize_versions(lines, versions)
    known = versions[versions["accounting_date"] < cutoff]
    t["contracts"] = known.reset_index(drop=True)
    if len(lines):
        key = known.set_index(["contract_id", "version"])
        index = pd.MultiIndex.from_arrays([lines["contract_id"],
                                           lines["version"].astype("int64")])
        lines["version"] = lines["version"].astype("int64")
        # an amendment line takes effect on its own effective date (else its version's); it is
        # accounted for at the later of that day and the version's signing (never before it is
        # known)
        version_effective = pd.to_datetime(key["effective_date"].reindex(index).to_numpy())
        signed = pd.to_datetime(key["signed_date"].reindex(index).to_numpy())
        own = pd.to_datetime(lines["effective_date"]).to_numpy()
        amendment = (lines["revises_line_id"].notna() | lines["effective_date"].notna()).to_numpy()
        effective = np.where(amendment & ~pd.isna(own), own, version_effective)
        lines["version_effective"] = pd.to_datetime(effective)
        lines["version_accounting"] = pd.to_datetime(np.where(
            pd.isna(signed), pd.NaT, np.maximum(signed.to_numpy(), lines[
                "version_effective"].to_numpy())))
        lines = lines[lines["version_accounting"].notna()]
        lines = lines[lines["version_accounting"] < cutoff]
    t["contract_lines"] = lines.reset_index(drop=True)
    for name, column in _EVENT_DATES.items():
        frame = t[name]
        t[name] = frame[frame[column] < cutoff].reset_index(drop=True)
    notes = t["credit_notes"]
    notes["voided_at"] = notes["voided_at"].where(notes["voided_at"] < cutoff, pd.NaT)
    return t
