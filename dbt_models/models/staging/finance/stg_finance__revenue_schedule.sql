with source as (
    select * from {{ source('finance', 'revenue_schedule') }}
)

select
    cast(source_type as varchar) as source_type,
    cast(source_id as varchar) as source_id,
    cast(contract_id as varchar) as contract_id,
    cast(customer_id as varchar) as customer_id,
    cast(legal_entity as varchar) as legal_entity,
    cast(period as varchar) as period,
    cast(schedule_version as bigint) as schedule_version,
    cast(amount as bigint) as amount_minor,
    cast(currency as varchar) as currency_code,
    cast(amount_functional as bigint) as amount_functional_minor,
    cast(treatment as varchar) as treatment,
    cast(correlation_id as varchar) as correlation_id
from source
