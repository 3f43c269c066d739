-- One row per performance obligation x period x schedule version: gross revenue recognized.
with revenue_schedule as (
    select * from {{ ref('stg_finance__revenue_schedule') }}
),

legal_entities as (
    select * from {{ ref('stg_canonical__legal_entities') }}
)

select
    revenue_schedule.source_type,
    revenue_schedule.source_id,
    revenue_schedule.period,
    revenue_schedule.schedule_version,
    revenue_schedule.contract_id,
    revenue_schedule.customer_id,
    revenue_schedule.legal_entity,
    revenue_schedule.amount_minor,
    revenue_schedule.currency_code,
    revenue_schedule.amount_functional_minor,
    legal_entities.functional_currency_code,
    revenue_schedule.treatment,
    revenue_schedule.correlation_id
from revenue_schedule
left join legal_entities on revenue_schedule.legal_entity = legal_entities.legal_entity
order by
    revenue_schedule.source_type,
    revenue_schedule.source_id,
    revenue_schedule.period,
    revenue_schedule.schedule_version
