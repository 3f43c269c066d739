-- One row per quarantined record and broken rule, attributed to the legal entity that owns it,
-- first match wins:
--   0. the validation layer attributed it (its own, its parent's or its customer's entity);
--   1. the payload names a known legal_entity;
--   2. the payload names a known customer: customer_id, Stripe `customer` (cus_... with or without
--      the stripe: prefix, matched on customer_id or billing_customer_id), Salesforce `AccountId`
--      (sf:-qualified) -> that customer's legal entity;
--   3. the payload names a known invoice_id -> the invoice's (else its customer's) legal entity;
--   4. the payload's contract_id, else the record's correlation_id, is a known contract ->
--      the contract's legal entity;
-- else legal_entity 'UNASSIGNED'. attribution_basis says which rule matched.
with quarantine as (
    select * from {{ ref('stg_canonical__quarantine') }}
),

legal_entities as (
    select * from {{ ref('stg_canonical__legal_entities') }}
),

customers as (
    select * from {{ ref('stg_canonical__customers') }}
),

invoices as (
    select * from {{ ref('int_invoice_billed_totals') }}
),

contracts as (
    select * from {{ ref('stg_canonical__contracts') }}
),

customer_keys as (
    select customer_key, min(legal_entity) as legal_entity
    from (
        select customer_id as customer_key, legal_entity from customers
        union all
        select billing_customer_id as customer_key, legal_entity
        from customers
        where billing_customer_id is not null
    )
    group by customer_key
),

invoice_entities as (
    select invoice_id, legal_entity from invoices where legal_entity is not null
),

contract_entities as (
    select contract_id, min(legal_entity) as legal_entity
    from contracts
    group by contract_id
),

parsed as (
    select
        -- exception_id: the payload is part of it, so two records sharing a source id
        -- (duplicate_id) are two exceptions, not one
        quarantine.*,
        case when json_valid(payload)
            then json_extract_string(payload, '$.legal_entity') end as payload_legal_entity,
        case when json_valid(payload)
            then json_extract_string(payload, '$.customer_id') end as payload_customer_id,
        case when json_valid(payload)
            then json_extract_string(payload, '$.customer') end as payload_stripe_customer,
        case when json_valid(payload)
            then json_extract_string(payload, '$.AccountId') end as payload_sf_account_id,
        case when json_valid(payload)
            then json_extract_string(payload, '$.invoice_id') end as payload_invoice_id,
        case when json_valid(payload)
            then json_extract_string(payload, '$.contract_id') end as payload_contract_id
    from quarantine
),

matched as (
    select
        parsed.*,
        validated_entity.legal_entity as entity_from_validation,
        named_entity.legal_entity as entity_from_payload,
        coalesce(
            by_customer_id.legal_entity,
            by_stripe_customer.legal_entity,
            by_prefixed_stripe_customer.legal_entity,
            by_sf_account.legal_entity
        ) as entity_from_customer,
        invoice_entities.legal_entity as entity_from_invoice,
        coalesce(by_payload_contract.legal_entity, by_correlation.legal_entity)
            as entity_from_contract
    from parsed
    left join legal_entities as named_entity
        on parsed.payload_legal_entity = named_entity.legal_entity
    left join legal_entities as validated_entity
        on parsed.legal_entity = validated_entity.legal_entity
    left join customer_keys as by_customer_id
        on parsed.payload_customer_id = by_customer_id.customer_key
    left join customer_keys as by_stripe_customer
        on parsed.payload_stripe_customer = by_stripe_customer.customer_key
    left join customer_keys as by_prefixed_stripe_customer
        on 'stripe:' || parsed.payload_stripe_customer = by_prefixed_stripe_customer.customer_key
    left join customer_keys as by_sf_account
        on 'sf:' || parsed.payload_sf_account_id = by_sf_account.customer_key
    left join invoice_entities
        on parsed.payload_invoice_id = invoice_entities.invoice_id
    left join contract_entities as by_payload_contract
        on parsed.payload_contract_id = by_payload_contract.contract_id
    left join contract_entities as by_correlation
        on parsed.correlation_id = by_correlation.contract_id
)

select
    exception_id,
    source_system,
    source_table,
    record_id,
    field,
    rule,
    reason,
    owner,
    correlation_id,
    customer_id,
    effective_date,
    payload,
    coalesce(
        entity_from_validation,
        entity_from_payload,
        entity_from_customer,
        entity_from_invoice,
        entity_from_contract,
        'UNASSIGNED'
    ) as legal_entity,
    case
        when entity_from_validation is not null then 'validation'
        when entity_from_payload is not null then 'payload_legal_entity'
        when entity_from_customer is not null then 'customer'
        when entity_from_invoice is not null then 'invoice'
        when entity_from_contract is not null then 'contract'
        else 'unassigned'
    end as attribution_basis
from matched
