with source as (
    select * from {{ source('canonical', 'refunds') }}
)

select
    cast(refund_id as varchar) as refund_id,
    cast(invoice_id as varchar) as invoice_id,
    cast(refunded_at as timestamp) as refunded_at,
    cast(amount as bigint) as amount_minor,
    cast(currency as varchar) as currency_code,
    cast(payment_id as varchar) as payment_id,
    cast(source_system as varchar) as source_system,
    cast(source_id as varchar) as source_id,
    cast(correlation_id as varchar) as correlation_id
from source
