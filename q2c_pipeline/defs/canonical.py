"""Canonical assets: the latest version of every raw record, mapped to the canonical model,
validated with pandera and reference-data rules; what fails goes to ``canonical.quarantine``."""


import json

import dagster as dg
import pandas as pd

from q2c_pipeline.core.money import from_minor
from q2c_pipeline.defs.columns import column_schemas, with_column_schema
from q2c_pipeline.defs.owners import owner_of
from q2c_pipeline.defs.resources import WarehouseResource
from q2c_pipeline.schemas import CANONICAL_TABLES
from q2c_pipeline.schemas.validation import VALIDATION_ORDER
from q2c_pipeline.sources.registry import ERP_TABLES, SALESFORCE_SOURCES, STRIPE_RESOURCES
from q2c_pipeline.stages import build_canonical
from q2c_pipeline.warehouse import read_table

RAW_KEYS = [
    dg.AssetKey(["raw", o.raw_table]) for o in (*SALESFORCE_SOURCES, *STRIPE_RESOURCES, *ERP_TABLES)
] + [dg.AssetKey(["raw", "usage_events"])]

# What each canonical table is made from (q2c_pipeline/sources/assemble.py): the raw objects its
# mapper reads, and the canonical tables its records are validated against (a held contract holds
# its invoices). The quarantine and the load audit come from every raw object.
MAPPED_FROM = {
    "legal_entities": ["erp_legal_entities"],
    "chart_of_accounts": ["erp_chart_of_accounts"],
    "accounting_periods": ["erp_accounting_periods"],
    "tax_codes": ["erp_tax_codes"],
    "fx_rates": ["erp_fx_rates"],
    "products": ["erp_products"],
    "customers": ["salesforce_accounts", "erp_customers", "salesforce_user_info"],
    "contracts": ["salesforce_contracts", "salesforce_subscriptions", "salesforce_user_info"],
    "contract_lines": ["salesforce_subscriptions", "salesforce_contracts",
                       "salesforce_opportunities", "salesforce_opportunity_line_items",
                       "salesforce_products", "salesforce_user_info"],
    "invoices": ["stripe_invoices"],
    "invoice_lines": ["stripe_invoices", "stripe_products"],
    "credit_notes": ["stripe_credit_notes", "stripe_invoices"],
    "payments": ["stripe_invoice_payments", "stripe_invoices"],
    "refunds": ["stripe_refunds", "stripe_invoice_payments", "stripe_invoices",
                "stripe_credit_notes"],
    "invoice_events": ["stripe_invoices"],
    "usage": ["usage_events", "stripe_prices", "stripe_products", "stripe_subscriptions",
              "stripe_billing_meters"],
}
VALIDATED_AGAINST = {
    "chart_of_accounts": ["legal_entities"], "accounting_periods": ["legal_entities"],
    "customers": ["legal_entities"],
    "contracts": ["customers", "legal_entities", "fx_rates"],
    "contract_lines": ["contracts", "products"],
    "invoices": ["customers", "contracts", "fx_rates"],
    "invoice_lines": ["invoices", "contract_lines", "products", "tax_codes"],
    "credit_notes": ["invoices", "invoice_lines"], "payments": ["invoices"],
    "refunds": ["payments", "credit_notes"], "invoice_events": ["invoices"],
    "usage": ["customers", "contract_lines", "invoice_lines", "fx_rates"],
}


def _deps(table: str) -> list[dg.AssetKey]:
    return ([dg.AssetKey(["raw", name]) for name in MAPPED_FROM[table]]
            + [dg.AssetKey(["canonical", name]) for name in VALIDATED_AGAINST.get(table, [])])


CANONICAL_DOCS = {
    "legal_entities": "One row per legal entity (ERP).",
    "chart_of_accounts": "One row per entity and logical account: its GL account (ERP).",
    "accounting_periods": "One row per entity and period, open or closed (ERP).",
    "tax_codes": "One row per tax code (ERP).",
    "fx_rates": "One row per rate date and currency pair (ERP).",
    "products": "One row per product code: revenue pattern and SSP (ERP catalog).",
    "customers": "One row per customer: Salesforce Account joined to the ERP customer master.",
    "contracts": "One row per contract version (Salesforce Contract + CPQ amendments).",
    "contract_lines": "One row per performance obligation or amendment delta (CPQ subscriptions).",
    "invoices": "One row per billing invoice.",
    "invoice_lines": "One row per invoice line.",
    "credit_notes": "One row per credit note line.",
    "payments": "One row per invoice payment.",
    "refunds": "One row per refund.",
    "invoice_events": "One row per invoice void or uncollectible mark.",
    "usage": "One row per rated usage event.",
}


