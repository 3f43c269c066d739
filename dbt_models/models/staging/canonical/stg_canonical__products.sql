with source as (
    select * from {{ source('canonical', 'products') }}
)

select
    cast(product_code as varchar) as product_code,
    cast(revenue_pattern as varchar) as revenue_pattern,
    cast(name as varchar) as product_name,
    cast(family as varchar) as product_family,
    cast(ssp_amount as bigint) as ssp_amount_minor,
    cast(ssp_currency as varchar) as ssp_currency_code
from source
