-- One row per Salesforce Opportunity, its latest version received: the amount sales contracted
-- (Opportunity.Amount, major units as Salesforce states them), what kind of deal it is and, for
-- a CPQ amendment, the contract it amends.
select
    record_id as opportunity_id,
    payload ->> '$.Type' as opportunity_type,
    cast(payload ->> '$.Amount' as decimal(38, 6)) as source_amount,
    upper(payload ->> '$.CurrencyIsoCode') as currency_code,
    payload ->> '$.SBQQ__AmendedContract__c' as amended_contract_id,
    cast(payload ->> '$.IsWon' as boolean) as is_won
from {{ source('raw', 'salesforce_opportunities') }}
where not coalesce(is_deleted, false)
qualify row_number() over (partition by record_id
                           order by source_modstamp desc nulls last, extracted_at desc) = 1
