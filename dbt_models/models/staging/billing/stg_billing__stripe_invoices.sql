-- One row per Stripe invoice: the totals Stripe itself states on its latest version received
-- (docs.stripe.com/api/invoices/object): subtotal (line amounts before discounts),
-- total_discount_amounts, total_taxes, total, amount_paid, amount_remaining. An id whose latest
-- extraction holds two different versions is kept once per version (is_ambiguous): such records
-- are quarantined as duplicate_id upstream and compared with nothing.
with versions as (
    select
        record_id,
        payload,
        extracted_at,
        rank() over (partition by record_id order by extracted_at desc) as version_rank
    from {{ source('raw', 'stripe_invoices') }}
    where not coalesce(is_deleted, false)
),

latest as (
    select
        *,
        count(*) over (partition by record_id) as latest_versions
    from versions
    where version_rank = 1
)

select
    record_id,
    upper(payload ->> '$.currency') as currency_code,
    payload ->> '$.status' as source_status,
    cast(payload ->> '$.subtotal' as bigint) as source_subtotal_minor,
    cast(coalesce(list_sum(list_transform(
        cast(coalesce(payload -> '$.total_discount_amounts', '[]') as json[]),
        lambda d: cast(d ->> 'amount' as bigint))), 0) as bigint) as source_discount_minor,
    -- null when Stripe did not state the taxes (an older API version's shape): unknown, not 0
    case when json_type(payload, '$.total_taxes') = 'ARRAY' then cast(coalesce(list_sum(
        list_transform(cast(payload -> '$.total_taxes' as json[]),
                       lambda t: cast(t ->> 'amount' as bigint))), 0) as bigint)
    end as source_tax_minor,
    cast(payload ->> '$.total' as bigint) as source_total_minor,
    cast(payload ->> '$.amount_paid' as bigint) as source_paid_minor,
    cast(payload ->> '$.amount_remaining' as bigint) as source_remaining_minor,
    -- payment attempts Stripe made on the invoice (an open invoice with attempts: they failed)
    cast(payload ->> '$.attempt_count' as integer) as attempt_count,
    payload ->> '$.customer' as stripe_customer_id,
    to_timestamp(cast(payload ->> '$.due_date' as bigint)) as source_due_at,
    latest_versions > 1 as is_ambiguous
from latest
