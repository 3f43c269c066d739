-- One row per quarantined record and broken rule, with the team that must fix it, the legal
-- entity and period it is stuck in, the customer and record in words and what the owner can do.
-- Deterministic: no ages computed against a clock (fct_work_queue ages them at the close's
-- as-of date).
with attributed as (
    select * from {{ ref('int_quarantine_attributed_to_legal_entities') }}
),

customers as (
    select * from {{ ref('stg_canonical__customers') }}
),

rules as (
    select * from {{ ref('exception_rules') }}
),

-- a customer held itself (no ERP mapping) is named from its own record
held_customers as (
    select record_id as customer_id, min(json_extract_string(payload, '$.Name')) as customer_name
    from attributed
    where source_table = 'customers' and json_valid(payload)
    group by record_id
),

named as (
    select
        attributed.*,
        coalesce(
            customers.customer_name,
            held_customers.customer_name,
            case when json_valid(attributed.payload)
                then coalesce(json_extract_string(attributed.payload, '$.Name'),
                              json_extract_string(attributed.payload, '$.customer_name'))
            end,
            'unknown customer'
        ) as customer_name,
        case attributed.source_table
            when 'contracts' then 'contract'
            when 'contract_lines' then 'contract line'
            when 'invoices' then 'invoice'
            when 'invoice_lines' then 'invoice line'
            when 'credit_notes' then 'credit note'
            when 'payments' then 'payment'
            when 'refunds' then 'refund'
            when 'invoice_events' then 'invoice event'
            when 'usage' then 'usage event'
            when 'customers' then 'customer'
            when 'files' then 'file'
            when 'landing' then 'record without an id in'
            else replace(attributed.source_table, '_', ' ')
        end as record_kind
    from attributed
    left join customers
        on coalesce(attributed.customer_id, case when attributed.source_table = 'customers'
            then attributed.record_id end) = customers.customer_id
    left join held_customers
        on coalesce(attributed.customer_id, case when attributed.source_table = 'customers'
            then attributed.record_id end) = held_customers.customer_id
)

select distinct
    named.exception_id,
    named.legal_entity,
    named.attribution_basis,
    named.effective_date,
    strftime(named.effective_date, '%Y-%m') as period,
    named.owner,
    named.source_system,
    named.source_table,
    named.record_id,
    named.field,
    named.rule,
    named.customer_id,
    named.customer_name,
    named.customer_name || ' ' || named.record_kind || ' '
        || regexp_replace(split_part(named.record_id, '|', 1), '^(sf|stripe|erp|usage):', '')
        || coalesce(' of ' || strftime(named.effective_date, '%Y-%m-%d'), '')
        as record_label,
    named.reason,
    case when named.rule = 'held_by_upstream'
        then 'nothing on this record: it is released when the record holding it is fixed'
        else coalesce(rules.owner_action, 'correct the record at the source')
    end || '; then run the close again, or decide on it: q2c exceptions waive|resolve|override '
        || left(named.exception_id, 12) as owner_action,
    named.correlation_id,
    named.payload
from named
left join rules on named.rule = rules.rule
order by named.exception_id