def _specs() -> list[dg.AssetSpec]:
    specs = [
        dg.AssetSpec(
            key=["canonical", table],
            group_name="canonical",
            owners=owner_of(["canonical", table]),
            kinds={"python", "duckdb", "pandera"},
            description=CANONICAL_DOCS[table],
            deps=_deps(table),
        )
        for table in VALIDATION_ORDER
    ]
    specs.append(
        dg.AssetSpec(
            key=["canonical", "quarantine"],
            group_name="canonical",
            owners=owner_of(["canonical", "quarantine"]),
            kinds={"python", "duckdb"},
            description=(
                "One row per rejected source record: rule, reason naming record and field, "
                "owning team (sales_ops, billing_ops, controllership) and the payload as received."
            ),
            deps=RAW_KEYS,
        )
    )
    specs.append(
        dg.AssetSpec(
            key=["canonical", "load_audit"],
            group_name="canonical",
            owners=owner_of(["canonical", "load_audit"]),
            kinds={"python", "duckdb"},
            description=("One row per canonical table: rows in, accepted and quarantined, and "
                         "the source records set aside as pending before mapping (drafts)."),
            deps=RAW_KEYS,
        )
    )
    specs.append(
        dg.AssetSpec(
            key=["canonical", "pending_invoices"],
            group_name="canonical",
            owners=owner_of(["canonical", "pending_invoices"]),
            kinds={"python", "duckdb"},
            description=(
                "One row per Stripe invoice still in draft: awaiting finalization (Stripe may yet "
                "change or delete it), with the customer, contract, amount and when Stripe "
                "finalizes it. Never posted, never reported failed; a deleted draft leaves."
            ),
            deps=RAW_KEYS,
        )
    )
    return specs


def _pending_table(pending) -> str:
    """The drafts in words: who, which contract, how much, when Stripe finalizes them."""
    if not len(pending):
        return "No Stripe invoice is awaiting finalization."
    rows = ["| invoice | customer | entity | total | drafted (UTC) | finalizes (UTC) |",
            "|---|---|---|---:|---|---|"]
    for r in pending.itertuples(index=False):
        total = "" if pd.isna(r.total) else f"{r.currency} {from_minor(int(r.total), r.currency)}"
        finalizes = "by hand" if pd.isna(r.finalizes_at) else str(r.finalizes_at)[:16]
        rows.append(f"| {r.source_id} | {r.customer_name} | {r.legal_entity or ''} | {total} | "
                    f"{str(r.created_at)[:16]} | {finalizes} |")
    return "\n".join(rows)


def quarantine_table(quarantine, accepted, limit: int = 60) -> str:
    """The held records in words for the UI: owner, rule, customer and reason (records that
    hold others first; the rest are counted)."""
    names = dict(zip(accepted["customers"]["customer_id"], accepted["customers"]["name"],
                     strict=True)) if len(accepted.get("customers", [])) else {}
    roots = quarantine[quarantine["rule"] != "held_by_upstream"]
    rows = ["| owner | rule | customer | reason |", "|---|---|---|---|"]
    for row in roots.head(limit).itertuples(index=False):
        customer = names.get(row.customer_id) or (
            _payload_name(row.payload) if row.source_table == "customers" else None)
        reason = str(row.reason).replace("|", "/")
        rows.append(f"| {row.owner} | {row.rule} | {customer or 'unknown'} | {reason} |")
    held = len(quarantine) - len(roots)
    if held:
        rows.append(f"| | held_by_upstream | | {held} more records held with the ones above |")
    return "\n".join(rows)


def _payload_name(payload: str) -> str | None:
    try:
        return json.loads(payload).get("Name")
    except (ValueError, AttributeError):
        return None


@dg.multi_asset(specs=_specs(), can_subset=False, pool="warehouse")
def canonical_tables(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Map, validate and write every canonical table and the quarantine in one pass."""
    with warehouse.get_connection() as conn:
        result = build_canonical(conn)
        pending = read_table(conn, "canonical", "pending_invoices")
        schemas = column_schemas(conn, [f"canonical.{t}" for t in (
            *VALIDATION_ORDER, "quarantine", "pending_invoices", "load_audit")])
    counts = result.counts()
    for table in VALIDATION_ORDER:
        c = counts[table]
        yield dg.MaterializeResult(
            asset_key=["canonical", table],
            metadata=with_column_schema({
                "rows_in": c["rows_in"],
                "accepted": c["accepted"],
                "quarantined": c["quarantined"],
                "columns": len(CANONICAL_TABLES[table][0].to_schema().columns),
            }, schemas, f"canonical.{table}"),
        )
    quarantine = result.quarantine
    by_owner = quarantine.groupby("owner").size().to_dict() if len(quarantine) else {}
    by_rule = quarantine.groupby(["owner", "rule"]).size() if len(quarantine) else {}
    # one line per rule (the records, with their reasons, are in the quarantine and its table)
    for (owner, rule), count in (by_rule.items() if len(quarantine) else []):
        context.log.warning(f"quarantined {count} record(s) [{owner}] {rule}")
    yield dg.MaterializeResult(
        asset_key=["canonical", "quarantine"],
        metadata=with_column_schema({
            "rows": len(quarantine),
            "by_owner": {k: int(v) for k, v in sorted(by_owner.items())},
            "by_rule": {f"{o} {r}": int(v) for (o, r), v in
                        (by_rule.items() if len(quarantine) else [])},
            "held_records": dg.MetadataValue.md(quarantine_table(quarantine, result.accepted)),
        }, schemas, "canonical.quarantine"),
    )
    yield dg.MaterializeResult(
        asset_key=["canonical", "pending_invoices"],
        metadata=with_column_schema({
            "awaiting_finalization": len(pending),
            "invoices": dg.MetadataValue.md(_pending_table(pending)),
        }, schemas, "canonical.pending_invoices"),
    )
    yield dg.MaterializeResult(
        asset_key=["canonical", "load_audit"],
        metadata=with_column_schema({
            "rows_in": sum(c["rows_in"] for c in counts.values()),
            "accepted": sum(c["accepted"] for c in counts.values()),
            "quarantined": sum(c["quarantined"] for c in counts.values()),
        }, schemas, "canonical.load_audit"),
    )
