with source as (
    select * from {{ source('canonical', 'contracts') }}
)

select
    cast(contract_id as varchar) as contract_id,
    cast(version as bigint) as contract_version,
    cast(customer_id as varchar) as customer_id,
    cast(legal_entity as varchar) as legal_entity,
    cast(currency as varchar) as currency_code,
    cast(signed_date as timestamp) as signed_at,
    cast(effective_date as timestamp) as effective_at,
    cast(transaction_price as bigint) as transaction_price_minor,
    cast(amends_contract_id as varchar) as amends_contract_id,
    cast(status as varchar) as contract_status,
    cast(source_system as varchar) as source_system,
    cast(source_id as varchar) as source_id,
    cast(correlation_id as varchar) as correlation_id
from source
