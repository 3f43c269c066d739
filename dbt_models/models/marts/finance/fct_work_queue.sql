{{ config(tags=['after_posting']) }}
-- The close's work queues: one row per thing waiting on a team, with the customer and record in
-- words, since when it waits, its age at the close's as-of date (not the wall clock, so a re-run
-- gives the same table), the queue's SLA and what the owner can do. Built after the ERP outbox
-- posted (tag after_posting), so "not in the ERP" means the ERP does not hold it after this run.
--   contracts_not_billed            activated contracts with no invoice (billing_ops)
--   invoices_not_in_erp             finalized invoices whose receivable journal the ERP lacks
--   obligations_pending_allocation  contract lines with no allocation (nothing is recognized)
--   payments_not_applied            cash received that is held, not applied to its invoice
--   failed_payment_attempts         open invoices Stripe tried to collect and could not
--   amendments_awaiting_review      price decreases, backdated or future-dated amendments and
--                                   amendments whose treatment was chosen by default
--   quarantined_records             every quarantined record, by owner and age
with close_run as (
    select cast(as_of as date) as as_of_date
    from {{ source('ledger', 'close_runs') }}
    order by recorded_at desc
    limit 1
),

customers as (
    select * from {{ ref('stg_canonical__customers') }}
),

contracts as (
    select * from {{ ref('stg_canonical__contracts') }}
),

contract_lines as (
    select * from {{ ref('stg_canonical__contract_lines') }}
),

-- one row per contract: its latest version's entity, customer and currency
contract_latest as (
    select * from contracts
    qualify row_number() over (partition by contract_id order by contract_version desc) = 1
),

invoices as (
    select * from {{ ref('stg_canonical__invoices') }}
),

exceptions as (
    select * from {{ ref('fct_exceptions') }}
),

latest_decisions as (
    select exception_id, action, actor, reason
    from {{ source('ledger', 'decisions') }}
    where exception_id is not null and action in ('waive', 'resolve', 'override')
    qualify row_number() over (partition by exception_id order by decision_seq desc) = 1
),

exception_states as (
    select * from {{ ref('int_exception_states') }}
),

held_invoice_ids as (
    select distinct record_id as invoice_id, correlation_id from exceptions
    where source_table = 'invoices'
),

contract_heads as (
    select
        contract_latest.contract_id,
        min(contract_latest.legal_entity) as legal_entity,
        min(contract_latest.customer_id) as customer_id,
        min(contract_latest.currency_code) as currency_code,
        cast(min(contract_lines.service_start_at) as date) as since_date,
        sum(contract_lines.amount_minor) as amount_minor
    from contract_latest
    inner join contract_lines on contract_latest.contract_id = contract_lines.contract_id
    group by contract_latest.contract_id
),

contracts_not_billed as (
    select
        'contracts_not_billed' as queue,
        'billing_ops' as owner,
        heads.legal_entity,
        heads.customer_id,
        'contract ' || replace(heads.contract_id, 'sf:', '') as record_kind,
        heads.contract_id as record_id,
        heads.since_date,
        'activated in Salesforce from ' || heads.since_date || '; no invoice in Stripe' as detail,
        'set up the subscription in Stripe (or end the contract in Salesforce)' as owner_action,
        cast(null as varchar) as exception_id,
        heads.amount_minor,
        heads.currency_code
    from contract_heads as heads
    cross join close_run
    where heads.since_date <= close_run.as_of_date
        and not exists (select 1 from invoices where invoices.contract_id = heads.contract_id)
        and not exists (
            select 1 from held_invoice_ids where held_invoice_ids.correlation_id = heads.contract_id
        )
),

posted_invoices as (
    select distinct journals.source_id as invoice_id
    from {{ ref('stg_finance__journal_lines') }} as journals
    inner join {{ source('ledger', 'erp_outbox') }} as outbox
        on journals.journal_key = outbox.journal_key
    where journals.source_type = 'invoice' and outbox.status = 'posted'
),

invoices_not_in_erp as (
    select
        'invoices_not_in_erp' as queue,
        'billing_ops' as owner,
        invoices.legal_entity,
        invoices.customer_id,
        'invoice ' || replace(invoices.invoice_id, 'stripe:', '') as record_kind,
        invoices.invoice_id as record_id,
        cast(invoices.finalized_at as date) as since_date,
        'finalized ' || cast(invoices.finalized_at as date)
            || '; its receivable journal is not posted to the ERP' as detail,
        'look at ledger.erp_outbox for the ERP''s reason and post again' as owner_action,
        cast(null as varchar) as exception_id,
        cast(null as bigint) as amount_minor,
        invoices.currency_code
    from invoices
    where invoices.invoice_id not in (select invoice_id from posted_invoices)
    union all
    select
        'invoices_not_in_erp',
        exceptions.owner,
        exceptions.legal_entity,
        exceptions.customer_id,
        'invoice ' || replace(exceptions.record_id, 'stripe:', ''),
        exceptions.record_id,
        exceptions.effective_date,
        'held in the quarantine (' || exceptions.rule || '): not journaled, not in the ERP',
        exceptions.owner_action,
        exceptions.exception_id,
        cast(null as bigint),
        cast(null as varchar)
    from exceptions
    where exceptions.source_table = 'invoices'
        -- a held change of an invoice whose booked version stands is in the ERP already
        and exceptions.record_id not in (select invoice_id from invoices)
    -- one row per invoice (a duplicated id has one exception per version)
    qualify row_number() over (partition by exceptions.record_id order by exceptions.exception_id)
        = 1
),

