"""Assemble canonical candidate frames from the latest landed raw records of every source.

One call maps everything, in dependency order, because some mappings need others (a contract's
legal entity comes from its customer; usage links to contract and invoice lines). The input is
what ``raw.*`` holds, so the snapshot path and the live path map identically.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from q2c_pipeline.schemas import CANONICAL_TABLES
from q2c_pipeline.sources import billing, erp, salesforce, usage
from q2c_pipeline.sources.wire import (
    FIELD_PROBLEMS,
    PAYLOAD_COLUMN,
    UNMAPPABLE,
    qualify,
    to_payload,
)

ERP_KEY_COLUMN = "_key"  # composite landing key added for multi-column ERP ids


def erp_frame(records: list[dict]) -> pd.DataFrame:
    """Landed ERP rows -> the all-text frame the ERP mappers read (blanks are "")."""
    frame = pd.DataFrame(records)
    if ERP_KEY_COLUMN in frame:
        frame = frame.drop(columns=[ERP_KEY_COLUMN])
    return frame.astype(object).where(frame.notna(), "").astype(str) if len(frame) else frame


def guarded(table: str, system: str, mapper: Callable[..., pd.DataFrame],
            records: list[dict], *args: Any, **kwargs: Any) -> pd.DataFrame:
    """``mapper(records, ...)``; when it raises (a shape no rule of the mapper foresaw), each
    record alone: one that still raises becomes a row holding its id, its payload and the
    problem ``unmappable_record`` (naming the error), so validation quarantines it and the
    rest of the run goes on. Never the run's failure, never a lost record."""
    try:
        return mapper(records, *args, **kwargs)
    except Exception:  # noqa: BLE001 - any mapper error is one record's problem
        pass
    frames, held = [], []
    key = CANONICAL_TABLES[table][1][0]
    for record in records:
        try:
            frames.append(mapper([record], *args, **kwargs))
        except Exception as error:  # noqa: BLE001
            source_id = record.get("id", record.get("Id")) if isinstance(record, Mapping) \
                else None
            source_id = str(source_id) if isinstance(source_id, str | int) else None
            held.append({
                "source_system": system, "source_id": source_id,
                key: qualify("sf" if system == "salesforce" else "stripe", source_id),
                "correlation_id": None,
                FIELD_PROBLEMS: [(UNMAPPABLE, "(record)",
                                  f"{system} record {source_id!r} could not be read as a "
                                  f"{table} row ({type(error).__name__}: {error}): a shape "
                                  "q2c does not read")],
                PAYLOAD_COLUMN: to_payload(record),
            })
    if held:
        frames.append(pd.DataFrame(held))
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else mapper([], *args, **kwargs)


PENDING_INVOICES = "pending_invoices"
SET_ASIDE = "_set_aside"  # {canonical table: source records that are not rows by design}


def build_candidates(
    raw: Mapping[str, list[dict]], usage_events: pd.DataFrame
) -> dict[str, pd.DataFrame]:
    """Map landed records (keyed by raw table name) to one candidate frame per canonical table."""

    def sf(name: str) -> list[dict]:
        return raw.get(f"salesforce_{name}", [])

    def stripe(name: str) -> list[dict]:
        return raw.get(f"stripe_{name}", [])

    def ref(name: str) -> pd.DataFrame:
        return erp_frame(raw.get(f"erp_{name}", []))

    out = {
        "legal_entities": erp.map_legal_entities(ref("legal_entities")),
        "chart_of_accounts": erp.map_chart_of_accounts(ref("chart_of_accounts")),
        "accounting_periods": erp.map_accounting_periods(ref("accounting_periods")),
        "tax_codes": erp.map_tax_codes(ref("tax_codes")),
        "fx_rates": erp.map_fx_rates(ref("fx_rates")),
        "products": erp.map_products(ref("products")),
    }
    subscriptions = sf("subscriptions")
    # a single-currency org has no CurrencyIsoCode: its records are in the org's currency
    org_default = salesforce.org_currency(sf("user_info"))
    out["customers"] = guarded("customers", "salesforce", salesforce.map_customers,
                               sf("accounts"), ref("customers"), org_default)
    # dates of Salesforce instants (activation, amendment signing) in the entity's time zone
    zones = salesforce.contract_zones(sf("contracts"), out["customers"], out["legal_entities"])
    out["contracts"] = guarded("contracts", "salesforce", salesforce.map_contracts,
                               sf("contracts"), subscriptions, out["customers"], org_default,
                               zones)
    out["contract_lines"] = guarded(
        "contract_lines", "salesforce", salesforce.map_contract_lines,
        subscriptions,
        sf("contracts"),
        out["products"],
        opportunities=sf("opportunities"),
        opportunity_line_items=sf("opportunity_line_items"),
        product2=sf("products"),
        org_default=org_default,
        zones=zones,
    )
    invoices, drafts = billing.split_drafts(stripe("invoices"))
    payments = stripe("invoice_payments")
    out["invoices"] = guarded("invoices", "stripe", billing.map_invoices, invoices,
                              out["customers"])
    out["invoice_lines"] = guarded("invoice_lines", "stripe", billing.map_invoice_lines,
                                   invoices, stripe("products"))
    out["credit_notes"] = guarded("credit_notes", "stripe", billing.map_credit_notes,
                                  stripe("credit_notes"), invoices, out["customers"])
    out["payments"] = guarded("payments", "stripe", billing.map_payments, payments, invoices,
                              out["customers"])
    out["refunds"] = guarded("refunds", "stripe", billing.map_refunds, stripe("refunds"),
                             payments, invoices, stripe("credit_notes"))
    out["invoice_events"] = billing.map_invoice_events(invoices)
    # not a canonical table: drafts wait outside validation until Stripe finalizes them
    out[PENDING_INVOICES] = billing.map_pending_invoices(drafts, out["customers"])
    out[SET_ASIDE] = billing.set_aside(payments, stripe("refunds"))
    out["usage"] = usage.map_usage(
        usage_events,
        billing.map_usage_prices(stripe("prices"), stripe("products"), stripe("subscriptions"),
                                 stripe("billing_meters")),
        out["customers"],
        out["contract_lines"],
        out["invoice_lines"],
    )
    return out
