-- (Step 3/4 of the deferred revenue rollforward) One row per legal entity x currency x period,
-- from the first period the entity/currency touched the contract position to the entity's last
-- period, with the period's movements per bucket (zero when none). Bucket amounts are stated in
-- the direction of the rollforward: billings add, revenue, reductions and settlements subtract,
-- fx and other add.
with position_lines as (
    select * from {{ ref('int_contract_position_lines_bucketed') }}
),

account_balances as (
    select * from {{ ref('stg_finance__account_balances') }}
),

entity_periods as (
    select * from {{ ref('int_entity_periods_spined') }}
),

first_position_activity as (
    select legal_entity, currency_code, min(period) as first_period
    from (
        select legal_entity, currency_code, period from position_lines
        union all
        select legal_entity, currency_code, period
        from account_balances
        where account in ({{ sql_list(contract_position_accounts()) }})
    )
    group by legal_entity, currency_code
),

spine as (
    select
        entity_periods.legal_entity,
        first_position_activity.currency_code,
        entity_periods.period
    from entity_periods
    inner join first_position_activity
        on entity_periods.legal_entity = first_position_activity.legal_entity
        and entity_periods.period >= first_position_activity.first_period
),

movements as (
    select
        legal_entity,
        currency_code,
        period,
        sum(position_movement_minor) filter (where position_bucket = 'billings')
            as billings_minor,
        -sum(position_movement_minor) filter (where position_bucket = 'revenue')
            as revenue_minor,
        -sum(position_movement_minor) filter (where position_bucket = 'reductions')
            as reductions_minor,
        -sum(position_movement_minor) filter (where position_bucket = 'settlements')
            as settlements_minor,
        sum(position_movement_minor) filter (where position_bucket = 'fx') as fx_minor,
        sum(position_movement_minor) filter (where position_bucket = 'other')
            as other_movements_minor,
        sum(position_movement_functional_minor) filter (where position_bucket = 'billings')
            as billings_functional_minor,
        -sum(position_movement_functional_minor) filter (where position_bucket = 'revenue')
            as revenue_functional_minor,
        -sum(position_movement_functional_minor) filter (where position_bucket = 'reductions')
            as reductions_functional_minor,
        -sum(position_movement_functional_minor) filter (where position_bucket = 'settlements')
            as settlements_functional_minor,
        sum(position_movement_functional_minor) filter (where position_bucket = 'fx')
            as fx_functional_minor,
        sum(position_movement_functional_minor) filter (where position_bucket = 'other')
            as other_movements_functional_minor
    from position_lines
    group by legal_entity, currency_code, period
)

select
    spine.legal_entity,
    spine.currency_code,
    spine.period,
    cast(coalesce(movements.billings_minor, 0) as bigint) as billings_minor,
    cast(coalesce(movements.revenue_minor, 0) as bigint) as revenue_minor,
    cast(coalesce(movements.reductions_minor, 0) as bigint) as reductions_minor,
    cast(coalesce(movements.settlements_minor, 0) as bigint) as settlements_minor,
    cast(coalesce(movements.fx_minor, 0) as bigint) as fx_minor,
    cast(coalesce(movements.other_movements_minor, 0) as bigint) as other_movements_minor,
    cast(coalesce(movements.billings_functional_minor, 0) as bigint)
        as billings_functional_minor,
    cast(coalesce(movements.revenue_functional_minor, 0) as bigint)
        as revenue_functional_minor,
    cast(coalesce(movements.reductions_functional_minor, 0) as bigint)
        as reductions_functional_minor,
    cast(coalesce(movements.settlements_functional_minor, 0) as bigint)
        as settlements_functional_minor,
    cast(coalesce(movements.fx_functional_minor, 0) as bigint) as fx_functional_minor,
    cast(coalesce(movements.other_movements_functional_minor, 0) as bigint)
        as other_movements_functional_minor
from spine
left join movements
    on spine.legal_entity = movements.legal_entity
    and spine.currency_code = movements.currency_code
    and spine.period = movements.period
