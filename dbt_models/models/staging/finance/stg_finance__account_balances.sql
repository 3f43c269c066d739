with source as (
    select * from {{ source('finance', 'account_balances') }}
)

select
    cast(legal_entity as varchar) as legal_entity,
    cast(period as varchar) as period,
    cast(account as varchar) as account,
    cast(currency as varchar) as currency_code,
    cast(movement as bigint) as movement_minor,
    cast(closing_balance as bigint) as closing_balance_minor,
    cast(movement_functional as bigint) as movement_functional_minor,
    cast(closing_balance_functional as bigint) as closing_balance_functional_minor
from source
