"""Which team answers for each asset (the owner the Dagster UI shows and filters by).

Salesforce's records are sales ops'; Stripe's and usage are billing ops'; the ERP's reference
data, the quarantine and everything finance makes of the records are controllership's. A
canonical table belongs to the team whose system it comes from."""

import dagster as dg

SALES_OPS, BILLING_OPS, CONTROLLERSHIP = (
    "team:sales_ops", "team:billing_ops", "team:controllership")
CANONICAL_OWNERS = {
    "customers": SALES_OPS, "contracts": SALES_OPS, "contract_lines": SALES_OPS,
    "invoices": BILLING_OPS, "invoice_lines": BILLING_OPS, "credit_notes": BILLING_OPS,
    "payments": BILLING_OPS, "refunds": BILLING_OPS, "invoice_events": BILLING_OPS,
    "usage": BILLING_OPS, "pending_invoices": BILLING_OPS,
}


def owner_of(key: dg.AssetKey | list[str]) -> list[str]:
    """The owning team of an asset key, as Dagster's ``owners``."""
    path = key.path if isinstance(key, dg.AssetKey) else list(key)
    schema, name = path[0], path[-1]
    if schema in ("raw", "staging"):
        if name.startswith(("salesforce", "stg_salesforce")):
            return [SALES_OPS]
        if name.startswith(("stripe", "usage", "stg_billing", "invoices_daily")):
            return [BILLING_OPS]
        if name.startswith("stg_canonical__"):
            return [CANONICAL_OWNERS.get(name.removeprefix("stg_canonical__"), CONTROLLERSHIP)]
        return [CONTROLLERSHIP]
    if schema == "canonical":
        return [CANONICAL_OWNERS.get(name, CONTROLLERSHIP)]
    return [CONTROLLERSHIP]
