-- One row per legal entity x currency x period: the rollforward of the net contract position
-- P = DeferredRevenue + RefundLiability - ContractAsset - UnbilledAccountsReceivable from
-- journal_lines movements, tied to the ledger closing balances of the four accounts in
-- account_balances. Identity, in transaction and in functional currency:
--   closing = opening + billings - revenue - reductions - settlements + fx + other_movements
--   opening = previous period's closing (0 before the first period)
-- (The name predates the refund liability and contract asset; users query it by this name.)
with movements as (
    select * from {{ ref('int_contract_position_movements_by_period') }}
),

ledger as (
    select * from {{ ref('int_ledger_contract_position_by_period') }}
),

legal_entities as (
    select * from {{ ref('stg_canonical__legal_entities') }}
),

netted as (
    select
        *,
        billings_minor - revenue_minor - reductions_minor - settlements_minor + fx_minor
            + other_movements_minor as net_movement_minor,
        billings_functional_minor - revenue_functional_minor - reductions_functional_minor
            - settlements_functional_minor + fx_functional_minor
            + other_movements_functional_minor as net_movement_functional_minor
    from movements
),

rolled as (
    select
        *,
        cast(coalesce(sum(net_movement_minor) over prior_periods, 0) as bigint) as opening_minor,
        cast(coalesce(sum(net_movement_functional_minor) over prior_periods, 0) as bigint)
            as opening_functional_minor
    from netted
    window prior_periods as (
        partition by legal_entity, currency_code
        order by period
        rows between unbounded preceding and 1 preceding
    )
),

compared as (
    select
        rolled.legal_entity,
        rolled.currency_code,
        legal_entities.functional_currency_code,
        rolled.period,
        rolled.opening_minor,
        rolled.billings_minor,
        rolled.revenue_minor,
        rolled.reductions_minor,
        rolled.settlements_minor,
        rolled.fx_minor,
        rolled.other_movements_minor,
        rolled.opening_minor + rolled.net_movement_minor as closing_minor,
        ledger.deferred_revenue_closing_minor,
        ledger.refund_liability_closing_minor,
        ledger.contract_asset_closing_minor,
        ledger.unbilled_receivable_closing_minor,
        ledger.ledger_closing_minor,
        rolled.opening_functional_minor,
        rolled.billings_functional_minor,
        rolled.revenue_functional_minor,
        rolled.reductions_functional_minor,
        rolled.settlements_functional_minor,
        rolled.fx_functional_minor,
        rolled.other_movements_functional_minor,
        rolled.opening_functional_minor + rolled.net_movement_functional_minor
            as closing_functional_minor,
        ledger.deferred_revenue_closing_functional_minor,
        ledger.refund_liability_closing_functional_minor,
        ledger.contract_asset_closing_functional_minor,
        ledger.unbilled_receivable_closing_functional_minor,
        ledger.ledger_closing_functional_minor
    from rolled
    left join ledger
        on rolled.legal_entity = ledger.legal_entity
        and rolled.currency_code = ledger.currency_code
        and rolled.period = ledger.period
    left join legal_entities on rolled.legal_entity = legal_entities.legal_entity
)

select
    legal_entity,
    currency_code,
    functional_currency_code,
    period,
    opening_minor,
    billings_minor,
    revenue_minor,
    reductions_minor,
    settlements_minor,
    fx_minor,
    other_movements_minor,
    cast(closing_minor as bigint) as closing_minor,
    deferred_revenue_closing_minor,
    refund_liability_closing_minor,
    contract_asset_closing_minor,
    unbilled_receivable_closing_minor,
    ledger_closing_minor,
    cast(closing_minor - ledger_closing_minor as bigint) as difference_minor,
    opening_functional_minor,
    billings_functional_minor,
    revenue_functional_minor,
    reductions_functional_minor,
    settlements_functional_minor,
    fx_functional_minor,
    other_movements_functional_minor,
    cast(closing_functional_minor as bigint) as closing_functional_minor,
    deferred_revenue_closing_functional_minor,
    refund_liability_closing_functional_minor,
    contract_asset_closing_functional_minor,
    unbilled_receivable_closing_functional_minor,
    ledger_closing_functional_minor,
    cast(closing_functional_minor - ledger_closing_functional_minor as bigint)
        as difference_functional_minor,
    closing_minor = ledger_closing_minor
        and closing_functional_minor = ledger_closing_functional_minor as is_tied
from compared
order by legal_entity, currency_code, period
