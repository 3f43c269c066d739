-- Sub-ledger-to-GL control: in every month the ledger holds for a legal entity (see
-- fct_contract_position_reconciliation for which months are compared and why), the revenue
-- layer's contract positions summed over contracts equal the ledger's closing balances of
-- DeferredRevenue, ContractAsset, UnbilledAccountsReceivable and RefundLiability per currency,
-- in transaction currency. One failing row per entity, currency and month that breaks.
select *
from {{ ref('fct_contract_position_reconciliation') }}
where comparison_status = 'break'
