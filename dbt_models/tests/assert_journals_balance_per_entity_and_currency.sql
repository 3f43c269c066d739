-- Every journal balances: debits = credits per journal_id, legal entity and transaction
-- currency, and in functional currency per journal_id and legal entity (an FX gain or loss line
-- may carry only a functional amount). One failing row per unbalanced journal and currency.
with journal_lines as (
    select * from {{ ref('stg_finance__journal_lines') }}
),

transaction_imbalances as (
    select
        journal_id,
        legal_entity,
        currency_code,
        'transaction' as measure,
        sum(debit_minor) - sum(credit_minor) as imbalance_minor
    from journal_lines
    group by journal_id, legal_entity, currency_code
    having sum(debit_minor) <> sum(credit_minor)
),

functional_imbalances as (
    select
        journal_id,
        legal_entity,
        null as currency_code,
        'functional' as measure,
        sum(debit_functional_minor) - sum(credit_functional_minor) as imbalance_minor
    from journal_lines
    group by journal_id, legal_entity
    having sum(debit_functional_minor) <> sum(credit_functional_minor)
)

select * from transaction_imbalances
union all
select * from functional_imbalances
