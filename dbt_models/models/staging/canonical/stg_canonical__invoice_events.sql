with source as (
    select * from {{ source('canonical', 'invoice_events') }}
)

select
    cast(invoice_id as varchar) as invoice_id,
    cast(occurred_at as timestamp) as occurred_at,
    cast(event as varchar) as invoice_event,
    cast(source_system as varchar) as source_system,
    cast(source_id as varchar) as source_id,
    cast(correlation_id as varchar) as correlation_id
from source
