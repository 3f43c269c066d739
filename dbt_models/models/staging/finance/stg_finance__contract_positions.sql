with source as (
    select * from {{ source('finance', 'contract_positions') }}
)

select
    cast(revenue_contract_id as varchar) as revenue_contract_id,
    cast(legal_entity as varchar) as legal_entity,
    cast(period as varchar) as period,
    cast(currency as varchar) as currency_code,
    cast(deferred_revenue as bigint) as deferred_revenue_minor,
    cast(contract_asset as bigint) as contract_asset_minor,
    cast(unbilled_receivable as bigint) as unbilled_receivable_minor,
    cast(refund_liability as bigint) as refund_liability_minor,
    cast(net_contract_position as bigint) as net_contract_position_minor
from source
