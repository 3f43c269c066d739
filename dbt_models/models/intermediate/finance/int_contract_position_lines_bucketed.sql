-- (Step 2/4 of the deferred revenue rollforward) Journal lines on the four accounts of the net
-- contract position, DeferredRevenue + RefundLiability - ContractAsset -
-- UnbilledAccountsReceivable, signed as movements of that position and put in the rollforward
-- bucket of their journal's source_type.
--
-- DeferredRevenue and RefundLiability are credit-normal, ContractAsset and
-- UnbilledAccountsReceivable debit-normal, so on all four a credit raises the position and a
-- debit lowers it: movement = credit - debit.
with journal_lines as (
    select * from {{ ref('stg_finance__journal_lines') }}
)

select
    journal_id,
    line_number,
    legal_entity,
    currency_code,
    period,
    account,
    source_type,
    credit_minor - debit_minor as position_movement_minor,
    credit_functional_minor - debit_functional_minor as position_movement_functional_minor,
    case
        -- a payment moves the position only when it is a one-time charge with no invoice
        -- (canonical model: recognized when paid), which is a billing settled in cash
        when source_type in ('invoice', 'payment') then 'billings'
        when source_type in ('revenue', 'usage') then 'revenue'
        -- a refund or credit note paying back (or crediting) the refund liability a
        -- cancellation left settles consideration already owed; it reduces no revenue (and the
        -- void of such a credit note reopens what it settled)
        when account = 'RefundLiability'
            and source_type in ('credit_note', 'credit_note_void', 'refund')
            then 'settlements'
        -- reductions and their reversals (a voided credit note, cash recovered after write-off)
        when source_type in (
            'credit_note', 'credit_note_void', 'refund', 'invoice_void', 'uncollectible',
            'recovery'
        ) then 'reductions'
        -- month-end remeasurement of the monetary position accounts (ContractAsset,
        -- UnbilledAccountsReceivable, RefundLiability) and its day-1 reversal: functional only
        when source_type = 'fx_remeasurement' then 'fx'
        -- contract_position reclassifications between the four accounts (a modification or a
        -- price change) and anything else
        else 'other'
    end as position_bucket
from journal_lines
where account in ({{ sql_list(contract_position_accounts()) }})
