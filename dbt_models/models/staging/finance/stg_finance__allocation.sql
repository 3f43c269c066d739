with source as (
    select * from {{ source('finance', 'allocation') }}
)

select
    cast(contract_id as varchar) as contract_id,
    cast(contract_line_id as varchar) as contract_line_id,
    cast(legal_entity as varchar) as legal_entity,
    cast(schedule_version as bigint) as schedule_version,
    cast(ssp_amount as bigint) as ssp_amount_minor,
    cast(transaction_price as bigint) as transaction_price_minor,
    cast(allocated_amount as bigint) as allocated_amount_minor,
    cast(currency as varchar) as currency_code
from source
