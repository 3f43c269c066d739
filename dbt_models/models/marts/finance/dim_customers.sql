-- One row per customer, with its legal entity's functional currency.
with customers as (
    select * from {{ ref('stg_canonical__customers') }}
),

legal_entities as (
    select * from {{ ref('stg_canonical__legal_entities') }}
)

select
    customers.customer_id,
    customers.customer_name,
    customers.legal_entity,
    customers.currency_code,
    legal_entities.functional_currency_code,
    customers.parent_customer_id,
    customers.country,
    customers.tax_region,
    customers.erp_customer_id,
    customers.billing_customer_id,
    customers.source_system,
    customers.source_id,
    customers.correlation_id
from customers
left join legal_entities on customers.legal_entity = legal_entities.legal_entity
order by customers.customer_id
