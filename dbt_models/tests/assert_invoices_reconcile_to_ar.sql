-- Every canonical invoice is booked to AccountsReceivable for exactly what it bills, and the ledger
-- books no invoice that billing does not know. Error severity: a billing/AR break blocks the close.
{{ config(severity='error') }}

select *
from {{ ref('fct_invoice_ar_reconciliation') }}
where reconciliation_status <> 'matched'
