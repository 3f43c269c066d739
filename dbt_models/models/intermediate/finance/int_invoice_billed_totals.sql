-- One row per canonical invoice with what it bills the customer: the lines as invoiced, plus tax
-- where it comes on top (tax_inclusive false). An invoice with no lines bills zero.
with invoices as (
    select * from {{ ref('stg_canonical__invoices') }}
),

invoice_lines as (
    select * from {{ ref('stg_canonical__invoice_lines') }}
),

customers as (
    select * from {{ ref('stg_canonical__customers') }}
),

line_totals as (
    select
        invoice_id,
        count(*) as invoice_line_count,
        sum(
            amount_minor + case when is_tax_inclusive then 0 else tax_amount_minor end
        ) as billed_total_minor
    from invoice_lines
    group by invoice_id
)

select
    invoices.invoice_id,
    invoices.customer_id,
    invoices.contract_id,
    -- the invoice names its entity when the billing system knows it, else the customer's
    coalesce(invoices.legal_entity, customers.legal_entity) as legal_entity,
    invoices.currency_code,
    invoices.finalized_at,
    strftime(invoices.finalized_at, '%Y-%m') as invoiced_period,
    invoices.invoice_status,
    invoices.correlation_id,
    coalesce(line_totals.invoice_line_count, 0) as invoice_line_count,
    cast(coalesce(line_totals.billed_total_minor, 0) as bigint) as billed_total_minor
from invoices
left join customers on invoices.customer_id = customers.customer_id
left join line_totals on invoices.invoice_id = line_totals.invoice_id
