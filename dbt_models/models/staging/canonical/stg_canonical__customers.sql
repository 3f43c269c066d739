with source as (
    select * from {{ source('canonical', 'customers') }}
)

select
    cast(customer_id as varchar) as customer_id,
    cast(name as varchar) as customer_name,
    cast(legal_entity as varchar) as legal_entity,
    cast(currency as varchar) as currency_code,
    cast(parent_customer_id as varchar) as parent_customer_id,
    cast(country as varchar) as country,
    cast(tax_region as varchar) as tax_region,
    cast(erp_customer_id as varchar) as erp_customer_id,
    cast(billing_customer_id as varchar) as billing_customer_id,
    cast(source_system as varchar) as source_system,
    cast(source_id as varchar) as source_id,
    cast(correlation_id as varchar) as correlation_id
from source
