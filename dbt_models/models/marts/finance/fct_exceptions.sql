-- One row per quarantined record and broken rule, with the team that must fix it and the legal
-- entity it belongs to. Deterministic: no ages computed against a clock.
with attributed as (
    select * from {{ ref('int_quarantine_attributed_to_legal_entities') }}
)

select distinct
    exception_id,
    legal_entity,
    attribution_basis,
    owner,
    source_system,
    source_table,
    record_id,
    field,
    rule,
    reason,
    correlation_id,
    payload
from attributed
order by exception_id
