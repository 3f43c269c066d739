-- Every accepted contract ties to what Salesforce itself states the deal is worth: the
-- contracted opportunity's Amount and its amendment opportunities'. Error severity: a
-- difference means q2c priced the contract from something other than what sales signed.
{{ config(severity='error') }}

select *
from {{ ref('fct_contract_source_tieout') }}
where tieout_status not in ('tied', 'no_opportunity')
