with source as (
    select * from {{ source('canonical', 'credit_notes') }}
)

select
    cast(credit_note_id as varchar) as credit_note_id,
    cast(issued_at as timestamp) as issued_at,
    cast(amount as bigint) as amount_minor,
    cast(discount_amount as bigint) as discount_amount_minor,
    cast(currency as varchar) as currency_code,
    cast(invoice_id as varchar) as invoice_id,
    cast(customer_id as varchar) as customer_id,
    cast(invoice_line_id as varchar) as invoice_line_id,
    cast(tax_amount as bigint) as tax_amount_minor,
    cast(reason as varchar) as reason,
    cast(voided_at as timestamp) as voided_at,
    cast(source_system as varchar) as source_system,
    cast(source_id as varchar) as source_id,
    cast(correlation_id as varchar) as correlation_id
from source
