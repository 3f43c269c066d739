"""The revenue and ledger engine: canonical frames in, allocation, schedule, journals, balances and
contract positions out.

Pure: no I/O, no clock. Everything known after ``as_of`` is ignored, so the result as of any date
is reproducible from the same input. The engine composes the two layers that never import each
other: ``q2c_pipeline.revenue`` states the facts (revenue contracts, their allocation, schedules,
billing activity classified by the treatment table, contract-position movements) and
``q2c_pipeline.accounting`` posts them (posting rules, intercompany pairs, functional-currency
measurement, journal keys, customer-credit presentation, month-end remeasurement, balances).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from q2c_pipeline.accounting.balances import build_account_balances
from q2c_pipeline.accounting.intercompany import post_intercompany_pairs
from q2c_pipeline.accounting.journals import build_journal_lines, sort_journal_lines
from q2c_pipeline.accounting.measurement import measure
from q2c_pipeline.accounting.postings import build_postings
from q2c_pipeline.accounting.presentation import customer_credit_reclass
from q2c_pipeline.accounting.remeasurement import build_remeasurement_postings
from q2c_pipeline.accounting.usage_summary import MAX_LINES_PER_ENTRY, SummaryMode
from q2c_pipeline.core.calendar import month_index, period_labels
from q2c_pipeline.core.fx import RateBook
from q2c_pipeline.core.policy import Policy
from q2c_pipeline.revenue.facts import RevenueFacts, recognize
from q2c_pipeline.revenue.inputs import cutoff_of, prepare_inputs
from q2c_pipeline.revenue.positions import MOVEMENT_COLUMNS
from q2c_pipeline.revenue.recognition import payment_obligations
from q2c_pipeline.revenue.treatments import TreatmentTable, load_treatments
from q2c_pipeline.schemas.validation import ValidatedTables, require_valid

SCHEDULE_COLUMNS = [
    "source_type", "source_id", "contract_id", "legal_entity", "period", "amount", "currency",
    "amount_functional", "schedule_version", "customer_id", "correlation_id", "treatment",
    "functional_currency", "revenue_contract_id", "stated_amount",
]
CONTRACT_POSITION_COLUMNS = [
    "revenue_contract_id", "legal_entity", "period", "currency", "deferred_revenue",
    "contract_asset", "unbilled_receivable", "refund_liability", "net_contract_position",
]
# A product's usage summary books at most Revenue and four position accounts.
_USAGE_LINES_PER_PRODUCT = 5


@dataclass(frozen=True)
class EngineResult:
    """The finance outputs (docs/canonical-model.md "Outputs")."""

    allocation: pd.DataFrame
    revenue_schedule: pd.DataFrame
    journal_lines: pd.DataFrame
    account_balances: pd.DataFrame
    contract_positions: pd.DataFrame


def _functional(legal_entities: pd.DataFrame, policy: Policy) -> dict[str, str]:
    mapping = dict(zip(legal_entities["legal_entity"], legal_entities["functional_currency"],
                       strict=True))
    if policy.functional_currency:
        return {entity: policy.functional_currency for entity in mapping}
    return mapping


def _settlement_currencies(legal_entities: pd.DataFrame,
                           functional: dict[str, str]) -> dict[str, set[str]]:
    """Per entity, the currencies it holds cash in (default: its functional currency)."""
    out = {entity: {currency} for entity, currency in functional.items()}
    if "settlement_currencies" in legal_entities.columns:
        for entity, codes in zip(legal_entities["legal_entity"],
                                 legal_entities["settlement_currencies"], strict=True):
            if isinstance(codes, str) and codes.strip():
                out.setdefault(entity, set()).update(codes.split())
    return out


def _owners(facts: RevenueFacts) -> pd.DataFrame:
    """Each position's entity (the contracting one), currency, customer, contract."""
    ob = facts.contract.obligations
    frames = [ob.rename(columns={"revenue_contract_id": "position_key"})[
        ["position_key", "legal_entity", "currency", "customer_id", "contract_id",
         "correlation_id"]]]
    lines = facts.invoice_lines
    frames.append(lines.assign(legal_entity=lines["revenue_entity"])[
        ["position_key", "legal_entity", "currency", "customer_id", "contract_id",
         "correlation_id"]])
    comps = facts.contract.components
    if len(comps):
        frames.append(comps.rename(columns={"revenue_contract_id": "position_key"})[
            ["position_key", "legal_entity", "currency", "customer_id", "contract_id",
             "correlation_id"]])
    return pd.concat(frames, ignore_index=True).drop_duplicates("position_key")


