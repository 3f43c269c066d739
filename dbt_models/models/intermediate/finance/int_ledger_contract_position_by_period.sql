-- (Step 4/4 of the deferred revenue rollforward) The ledger's closing contract position per
-- legal entity x currency x period from finance.account_balances: the closing balance of each of
-- the four accounts (each signed by its own normal balance, so all positive in the usual case)
-- and the net position DeferredRevenue + RefundLiability - ContractAsset -
-- UnbilledAccountsReceivable. A period with no balance row for an account carries that
-- account's latest earlier closing balance (no row = no movement).
with position_periods as (
    select * from {{ ref('int_contract_position_movements_by_period') }}
),

account_balances as (
    select * from {{ ref('stg_finance__account_balances') }}
    where account in ({{ sql_list(contract_position_accounts()) }})
),

spine_accounts as (
    select
        position_periods.legal_entity,
        position_periods.currency_code,
        position_periods.period,
        accounts.account
    from position_periods
    cross join (
        select unnest([{{ sql_list(contract_position_accounts()) }}]) as account
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
),

by_account as (
    select
        legal_entity,
        currency_code,
        period,
        {%- for account, column in [
            ('DeferredRevenue', 'deferred_revenue'),
            ('RefundLiability', 'refund_liability'),
            ('ContractAsset', 'contract_asset'),
            ('UnbilledAccountsReceivable', 'unbilled_receivable'),
        ] %}
        cast(sum(closing_balance_minor) filter (where account = '{{ account }}') as bigint)
            as {{ column }}_closing_minor,
        cast(sum(closing_balance_functional_minor) filter (where account = '{{ account }}')
            as bigint) as {{ column }}_closing_functional_minor{{ "," if not loop.last }}
        {%- endfor %}
    from latest_balances
    group by legal_entity, currency_code, period
)

select
    *,
    cast(
        deferred_revenue_closing_minor + refund_liability_closing_minor
        - contract_asset_closing_minor - unbilled_receivable_closing_minor
        as bigint
    ) as ledger_closing_minor,
    cast(
        deferred_revenue_closing_functional_minor + refund_liability_closing_functional_minor
        - contract_asset_closing_functional_minor - unbilled_receivable_closing_functional_minor
        as bigint
    ) as ledger_closing_functional_minor
from by_account
