with source as (
    select * from {{ source('canonical', 'legal_entities') }}
)

select
    cast(legal_entity as varchar) as legal_entity,
    cast(functional_currency as varchar) as functional_currency_code,
    cast(country as varchar) as country,
    cast(calendar as varchar) as calendar
from source
