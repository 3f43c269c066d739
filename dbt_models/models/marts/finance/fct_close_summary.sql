-- One row per legal entity x period for the month-end close, in the entity's functional currency:
-- billings, revenue and reductions (contra revenue) of the period, the ledger's contract position at the month end
-- (contract liability, contract asset, unbilled receivable, refund liability and the net), plus
-- the quarantine exceptions open now (not waived or resolved) per owning team. The quarantine is a snapshot with no
-- period, so its counts sit on each entity's latest period row (the close in progress) and are
-- null on earlier rows. Exceptions that cannot be attributed to an entity form a legal_entity
-- 'UNASSIGNED' row at the latest period of any entity (money columns 0, no functional currency).
with entity_periods as (
    select * from {{ ref('int_entity_periods_spined') }}
),

rollforward as (
    select * from {{ ref('fct_deferred_revenue_rollforward') }}
),

journal_lines as (
    select * from {{ ref('stg_finance__journal_lines') }}
),

legal_entities as (
    select * from {{ ref('stg_canonical__legal_entities') }}
),

exceptions as (
    select * from {{ ref('fct_exceptions') }}
),

rollforward_by_entity as (
    select
        legal_entity,
        period,
        sum(billings_functional_minor) as billings_functional_minor,
        sum(reductions_functional_minor) as position_reductions_functional_minor,
        -- the ledger's closing balances (account_balances, carried over months without a row),
        -- each currency's at its functional carrying amount
        sum(deferred_revenue_closing_functional_minor) as contract_liability_functional_minor,
        sum(contract_asset_closing_functional_minor) as contract_asset_functional_minor,
        sum(unbilled_receivable_closing_functional_minor)
            as unbilled_receivable_functional_minor,
        sum(refund_liability_closing_functional_minor) as refund_liability_functional_minor,
        sum(closing_functional_minor) as deferred_balance_functional_minor,
        bool_and(is_tied) as is_rollforward_tied
    from rollforward
    group by legal_entity, period
),

revenue_by_entity as (
    select
        legal_entity,
        period,
        sum(credit_functional_minor - debit_functional_minor)
            filter (where account = 'Revenue') as revenue_functional_minor,
        -- the period's reductions of revenue: contra accounts, net of their reversals (a voided
        -- credit note, a bad debt reversed by a later payment)
        sum(debit_functional_minor - credit_functional_minor)
            filter (where account in ({{ sql_list(contra_revenue_accounts()) }}))
            as reductions_functional_minor
    from journal_lines
    where account = 'Revenue' or account in ({{ sql_list(contra_revenue_accounts()) }})
    group by legal_entity, period
),

entity_latest_periods as (
    select legal_entity, max(period) as latest_period
    from entity_periods
    group by legal_entity
),

exception_counts as (
    select
        exceptions.legal_entity,
        coalesce(
            entity_latest_periods.latest_period,
            (select max(period) from entity_periods)
        ) as period,
        count(*) filter (where exceptions.owner = 'sales_ops') as open_exceptions_sales_ops,
        count(*) filter (where exceptions.owner = 'billing_ops') as open_exceptions_billing_ops,
        count(*) filter (where exceptions.owner = 'controllership')
            as open_exceptions_controllership
    from exceptions
    -- open: not waived or resolved (an override waits for the run that applies it)
    inner join {{ ref('int_exception_states') }} as states
        on exceptions.exception_id = states.exception_id
        and states.state not in ('waived', 'resolved')
    left join entity_latest_periods on exceptions.legal_entity = entity_latest_periods.legal_entity
    group by 1, 2
),

-- invoices held in the quarantine (never journaled), in the period they were finalized; the
-- unassigned ones on the UNASSIGNED row
held_invoices as (
    select
        exceptions.legal_entity,
        case when exceptions.legal_entity = 'UNASSIGNED'
            then (select max(period) from entity_periods)
            else coalesce(exceptions.period, entity_latest_periods.latest_period)
        end as period,
        count(distinct exceptions.record_id) as held_invoices
    from exceptions
    left join entity_latest_periods on exceptions.legal_entity = entity_latest_periods.legal_entity
    where exceptions.source_table = 'invoices'
        -- not a held change of an invoice whose booked version stands (it is journaled)
        and exceptions.record_id not in (
            select invoice_id from {{ ref('stg_canonical__invoices') }})
    group by 1, 2
),

summary_rows as (
    select legal_entity, period from entity_periods
    union
    select legal_entity, period from exception_counts where period is not null
    -- held invoices show even when every exception holding them is waived
    union
    select legal_entity, period from held_invoices where period is not null
),

flagged_rows as (
    select
        legal_entity,
        period,
        period = max(period) over (partition by legal_entity) as is_latest_period
    from summary_rows
)

select
    flagged_rows.legal_entity,
    flagged_rows.period,
    legal_entities.functional_currency_code,
    flagged_rows.is_latest_period,
    cast(coalesce(rollforward_by_entity.billings_functional_minor, 0) as bigint)
        as billings_functional_minor,
    cast(coalesce(revenue_by_entity.revenue_functional_minor, 0) as bigint)
        as revenue_functional_minor,
    cast(coalesce(revenue_by_entity.reductions_functional_minor, 0) as bigint)
        as reductions_functional_minor,
    cast(coalesce(rollforward_by_entity.position_reductions_functional_minor, 0) as bigint)
        as position_reductions_functional_minor,
    -- carried from the rollforward, which has a row for every period after first activity
    cast(coalesce(rollforward_by_entity.contract_liability_functional_minor, 0) as bigint)
        as contract_liability_functional_minor,
    cast(coalesce(rollforward_by_entity.contract_asset_functional_minor, 0) as bigint)
        as contract_asset_functional_minor,
    cast(coalesce(rollforward_by_entity.unbilled_receivable_functional_minor, 0) as bigint)
        as unbilled_receivable_functional_minor,
    cast(coalesce(rollforward_by_entity.refund_liability_functional_minor, 0) as bigint)
        as refund_liability_functional_minor,
    cast(coalesce(rollforward_by_entity.deferred_balance_functional_minor, 0) as bigint)
        as deferred_balance_functional_minor,
    coalesce(rollforward_by_entity.is_rollforward_tied, true) as is_rollforward_tied,
    case when flagged_rows.is_latest_period
        then coalesce(exception_counts.open_exceptions_sales_ops, 0) end
        as open_exceptions_sales_ops,
    case when flagged_rows.is_latest_period
        then coalesce(exception_counts.open_exceptions_billing_ops, 0) end
        as open_exceptions_billing_ops,
    case when flagged_rows.is_latest_period
        then coalesce(exception_counts.open_exceptions_controllership, 0) end
        as open_exceptions_controllership,
    coalesce(held_invoices.held_invoices, 0) as held_invoices
from flagged_rows
left join legal_entities on flagged_rows.legal_entity = legal_entities.legal_entity
left join rollforward_by_entity
    on flagged_rows.legal_entity = rollforward_by_entity.legal_entity
    and flagged_rows.period = rollforward_by_entity.period
left join revenue_by_entity
    on flagged_rows.legal_entity = revenue_by_entity.legal_entity
    and flagged_rows.period = revenue_by_entity.period
left join exception_counts
    on flagged_rows.legal_entity = exception_counts.legal_entity
    and flagged_rows.period = exception_counts.period
left join held_invoices
    on flagged_rows.legal_entity = held_invoices.legal_entity
    and flagged_rows.period = held_invoices.period
order by flagged_rows.legal_entity, flagged_rows.period