def _revenue_schedule(facts: RevenueFacts, journal_lines: pd.DataFrame, rates: RateBook,
                      functional: dict[str, str], as_of: date) -> pd.DataFrame:
    """One row per obligation and period: gross revenue (contra revenue is in the contra
    accounts), the stated amount (the right to bill), and the functional amount the ledger
    booked (future periods: at the as-of day's rate, an indication until recognized)."""
    rows = facts.schedule
    parts = []
    if len(rows):
        stated = rows["stated"].where(rows["stated"].notna(), rows["amount"])
        grouped = rows.assign(stated=stated.astype("int64")).groupby(
            ["source_type", "source_id", "month"], as_index=False, sort=True).agg(
            amount=("amount", "sum"), stated_amount=("stated", "sum"),
            schedule_version=("schedule_version", "max"), treatment=("treatment", "last"))
        parts.append(grouped)
    rec = facts.recognition
    extra = rec[rec["source_type"].isin(["usage", "usage_true_up", "payment"])]
    if len(extra):
        parts.append(extra.groupby(["source_type", "source_id", "month"], as_index=False,
                                   sort=True).agg(amount=("amount", "sum"),
                                                  stated_amount=("stated", "sum")).assign(
            schedule_version=1, treatment="original"))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in SCHEDULE_COLUMNS})
    out = pd.concat(parts, ignore_index=True)
    out = out[(out["amount"] != 0) | (out["stated_amount"] != 0)]
    attrs = rec.drop_duplicates(["source_type", "source_id"]).set_index(
        ["source_type", "source_id"])
    ob = facts.contract.obligations.set_index(["source_type", "source_id"])
    key = pd.MultiIndex.from_frame(out[["source_type", "source_id"]])
    for column in ("contract_id", "legal_entity", "currency", "customer_id", "correlation_id",
                   "revenue_contract_id"):
        value = key.map(attrs[column]) if column in attrs.columns else pd.Series(
            pd.NA, index=out.index)
        fallback = key.map(ob[column if column != "revenue_contract_id"
                              else "revenue_contract_id"]) if len(ob) else None
        values = pd.Series(np.asarray(value, dtype=object), index=out.index)
        if fallback is not None:
            values = values.where(values.notna(), pd.Series(np.asarray(fallback, dtype=object),
                                                            index=out.index))
        out[column] = values
    out["functional_currency"] = out["legal_entity"].map(functional)
    if out["functional_currency"].isna().any():
        bad = out.loc[out["functional_currency"].isna(), "legal_entity"].iloc[0]
        raise ValueError(f"legal_entities: no functional currency for legal entity {bad!r}")
    out["period"] = period_labels(out["month"].to_numpy())
    # functional amounts: what the ledger's recognition lines booked, else at the as-of rate
    booked = journal_lines[journal_lines["account"] == "Revenue"]
    booked = booked[booked["source_type"] == "revenue"]
    month = month_index(pd.to_datetime(booked["original_date"]).to_numpy())
    booked = booked.assign(month=month, net=booked["credit_functional"]
                           - booked["debit_functional"])
    per = booked.groupby(["source_line_id", "source_id", "month"])["net"].sum()
    index = pd.MultiIndex.from_frame(out[["source_type", "source_id", "month"]])
    from_ledger = pd.Series(index.map(per), index=out.index)
    estimate_date = np.where(out["source_type"].isin(["usage", "usage_true_up", "payment"]),
                             np.datetime64("NaT"), np.datetime64(pd.Timestamp(as_of), "ns"))
    usage_days = out["source_id"].map(rec.drop_duplicates("source_id").set_index(
        "source_id")["date"])
    rate_day = pd.to_datetime(pd.Series(estimate_date, index=out.index)).where(
        ~out["source_type"].isin(["usage", "usage_true_up", "payment"]), usage_days)
    spot = rates.convert(out["amount"].to_numpy(), out["currency"].to_numpy(),
                         out["functional_currency"].to_numpy(), rate_day.to_numpy())
    out["amount_functional"] = np.where(from_ledger.notna(), from_ledger.fillna(0), spot).astype(
        "int64")
    out["schedule_version"] = out["schedule_version"].astype("int64")
    out = out.sort_values(["legal_entity", "source_type", "source_id", "period"],
                          kind="mergesort")
    return out[SCHEDULE_COLUMNS].reset_index(drop=True)


