-- (Step 1/4 of the deferred revenue rollforward) Every calendar month of each legal entity, from
-- its first ledger activity to its last period in journal_lines or account_balances, no gaps.
with journal_lines as (
    select * from {{ ref('stg_finance__journal_lines') }}
),

account_balances as (
    select * from {{ ref('stg_finance__account_balances') }}
),

activity as (
    select legal_entity, period from journal_lines
    union all
    select legal_entity, period from account_balances
),

bounds as (
    select
        legal_entity,
        strptime(min(period) || '-01', '%Y-%m-%d') as first_month_at,
        strptime(max(period) || '-01', '%Y-%m-%d') as last_month_at
    from activity
    group by legal_entity
),

months as (
    select
        legal_entity,
        unnest(generate_series(first_month_at, last_month_at, interval 1 month)) as month_at
    from bounds
)

select
    legal_entity,
    strftime(month_at, '%Y-%m') as period,
    cast(month_at as date) as period_start_date
from months
