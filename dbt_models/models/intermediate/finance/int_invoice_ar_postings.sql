-- One row per invoice_id that the ledger booked: the net debit to AccountsReceivable of its
-- billing journals (source_type 'invoice', source_id = invoice_id). Net of credits so that an
-- invoice whose proration lines credit the receivable still compares with its billed total.
with journal_lines as (
    select * from {{ ref('stg_finance__journal_lines') }}
    where source_type = 'invoice' and account = 'AccountsReceivable'
)

select
    source_id as invoice_id,
    -- one entity and currency per invoice; several mean the ledger split it, shown as null
    case when count(distinct legal_entity) = 1 then min(legal_entity) end as legal_entity,
    case when count(distinct currency_code) = 1 then min(currency_code) end as currency_code,
    min(period) as ledger_period,
    count(*) as ar_line_count,
    cast(sum(debit_minor) - sum(credit_minor) as bigint) as ar_debit_minor
from journal_lines
group by source_id