def _contract_positions(facts: RevenueFacts, owners: pd.DataFrame, as_of: date
                        ) -> pd.DataFrame:
    """One row per revenue contract and month from its first event to the as-of month: the
    closing deferred revenue, contract asset, unbilled receivable and refund liability and the
    net position (45-1: liability positive, asset negative), in the contract's currency.

    The same events as the journals: everything known by ``as_of`` plus the as-of month's
    recognition entry (dated at the month end), so the positions tie to the ledger's balances
    whatever day of the month the close runs."""
    ev = facts.events
    as_of_month = int(month_index(np.array([pd.Timestamp(as_of)], dtype="datetime64[ns]"))[0])
    rec = facts.recognition
    month_entries = rec.loc[(rec["kind"] == "period") & (rec["month"] <= as_of_month),
                            "event_id"]
    ev = ev[(ev["date"] < cutoff_of(as_of)) | ev["event_id"].isin(set(month_entries))]
    if len(ev) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in CONTRACT_POSITION_COLUMNS})
    ev = ev.assign(month=month_index(pd.to_datetime(ev["date"]).to_numpy()))
    ev = ev.sort_values(["position_key", "date", "rank", "order", "event_id"], kind="mergesort")
    last = ev.drop_duplicates(["position_key", "month"], keep="last")
    first = last.groupby("position_key")["month"].min()
    grid = pd.DataFrame({"position_key": first.index.repeat(as_of_month - first + 1)})
    grid["month"] = first.reindex(grid["position_key"]).to_numpy() + grid.groupby(
        "position_key").cumcount().to_numpy()
    columns = [f"{c}_balance" for c in MOVEMENT_COLUMNS]
    grid = grid.merge(last[["position_key", "month", *columns]], on=["position_key", "month"],
                      how="left")
    grid[columns] = grid.groupby("position_key")[columns].ffill().fillna(0).astype("int64")
    grid = grid[(grid[columns] != 0).any(axis=1) | grid["month"].isin(last["month"])]
    attrs = owners.set_index("position_key")
    out = pd.DataFrame({
        "revenue_contract_id": grid["position_key"],
        "legal_entity": grid["position_key"].map(attrs["legal_entity"]),
        "period": period_labels(grid["month"].to_numpy()),
        "currency": grid["position_key"].map(attrs["currency"]),
        "deferred_revenue": grid["deferred_balance"],
        "contract_asset": grid["contract_asset_balance"],
        "unbilled_receivable": grid["unbilled_balance"],
        "refund_liability": grid["refund_liability_balance"],
    })
    out["net_contract_position"] = out["deferred_revenue"] - out["contract_asset"]
    return out.sort_values(["legal_entity", "revenue_contract_id", "period"],
                           kind="mergesort")[CONTRACT_POSITION_COLUMNS].reset_index(drop=True)


