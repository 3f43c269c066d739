with source as (
    select * from {{ source('finance', 'journal_lines') }}
)

select
    cast(journal_id as varchar) as journal_id,
    cast(journal_key as varchar) as journal_key,
    cast(line_number as bigint) as line_number,
    cast(legal_entity as varchar) as legal_entity,
    cast(period as varchar) as period,
    cast(entry_date as date) as entry_date,
    cast(original_date as date) as original_date,
    cast(account as varchar) as account,
    cast(debit as bigint) as debit_minor,
    cast(credit as bigint) as credit_minor,
    cast(currency as varchar) as currency_code,
    cast(debit_functional as bigint) as debit_functional_minor,
    cast(credit_functional as bigint) as credit_functional_minor,
    cast(functional_currency as varchar) as functional_currency_code,
    cast(source_type as varchar) as source_type,
    cast(source_id as varchar) as source_id,
    cast(source_line_id as varchar) as source_line_id,
    cast(contract_id as varchar) as contract_id,
    cast(customer_id as varchar) as customer_id,
    cast(correlation_id as varchar) as correlation_id,
    cast(memo as varchar) as memo
from source
