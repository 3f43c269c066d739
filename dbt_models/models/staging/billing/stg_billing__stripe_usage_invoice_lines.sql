-- One row per invoice line that bills a metered Stripe price, as Stripe itself states it on the
-- latest version of its invoice: the quantity invoiced (quantity_decimal where sent, else
-- quantity), the amount, the service period and the meter the price reads
-- (docs.stripe.com/api/invoice-line-item/object, /api/prices/object recurring.meter).
with invoices as (
    select record_id, payload
    from {{ source('raw', 'stripe_invoices') }}
    where not coalesce(is_deleted, false)
    qualify rank() over (partition by record_id order by extracted_at desc) = 1
        and count(*) over (partition by record_id, extracted_at) = 1
),

prices as (
    select
        record_id as price_id,
        payload ->> '$.recurring.meter' as meter_id,
        payload ->> '$.recurring.usage_type' as usage_type
    from {{ source('raw', 'stripe_prices') }}
    where not coalesce(is_deleted, false)
    qualify row_number() over (partition by record_id order by extracted_at desc,
                               source_modstamp desc) = 1
),

lines as (
    select
        invoices.record_id as stripe_invoice_id,
        invoices.payload ->> '$.customer' as stripe_customer_id,
        upper(invoices.payload ->> '$.currency') as currency_code,
        unnest(cast(invoices.payload -> '$.lines.data' as json[])) as line
    from invoices
    where invoices.payload ->> '$.status' <> 'draft'
)

select
    lines.line ->> '$.id' as stripe_line_id,
    lines.stripe_invoice_id,
    lines.stripe_customer_id,
    lines.currency_code,
    prices.meter_id,
    to_timestamp(cast(lines.line ->> '$.period.start' as bigint))::timestamp as period_start_at,
    to_timestamp(cast(lines.line ->> '$.period.end' as bigint))::timestamp as period_end_at,
    cast(coalesce(lines.line ->> '$.quantity_decimal', lines.line ->> '$.quantity')
         as decimal(38, 12)) as source_quantity,
    cast(lines.line ->> '$.amount' as bigint) as source_amount_minor
from lines
inner join prices
    on prices.price_id = coalesce(lines.line ->> '$.pricing.price_details.price',
                                  lines.line ->> '$.price.id')
where prices.usage_type = 'metered'
