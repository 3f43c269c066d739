with source as (
    select * from {{ source('canonical', 'accounting_periods') }}
)

select
    cast(legal_entity as varchar) as legal_entity,
    cast(period as varchar) as period,
    cast(status as varchar) as period_status,
    status = 'closed' as is_closed,
    cast(closed_at as timestamp) as closed_at
from source
