with source as (
    select * from {{ source('canonical', 'invoice_lines') }}
)

select
    cast(invoice_line_id as varchar) as invoice_line_id,
    cast(invoice_id as varchar) as invoice_id,
    cast(amount as bigint) as amount_minor,
    cast(discount_amount as bigint) as discount_amount_minor,
    cast(contract_line_id as varchar) as contract_line_id,
    cast(product_code as varchar) as product_code,
    cast(quantity as double) as quantity,
    cast(tax_amount as bigint) as tax_amount_minor,
    cast(tax_inclusive as boolean) as is_tax_inclusive,
    cast(service_start as timestamp) as service_start_at,
    cast(service_end as timestamp) as service_end_at,
    cast(is_proration as boolean) as is_proration,
    cast(created_at as timestamp) as created_at,
    cast(source_system as varchar) as source_system,
    cast(source_id as varchar) as source_id,
    cast(correlation_id as varchar) as correlation_id
from source
