-- The sub-ledger-to-GL control of the contract position: per legal entity x currency x period,
-- the revenue layer's contract positions (fct_contract_positions summed over contracts) against
-- the ledger's closing balances of the matching accounts (account_balances, carried over months
-- without a row), in transaction currency, account by account:
--   deferred_revenue -> DeferredRevenue, contract_asset -> ContractAsset,
--   unbilled_receivable -> UnbilledAccountsReceivable, refund_liability -> RefundLiability.
--
-- Which months are compared (comparison_status):
-- * every month of the entity's ledger (int_entity_periods_spined: its first to its last period
--   in journal_lines or account_balances), for every currency either side has from the first
--   month either side has it: a currency the positions hold but the ledger never posted is
--   compared against zero, so a missing posting breaks;
-- * not a month outside the entity's ledger ('outside_ledger_periods'): the ledger posts
--   activity dated in a closed period into the first open one, so a closed month before the
--   ledger begins (e.g. 2025-12) has no ledger balance to compare; its activity is compared in
--   the first open month, which holds it;
-- * not a month whose ledger closing lacks activity dated in or before it that the ledger posted
--   into a later period ('posted_in_later_period': a line on the four accounts in that entity and
--   currency with original_date on or before the month end and period after it, e.g. a backdated
--   event or a reversal of a closed month's entry): the revenue layer states that month as dated,
--   the ledger as posted, and the timing difference is compared in the month that holds it.
-- A ledger month after the positions' last month (the close's as-of month) is compared with the
-- positions of that last month (positions_period): nothing is dated after the close date, so
-- what the ledger holds there is the as-of month's position plus what it posted late, e.g. a
-- correction of a locked month booked in the first open one (DECISIONLOG: lock-then-fix).
-- Otherwise 'tied' when all four differences are zero, else 'break'
-- (tests/assert_contract_positions_tie_to_ledger.sql fails on every 'break').
with positions as (
    select * from {{ ref('fct_contract_positions') }}
),

ledger as (
    select * from {{ ref('int_ledger_contract_position_by_period') }}
),

account_balances as (
    select * from {{ ref('stg_finance__account_balances') }}
    where account in ({{ sql_list(contract_position_accounts()) }})
),

position_journal_lines as (
    select * from {{ ref('stg_finance__journal_lines') }}
    where account in ({{ sql_list(contract_position_accounts()) }})
),

entity_periods as (
    select * from {{ ref('int_entity_periods_spined') }}
),

legal_entities as (
    select * from {{ ref('stg_canonical__legal_entities') }}
),

positions_horizon as (
    select max(period) as last_period from positions
),

position_totals as (
    select
        legal_entity,
        currency_code,
        period,
        count(*) as contract_count,
        sum(deferred_revenue_minor) as deferred_revenue_minor,
        sum(contract_asset_minor) as contract_asset_minor,
        sum(unbilled_receivable_minor) as unbilled_receivable_minor,
        sum(refund_liability_minor) as refund_liability_minor
    from positions
    group by legal_entity, currency_code, period
),

first_currency_periods as (
    select legal_entity, currency_code, min(period) as first_period
    from (
        select legal_entity, currency_code, period from account_balances
        union all
        select legal_entity, currency_code, period from position_journal_lines
        union all
        select legal_entity, currency_code, period from position_totals
    )
    group by legal_entity, currency_code
),

ledger_months as (
    select
        entity_periods.legal_entity,
        first_currency_periods.currency_code,
        entity_periods.period,
        true as is_ledger_period
    from entity_periods
    inner join first_currency_periods
        on entity_periods.legal_entity = first_currency_periods.legal_entity
        and entity_periods.period >= first_currency_periods.first_period
),

months_outside_ledger as (
    select
        position_totals.legal_entity,
        position_totals.currency_code,
        position_totals.period,
        false as is_ledger_period
    from position_totals
    left join entity_periods
        on position_totals.legal_entity = entity_periods.legal_entity
        and position_totals.period = entity_periods.period
    where entity_periods.period is null
),

spine as (
    select * from ledger_months
    union all
    select * from months_outside_ledger
),

