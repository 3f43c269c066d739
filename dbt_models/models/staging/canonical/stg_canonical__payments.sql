with source as (
    select * from {{ source('canonical', 'payments') }}
)

select
    cast(payment_id as varchar) as payment_id,
    cast(paid_at as timestamp) as paid_at,
    cast(amount as bigint) as amount_minor,
    cast(currency as varchar) as currency_code,
    cast(invoice_id as varchar) as invoice_id,
    cast(customer_id as varchar) as customer_id,
    cast(product_code as varchar) as product_code,
    cast(source_system as varchar) as source_system,
    cast(source_id as varchar) as source_id,
    cast(correlation_id as varchar) as correlation_id
from source
