-- One row per revenue contract x legal entity x period x currency: the closing contract position
-- the revenue layer computes for the contract at each month end (finance.contract_positions),
-- independently of the ledger postings, in the contract's (transaction) currency. A month with
-- no row for a contract is a month in which all four balances are zero and nothing happened.
with contract_positions as (
    select * from {{ ref('stg_finance__contract_positions') }}
),

legal_entities as (
    select * from {{ ref('stg_canonical__legal_entities') }}
)

select
    contract_positions.revenue_contract_id,
    contract_positions.legal_entity,
    contract_positions.period,
    contract_positions.currency_code,
    legal_entities.functional_currency_code,
    contract_positions.deferred_revenue_minor,
    contract_positions.contract_asset_minor,
    contract_positions.unbilled_receivable_minor,
    contract_positions.refund_liability_minor,
    contract_positions.net_contract_position_minor
from contract_positions
left join legal_entities on contract_positions.legal_entity = legal_entities.legal_entity
order by
    contract_positions.legal_entity,
    contract_positions.currency_code,
    contract_positions.revenue_contract_id,
    contract_positions.period
