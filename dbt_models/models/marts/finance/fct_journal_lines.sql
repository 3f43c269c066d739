-- One row per journal line, with the GL account each logical account maps to for its entity.
with journal_lines as (
    select * from {{ ref('stg_finance__journal_lines') }}
),

chart_of_accounts as (
    select * from {{ ref('stg_canonical__chart_of_accounts') }}
)

select
    journal_lines.journal_id,
    journal_lines.line_number,
    journal_lines.journal_key,
    journal_lines.legal_entity,
    journal_lines.period,
    journal_lines.entry_date,
    journal_lines.original_date,
    journal_lines.account,
    case
        when journal_lines.account in ('{{ debit_normal_accounts() | join("', '") }}')
            then 'debit'
        when journal_lines.account in ('{{ credit_normal_accounts() | join("', '") }}')
            then 'credit'
    end as normal_balance,
    chart_of_accounts.gl_account,
    chart_of_accounts.gl_name,
    chart_of_accounts.department,
    journal_lines.debit_minor,
    journal_lines.credit_minor,
    journal_lines.currency_code,
    journal_lines.debit_functional_minor,
    journal_lines.credit_functional_minor,
    journal_lines.functional_currency_code,
    journal_lines.source_type,
    journal_lines.source_id,
    journal_lines.source_line_id,
    journal_lines.contract_id,
    journal_lines.customer_id,
    journal_lines.correlation_id,
    journal_lines.memo
from journal_lines
left join chart_of_accounts
    on journal_lines.legal_entity = chart_of_accounts.legal_entity
    and journal_lines.account = chart_of_accounts.account
order by journal_lines.journal_id, journal_lines.line_number