posted_later as (
    select
        spine.legal_entity,
        spine.currency_code,
        spine.period,
        count(*) as posted_later_line_count
    from spine
    inner join position_journal_lines
        on spine.legal_entity = position_journal_lines.legal_entity
        and spine.currency_code = position_journal_lines.currency_code
        and strftime(position_journal_lines.original_date, '%Y-%m') <= spine.period
        and position_journal_lines.period > spine.period
    group by spine.legal_entity, spine.currency_code, spine.period
),

spine_positions as (
    select
        spine.*,
        case when spine.period > positions_horizon.last_period
            then positions_horizon.last_period else spine.period end as positions_period
    from spine
    cross join positions_horizon
),

compared as (
    select
        spine.legal_entity,
        spine.currency_code,
        spine.period,
        spine.positions_period,
        spine.is_ledger_period,
        cast(coalesce(position_totals.contract_count, 0) as bigint) as contract_count,
        cast(coalesce(posted_later.posted_later_line_count, 0) as bigint)
            as posted_later_line_count,
        {%- for column in ['deferred_revenue', 'contract_asset', 'unbilled_receivable',
                           'refund_liability'] %}
        cast(coalesce(position_totals.{{ column }}_minor, 0) as bigint)
            as positions_{{ column }}_minor,
        -- no ledger value outside the ledger's months; inside, no balance yet = 0
        case when spine.is_ledger_period
            then cast(coalesce(ledger.{{ column }}_closing_minor, 0) as bigint) end
            as ledger_{{ column }}_minor{{ "," if not loop.last }}
        {%- endfor %}
    from spine_positions as spine
    left join position_totals
        on spine.legal_entity = position_totals.legal_entity
        and spine.currency_code = position_totals.currency_code
        and spine.positions_period = position_totals.period
    left join ledger
        on spine.legal_entity = ledger.legal_entity
        and spine.currency_code = ledger.currency_code
        and spine.period = ledger.period
    left join posted_later
        on spine.legal_entity = posted_later.legal_entity
        and spine.currency_code = posted_later.currency_code
        and spine.period = posted_later.period
),

differenced as (
    select
        *,
        positions_deferred_revenue_minor - ledger_deferred_revenue_minor
            as deferred_revenue_difference_minor,
        positions_contract_asset_minor - ledger_contract_asset_minor
            as contract_asset_difference_minor,
        positions_unbilled_receivable_minor - ledger_unbilled_receivable_minor
            as unbilled_receivable_difference_minor,
        positions_refund_liability_minor - ledger_refund_liability_minor
            as refund_liability_difference_minor
    from compared
)

select
    differenced.legal_entity,
    differenced.currency_code,
    legal_entities.functional_currency_code,
    differenced.period,
    differenced.positions_period,
    differenced.contract_count,
    differenced.positions_deferred_revenue_minor,
    differenced.ledger_deferred_revenue_minor,
    cast(differenced.deferred_revenue_difference_minor as bigint)
        as deferred_revenue_difference_minor,
    differenced.positions_contract_asset_minor,
    differenced.ledger_contract_asset_minor,
    cast(differenced.contract_asset_difference_minor as bigint)
        as contract_asset_difference_minor,
    differenced.positions_unbilled_receivable_minor,
    differenced.ledger_unbilled_receivable_minor,
    cast(differenced.unbilled_receivable_difference_minor as bigint)
        as unbilled_receivable_difference_minor,
    differenced.positions_refund_liability_minor,
    differenced.ledger_refund_liability_minor,
    cast(differenced.refund_liability_difference_minor as bigint)
        as refund_liability_difference_minor,
    differenced.is_ledger_period,
    differenced.posted_later_line_count,
    differenced.is_ledger_period and differenced.posted_later_line_count = 0 as is_compared,
    case
        when not differenced.is_ledger_period then 'outside_ledger_periods'
        when differenced.posted_later_line_count > 0 then 'posted_in_later_period'
        when differenced.deferred_revenue_difference_minor = 0
            and differenced.contract_asset_difference_minor = 0
            and differenced.unbilled_receivable_difference_minor = 0
            and differenced.refund_liability_difference_minor = 0
            then 'tied'
        else 'break'
    end as comparison_status
from differenced
left join legal_entities on differenced.legal_entity = legal_entities.legal_entity
order by differenced.legal_entity, differenced.currency_code, differenced.period
