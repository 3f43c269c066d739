with source as (
    select * from {{ source('canonical', 'fx_rates') }}
)

select
    cast(rate_date as timestamp) as rate_at,
    cast(from_currency as varchar) as from_currency_code,
    cast(to_currency as varchar) as to_currency_code,
    -- exact decimal string, as the engine parses it; never a double
    cast(rate as varchar) as rate
from source
