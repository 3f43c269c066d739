-- (Step 4/4 of the deferred revenue rollforward) The ledger's closing net contract position per
-- legal entity x currency x period: closing DeferredRevenue minus closing
-- UnbilledAccountsReceivable from finance.account_balances. A period with no balance row for an
-- account carries that account's latest earlier closing balance (no row = no movement).
with position_periods as (
    select * from {{ ref('int_contract_position_movements_by_period') }}
),

account_balances as (
    select * from {{ ref('stg_finance__account_balances') }}
    where account in ('DeferredRevenue', 'UnbilledAccountsReceivable')
),

spine_accounts as (
    select
        position_periods.legal_entity,
        position_periods.currency_code,
        position_periods.period,
        accounts.account
    from position_periods
    cross join (
        select unnest(['DeferredRevenue', 'UnbilledAccountsReceivable']) as account
    ) as accounts
),

latest_balances as (
    select
        spine_accounts.legal_entity,
        spine_accounts.currency_code,
        spine_accounts.period,
        spine_accounts.account,
        coalesce(account_balances.closing_balance_minor, 0) as closing_balance_minor,
        coalesce(account_balances.closing_balance_functional_minor, 0)
            as closing_balance_functional_minor
    from spine_accounts
    asof left join account_balances
        on spine_accounts.legal_entity = account_balances.legal_entity
        and spine_accounts.currency_code = account_balances.currency_code
        and spine_accounts.account = account_balances.account
        and spine_accounts.period >= account_balances.period
)

select
    legal_entity,
    currency_code,
    period,
    cast(sum(
        case when account = 'DeferredRevenue' then closing_balance_minor
        else -closing_balance_minor end
    ) as bigint) as ledger_closing_minor,
    cast(sum(
        case when account = 'DeferredRevenue' then closing_balance_functional_minor
        else -closing_balance_functional_minor end
    ) as bigint) as ledger_closing_functional_minor
from latest_balances
group by legal_entity, currency_code, period
