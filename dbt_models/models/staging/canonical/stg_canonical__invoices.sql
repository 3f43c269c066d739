with source as (
    select * from {{ source('canonical', 'invoices') }}
)

select
    cast(invoice_id as varchar) as invoice_id,
    cast(customer_id as varchar) as customer_id,
    cast(currency as varchar) as currency_code,
    cast(finalized_at as timestamp) as finalized_at,
    cast(contract_id as varchar) as contract_id,
    cast(legal_entity as varchar) as legal_entity,
    cast(due_date as timestamp) as due_at,
    cast(billing_system as varchar) as billing_system,
    cast(status as varchar) as invoice_status,
    cast(source_system as varchar) as source_system,
    cast(source_id as varchar) as source_id,
    cast(correlation_id as varchar) as correlation_id
from source
