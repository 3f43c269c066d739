-- One row per exception of the last close (fct_exceptions) with its decision state: its own
-- latest settling decision (ledger.decisions: waive, resolve, override), else, for a record held
-- by another (held_by_upstream), the state of its roots once none of them is open: the other
-- exceptions of its correlation and the customer record holding every record of that customer
-- (the same rule as `q2c exceptions list`, q2c_pipeline/close/exceptions.py).
with exceptions as (
    select * from {{ ref('fct_exceptions') }}
),

latest_decisions as (
    select exception_id, action
    from {{ source('ledger', 'decisions') }}
    where exception_id is not null and action in ('waive', 'resolve', 'override')
    qualify row_number() over (partition by exception_id order by decision_seq desc) = 1
),

own as (
    select
        exceptions.exception_id,
        exceptions.rule,
        exceptions.correlation_id,
        exceptions.customer_id,
        exceptions.source_table,
        exceptions.record_id,
        case latest_decisions.action
            when 'waive' then 'waived' when 'resolve' then 'resolved'
            when 'override' then 'override_pending'
        end as own_state
    from exceptions
    left join latest_decisions on exceptions.exception_id = latest_decisions.exception_id
),

followed as (
    select
        held.exception_id,
        case when bool_or(coalesce(roots.own_state, 'open') in ('open', 'override_pending'))
            then null else min(roots.own_state) end as followed_state
    from own as held
    inner join own as roots
        on roots.rule <> 'held_by_upstream'
        and (roots.correlation_id = held.correlation_id
             or (roots.source_table = 'customers' and roots.record_id = held.customer_id))
    where held.rule = 'held_by_upstream'
    group by held.exception_id
)

select
    own.exception_id,
    own.own_state,
    followed.followed_state,
    coalesce(own.own_state, followed.followed_state, 'open') as state
from own
left join followed on own.exception_id = followed.exception_id