obligations_pending_allocation as (
    select
        'obligations_pending_allocation' as queue,
        'controllership' as owner,
        contract_latest.legal_entity,
        contract_latest.customer_id,
        'contract line ' || replace(contract_lines.contract_line_id, 'sf:', '') as record_kind,
        contract_lines.contract_line_id as record_id,
        cast(contract_lines.service_start_at as date) as since_date,
        'no allocation of the transaction price: nothing is recognized' as detail,
        'check the line''s product and SSP in the ERP catalog' as owner_action,
        cast(null as varchar) as exception_id,
        contract_lines.amount_minor,
        contract_latest.currency_code
    from contract_lines
    inner join contract_latest on contract_lines.contract_id = contract_latest.contract_id
    -- usage is recognized as it is billed, an amendment delta under the line it revises
    where coalesce(contract_lines.revenue_pattern, '') <> 'usage'
        and contract_lines.revises_line_id is null
        and contract_lines.contract_line_id not in (
            select contract_line_id from {{ ref('stg_finance__allocation') }}
        )
    union all
    select
        'obligations_pending_allocation',
        exceptions.owner,
        exceptions.legal_entity,
        exceptions.customer_id,
        'contract line ' || replace(exceptions.record_id, 'sf:', ''),
        exceptions.record_id,
        exceptions.effective_date,
        'held in the quarantine (' || exceptions.rule || '): not allocated, not recognized',
        exceptions.owner_action,
        exceptions.exception_id,
        case when json_valid(exceptions.payload) then try_cast(round(100 * try_cast(
            json_extract_string(exceptions.payload, '$.SBQQ__NetPrice__c') as decimal(18, 2))
            * try_cast(json_extract_string(exceptions.payload, '$.SBQQ__Quantity__c')
                as decimal(18, 4))) as bigint) end,
        case when json_valid(exceptions.payload)
            then json_extract_string(exceptions.payload, '$.CurrencyIsoCode') end
    from exceptions
    where exceptions.source_table = 'contract_lines'
),

payments_not_applied as (
    select
        'payments_not_applied' as queue,
        exceptions.owner,
        exceptions.legal_entity,
        exceptions.customer_id,
        'payment ' || replace(exceptions.record_id, 'stripe:', '') as record_kind,
        exceptions.record_id,
        exceptions.effective_date as since_date,
        'cash received, held in the quarantine (' || exceptions.rule
            || '): not applied to its invoice' as detail,
        exceptions.owner_action,
        exceptions.exception_id,
        case when json_valid(exceptions.payload)
            then try_cast(json_extract_string(exceptions.payload, '$.amount_paid') as bigint)
        end as amount_minor,
        case when json_valid(exceptions.payload)
            then upper(json_extract_string(exceptions.payload, '$.currency')) end
            as currency_code
    from exceptions
    where exceptions.source_table = 'payments'
),

failed_payment_attempts as (
    select
        'failed_payment_attempts' as queue,
        'billing_ops' as owner,
        coalesce(invoices.legal_entity, customers.legal_entity) as legal_entity,
        coalesce(invoices.customer_id, customers.customer_id) as customer_id,
        'invoice ' || stripe.record_id as record_kind,
        'stripe:' || stripe.record_id as record_id,
        cast(coalesce(stripe.source_due_at, invoices.finalized_at) as date) as since_date,
        stripe.attempt_count || ' failed payment attempt(s); '
            || stripe.source_remaining_minor || ' minor units still due' as detail,
        'contact the customer or update the payment method in Stripe' as owner_action,
        cast(null as varchar) as exception_id,
        stripe.source_remaining_minor as amount_minor,
        stripe.currency_code
    from {{ ref('stg_billing__stripe_invoices') }} as stripe
    left join invoices on invoices.invoice_id = 'stripe:' || stripe.record_id
    left join customers
        on customers.billing_customer_id in (stripe.stripe_customer_id,
                                             'stripe:' || stripe.stripe_customer_id)
    where stripe.source_status = 'open' and stripe.attempt_count > 0
    qualify row_number() over (partition by stripe.record_id order by customers.customer_id)
        = 1
),

