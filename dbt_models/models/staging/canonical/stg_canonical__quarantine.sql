with source as (
    select * from {{ source('canonical', 'quarantine') }}
)

select
    -- md5 of source system, table, record id, field, rule and payload (schemas/quarantine.py)
    cast(exception_id as varchar) as exception_id,
    cast(source_system as varchar) as source_system,
    cast(source_table as varchar) as source_table,
    cast(record_id as varchar) as record_id,
    cast(field as varchar) as field,
    cast(rule as varchar) as rule,
    cast(reason as varchar) as reason,
    cast(owner as varchar) as owner,
    cast(correlation_id as varchar) as correlation_id,
    -- attributed by the validation layer from the record or its parent invoice/contract/customer
    cast(legal_entity as varchar) as legal_entity,
    cast(customer_id as varchar) as customer_id,
    -- the business date whose period the record is stuck in (null: unknown)
    cast(effective_date as date) as effective_date,
    -- the source record as received, JSON text
    cast(payload as varchar) as payload
from source
