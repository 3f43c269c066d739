with source as (
    select * from {{ source('canonical', 'chart_of_accounts') }}
)

select
    cast(legal_entity as varchar) as legal_entity,
    cast(account as varchar) as account,
    cast(gl_account as varchar) as gl_account,
    cast(gl_name as varchar) as gl_name,
    cast(department as varchar) as department
from source
