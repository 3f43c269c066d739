with source as (
    select * from {{ source('canonical', 'tax_codes') }}
)

select
    cast(tax_code as varchar) as tax_code,
    cast(country as varchar) as country,
    cast(rate_bps as bigint) as rate_bps,
    cast(is_inclusive as boolean) as is_inclusive
from source
