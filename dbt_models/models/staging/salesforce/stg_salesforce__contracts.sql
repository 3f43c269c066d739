-- One row per Salesforce Contract, its latest version received, with the opportunity it was
-- contracted from (SBQQ__Opportunity__c).
select
    record_id as contract_record_id,
    payload ->> '$.SBQQ__Opportunity__c' as opportunity_id
from {{ source('raw', 'salesforce_contracts') }}
where not coalesce(is_deleted, false)
qualify row_number() over (partition by record_id
                           order by source_modstamp desc nulls last, extracted_at desc) = 1
