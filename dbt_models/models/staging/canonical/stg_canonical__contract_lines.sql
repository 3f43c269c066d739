with source as (
    select * from {{ source('canonical', 'contract_lines') }}
)

select
    cast(contract_line_id as varchar) as contract_line_id,
    cast(contract_id as varchar) as contract_id,
    cast(product_code as varchar) as product_code,
    cast(quantity as double) as quantity,
    cast(amount as bigint) as amount_minor,
    cast(ssp_amount as bigint) as ssp_amount_minor,
    cast(service_start as timestamp) as service_start_at,
    cast(service_end as timestamp) as service_end_at,
    cast(revenue_pattern as varchar) as revenue_pattern,
    cast(revises_line_id as varchar) as revises_line_id,
    cast(effective_date as timestamp) as effective_at,
    cast(allocation_group as varchar) as allocation_group,
    -- how an amendment delta is accounted for; null = the default (prospective)
    cast(modification_treatment as varchar) as modification_treatment,
    cast(source_system as varchar) as source_system,
    cast(source_id as varchar) as source_id,
    cast(correlation_id as varchar) as correlation_id
from source