amendment_lines as (
    select
        contract_lines.*,
        contract_latest.legal_entity,
        contract_latest.customer_id,
        contract_latest.currency_code,
        amendment.signed_at,
        close_run.as_of_date,
        list_filter([
            case when contract_lines.amount_minor < 0 then 'a price decrease' end,
            case when contract_lines.effective_at < amendment.signed_at
                then 'backdated (effective ' || cast(contract_lines.effective_at as date)
                    || ', signed ' || cast(amendment.signed_at as date) || ')' end,
            case when contract_lines.effective_at > close_run.as_of_date
                then 'future-dated (effective ' || cast(contract_lines.effective_at as date)
                    || ')' end,
            case when contract_lines.modification_treatment is null
                then 'its treatment was chosen by default (prospective)' end
        ], lambda reason: reason is not null) as reasons
    from contract_lines
    inner join contract_latest on contract_lines.contract_id = contract_latest.contract_id
    -- the amendment (contract version) that took effect on the line's effective date
    left join (
        select contract_id, effective_at, max(signed_at) as signed_at
        from contracts group by contract_id, effective_at
    ) as amendment
        on contract_lines.contract_id = amendment.contract_id
        and contract_lines.effective_at = amendment.effective_at
    cross join close_run
    where contract_lines.revises_line_id is not null
),

amendments_awaiting_review as (
    select
        'amendments_awaiting_review' as queue,
        'controllership' as owner,
        legal_entity,
        customer_id,
        'amendment line ' || replace(contract_line_id, 'sf:', '') as record_kind,
        contract_line_id as record_id,
        cast(effective_at as date) as since_date,
        array_to_string(reasons, '; ') as detail,
        'review the treatment (ASC 606-10-25-12/13); keep it: q2c exceptions resolve ITEM; '
            || 'choose another: q2c exceptions override ITEM --set '
            || 'modification_treatment=catch_up (or prospective, separate_contract)'
            as owner_action,
        cast(null as varchar) as exception_id,
        amount_minor,
        currency_code
    from amendment_lines
    where len(reasons) > 0
),

quarantined_records as (
    select
        'quarantined_records' as queue,
        exceptions.owner,
        exceptions.legal_entity,
        exceptions.customer_id,
        exceptions.rule as record_kind,
        exceptions.record_id,
        exceptions.effective_date as since_date,
        exceptions.reason as detail,
        exceptions.owner_action,
        exceptions.exception_id,
        cast(null as bigint) as amount_minor,
        cast(null as varchar) as currency_code
    from exceptions
),

queues as (
    select * from contracts_not_billed
    union all select * from invoices_not_in_erp
    union all select * from obligations_pending_allocation
    union all select * from payments_not_applied
    union all select * from failed_payment_attempts
    union all select * from amendments_awaiting_review
    union all select * from quarantined_records
),

named as (
    select
        queues.*,
        md5(queues.queue || '|' || queues.record_id || '|' || coalesce(queues.exception_id, ''))
            as item_id,
        coalesce(customers.customer_name, exception_names.customer_name, 'unknown customer')
            as customer_name
    from queues
    left join customers on queues.customer_id = customers.customer_id
    left join (
        select exception_id, min(customer_name) as customer_name from exceptions group by 1
    ) as exception_names on queues.exception_id = exception_names.exception_id
)

select
    named.queue,
    named.item_id,
    named.owner,
    named.legal_entity,
    named.customer_name,
    case when named.queue = 'quarantined_records'
        then exceptions.record_label
        else named.customer_name || ' ' || named.record_kind
            || coalesce(' of ' || strftime(named.since_date, '%Y-%m-%d'), '')
    end as record_label,
    named.record_id,
    named.since_date,
    close_run.as_of_date,
    cast(date_diff('day', named.since_date, close_run.as_of_date) as integer) as age_days,
    cast((map {{ var('work_queue_sla_days') }})[named.queue] as integer) as sla_days,
    coalesce(
        date_diff('day', named.since_date, close_run.as_of_date)
            > (map {{ var('work_queue_sla_days') }})[named.queue],
        false
    ) as is_past_sla,
    coalesce(
        case latest_decisions.action
            when 'waive' then 'waived' when 'resolve' then 'resolved'
            when 'override' then 'override_pending'
        end,
        exception_states.followed_state,
        'open'
    ) as decision_state,
    named.detail,
    replace(named.owner_action, 'ITEM', left(named.item_id, 12)) as owner_action,
    named.exception_id,
    cast(named.amount_minor as bigint) as amount_minor,
    named.currency_code
from named
cross join close_run
left join exceptions on named.exception_id = exceptions.exception_id
left join latest_decisions
    on coalesce(named.exception_id, named.item_id) = latest_decisions.exception_id
left join exception_states on named.exception_id = exception_states.exception_id
order by named.queue, named.legal_entity, named.since_date, named.record_id, named.item_id
