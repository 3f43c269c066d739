-- Every invoice q2c accepted ties to what Stripe itself states: subtotal, discounts, taxes, total
-- and amount paid, in the canonical model and in the ledger. Error severity: a difference means q2c
-- mis-read the source (or the ledger missed a posting), and the close must not pass over it.
{{ config(severity='error') }}

select *
from {{ ref('fct_invoice_source_tieout') }}
where tieout_status <> 'tied'