def run_engine(tables: ValidatedTables | Mapping[str, pd.DataFrame], policy: Policy, as_of: date,
               summary_mode: SummaryMode | None = None,
               max_lines_per_entry: int = MAX_LINES_PER_ENTRY,
               treatments: TreatmentTable | pd.DataFrame | str | None = None) -> EngineResult:
    """Allocate, schedule, journalize and balance everything known as of ``as_of``.

    Journals cover events up to ``as_of`` and recognition for periods up to ``as_of``'s period
    (the current month's entry, dated at its end, is included), plus each month end's customer
    credit reclassification and FX remeasurement of monetary balances up to ``as_of``.

    ``summary_mode`` (default: usage in summary, everything else in detail) says how usage
    journals post: ``summary`` books one entry per entity, usage day and currency with one line
    per product and account (at most ``max_lines_per_entry`` lines an entry, carrying
    ``event_count`` and ``events_fingerprint``); ``detail`` one entry per usage event.
    ``treatments`` overrides rows of the treatment table (``q2c_pipeline.revenue.treatments``).
    """
    mode = summary_mode or SummaryMode()
    unsupported = sorted(st for st in mode.modes if st != "usage" and mode.modes[st] == "summary")
    if mode.default == "summary" or unsupported:
        raise ValueError("summary posting is only implemented for usage, not: "
                         + ", ".join(unsupported or ["(default)"]))
    if max_lines_per_entry < _USAGE_LINES_PER_PRODUCT:
        raise ValueError(f"max_lines_per_entry must be at least {_USAGE_LINES_PER_PRODUCT}")
    usage_summary = max_lines_per_entry if mode.mode_for("usage") == "summary" else None
    table = treatments if isinstance(treatments, TreatmentTable) else load_treatments(treatments)
    t = prepare_inputs(require_valid(tables), as_of)
    functional = _functional(t["legal_entities"], policy)
    rates = RateBook(t["fx_rates"])
    facts = recognize(t, policy, as_of, rates, table)
    owners = _owners(facts)
    cutoff = cutoff_of(as_of)
    as_of_month = int(month_index(np.array([pd.Timestamp(as_of)], dtype="datetime64[ns]"))[0])
    contra = table.lookup("credit_note", "*", "customer").account
    postings = build_postings({
        "events": facts.events, "recognition": facts.recognition,
        "invoice_lines": facts.invoice_lines, "parts": facts.parts,
        "customer_credits": facts.customer_credits, "payments": facts.payments,
        "one_time": payment_obligations(t), "owners": owners,
    }, t["customers"], functional, cutoff, as_of_month, usage_summary, contra)
    postings = post_intercompany_pairs(postings)
    postings["functional_currency"] = postings["legal_entity"].map(functional)
    if postings["functional_currency"].isna().any():
        bad = postings.loc[postings["functional_currency"].isna(), "legal_entity"].iloc[0]
        raise ValueError(f"legal_entities: no functional currency for legal entity {bad!r}")
    journal_lines = build_journal_lines(measure(postings, rates), t["accounting_periods"])
    reclass = customer_credit_reclass(journal_lines, as_of, t["accounting_periods"])
    if len(reclass):
        journal_lines = sort_journal_lines(pd.concat(
            [journal_lines, build_journal_lines(reclass, t["accounting_periods"])],
            ignore_index=True))
    remeasurement = build_remeasurement_postings(journal_lines, rates, as_of,
                                                 t["accounting_periods"],
                                                 _settlement_currencies(t["legal_entities"],
                                                                        functional))
    if len(remeasurement):
        journal_lines = sort_journal_lines(pd.concat(
            [journal_lines, build_journal_lines(remeasurement, t["accounting_periods"])],
            ignore_index=True))
    journal_lines = journal_lines.drop(columns=["functional_exact"], errors="ignore")
    balances = build_account_balances(journal_lines, str(period_labels(np.array([as_of_month]))[0]))
    schedule = _revenue_schedule(facts, journal_lines, rates, functional, as_of)
    positions = _contract_positions(facts, owners, as_of)
    return EngineResult(allocation=facts.allocation, revenue_schedule=schedule,
                        journal_lines=journal_lines, account_balances=balances,
                        contract_positions=positions)


def schedule_as_of(tables: Mapping[str, pd.DataFrame], policy: Policy,
                   as_of_version_date: date) -> pd.DataFrame:
    """The revenue schedule exactly as it stood on ``as_of_version_date``: only contract
    versions (and their amendment lines), invoices and reductions known by that day take part,
    so the schedule of any past day is reproducible from today's input."""
    return run_engine(tables, policy, as_of_version_date).revenue_schedule
