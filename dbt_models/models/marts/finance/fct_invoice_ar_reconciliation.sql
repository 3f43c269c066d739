-- One row per invoice, billing (canonical invoices) full outer joined to the ledger (net debit to
-- AccountsReceivable of its invoice journals).
with billed as (
    select * from {{ ref('int_invoice_billed_totals') }}
),

ar_postings as (
    select * from {{ ref('int_invoice_ar_postings') }}
),

joined as (
    select
        coalesce(billed.invoice_id, ar_postings.invoice_id) as invoice_id,
        billed.customer_id,
        billed.contract_id,
        coalesce(billed.legal_entity, ar_postings.legal_entity) as legal_entity,
        coalesce(billed.currency_code, ar_postings.currency_code) as currency_code,
        ar_postings.currency_code as ledger_currency_code,
        coalesce(billed.invoiced_period, ar_postings.ledger_period) as period,
        billed.invoiced_period,
        ar_postings.ledger_period,
        billed.invoice_status,
        billed.correlation_id,
        billed.invoice_id is not null as is_in_billing,
        ar_postings.invoice_id is not null as is_in_ledger,
        coalesce(billed.billed_total_minor, 0) as billed_total_minor,
        coalesce(ar_postings.ar_debit_minor, 0) as ar_debit_minor
    from billed
    full outer join ar_postings on billed.invoice_id = ar_postings.invoice_id
)

select
    invoice_id,
    customer_id,
    contract_id,
    legal_entity,
    currency_code,
    ledger_currency_code,
    period,
    invoiced_period,
    ledger_period,
    invoice_status,
    correlation_id,
    is_in_billing,
    is_in_ledger,
    billed_total_minor,
    ar_debit_minor,
    billed_total_minor - ar_debit_minor as difference_minor,
    case
        when not is_in_billing then 'missing_in_billing'
        -- a zero invoice (a 100% discounted period) needs no ledger entry
        when not is_in_ledger and billed_total_minor <> 0 then 'missing_in_ledger'
        when billed_total_minor = ar_debit_minor
            and (not is_in_ledger or ledger_currency_code is not distinct from currency_code)
            then 'matched'
        else 'amount_mismatch'
    end as reconciliation_status
from joined
order by invoice_id
