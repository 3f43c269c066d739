"""Assemble canonical candidate frames from the latest landed raw records of every source.

One call maps everything, in dependency order, because some mappings need others (a contract's
legal entity comes from its customer; usage links to contract and invoice lines). The input is
what ``raw.*`` holds, so the snapshot path and the live path map identically.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from q2c_pipeline.sources import billing, erp, salesforce, usage

ERP_KEY_COLUMN = "_key"  # composite landing key added for multi-column ERP ids


def erp_frame(records: list[dict]) -> pd.DataFrame:
    """Landed ERP rows -> the all-text frame the ERP mappers read (blanks are "")."""
    frame = pd.DataFrame(records)
    if ERP_KEY_COLUMN in frame:
        frame = frame.drop(columns=[ERP_KEY_COLUMN])
    return frame.astype(object).where(frame.notna(), "").astype(str) if len(frame) else frame


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
    out["customers"] = salesforce.map_customers(sf("accounts"), ref("customers"), org_default)
    # dates of Salesforce instants (activation, amendment signing) in the entity's time zone
    zones = salesforce.contract_zones(sf("contracts"), out["customers"], out["legal_entities"])
    out["contracts"] = salesforce.map_contracts(sf("contracts"), subscriptions, out["customers"],
                                                org_default, zones)
    out["contract_lines"] = salesforce.map_contract_lines(
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
    out["invoices"] = billing.map_invoices(invoices, out["customers"])
    out["invoice_lines"] = billing.map_invoice_lines(invoices, stripe("products"))
    out["credit_notes"] = billing.map_credit_notes(
        stripe("credit_notes"), invoices, out["customers"]
    )
    out["payments"] = billing.map_payments(payments, invoices, out["customers"])
    out["refunds"] = billing.map_refunds(stripe("refunds"), payments, invoices,
                                         stripe("credit_notes"))
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
