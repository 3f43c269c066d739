with source as (
    select * from {{ source('canonical', 'usage') }}
)

select
    cast(usage_id as varchar) as usage_id,
    cast(occurred_at as timestamp) as occurred_at,
    cast(quantity as double) as quantity,
    cast(amount as bigint) as amount_minor,
    cast(currency as varchar) as currency_code,
    cast(contract_line_id as varchar) as contract_line_id,
    cast(customer_id as varchar) as customer_id,
    cast(product_code as varchar) as product_code,
    cast(invoice_line_id as varchar) as invoice_line_id,
    cast(source_system as varchar) as source_system,
    cast(source_id as varchar) as source_id,
    cast(correlation_id as varchar) as correlation_id
from source
