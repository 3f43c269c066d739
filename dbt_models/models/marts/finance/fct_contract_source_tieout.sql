-- Per Salesforce contract q2c accepted: what Salesforce states the deal is worth (the amount of
-- the opportunity it was contracted from, and of each CPQ amendment opportunity) against the
-- contract lines q2c holds (original lines; amendment deltas). A control against the source:
-- a line priced or counted wrong in the mapping, or a deal edited after it was contracted,
-- shows here, where q2c's own allocation would agree with itself.
--   original_differs    the contracted opportunity's Amount <> the original lines' amounts
--   amendments_differs  the amendment opportunities' Amounts <> the amendment deltas
--   currency_differs    an opportunity is in another currency than the contract
--   no_amount           Salesforce states no Amount for one of them (compared with nothing)
--   no_opportunity      Salesforce names no opportunity for the contract (not compared)
with contracts as (
    select distinct contract_id, currency_code, source_id
    from {{ ref('stg_canonical__contracts') }}
    where source_system = 'salesforce'
),

lines as (
    select
        contract_id,
        sum(case when revises_line_id is null then amount_minor else 0 end) as original_minor,
        sum(case when revises_line_id is not null then amount_minor else 0 end)
            as amendments_minor
    from {{ ref('stg_canonical__contract_lines') }}
    group by contract_id
),

opportunities as (
    select * from {{ ref('stg_salesforce__opportunities') }}
),

contracted as (
    select c.contract_record_id, o.source_amount, o.currency_code
    from {{ ref('stg_salesforce__contracts') }} as c
    inner join opportunities as o on o.opportunity_id = c.opportunity_id
),

amendments as (
    -- won amendments only (an open or lost one changed nothing); any in another currency is
    -- flagged rather than summed as if it were the contract's
    select
        amended_contract_id,
        sum(source_amount) as source_amount,
        count(*) as amendments,
        count(*) filter (where source_amount is null) as missing_amounts,
        min(currency_code) as lowest_currency,
        max(currency_code) as highest_currency
    from opportunities
    where opportunity_type = 'Amendment' and amended_contract_id is not null
        and coalesce(is_won, true)
    group by amended_contract_id
)

select
    contracts.contract_id,
    contracts.currency_code,
    cast(round(contracted.source_amount * pow(10, {{ minor_exponent('contracts.currency_code') }}))
         as bigint) as source_original_minor,
    cast(coalesce(lines.original_minor, 0) as bigint) as canonical_original_minor,
    cast(round(coalesce(amendments.source_amount, 0)
               * pow(10, {{ minor_exponent('contracts.currency_code') }})) as bigint)
        as source_amendments_minor,
    cast(coalesce(lines.amendments_minor, 0) as bigint) as canonical_amendments_minor,
    coalesce(amendments.amendments, 0) as amendment_opportunities,
    case
        when contracted.contract_record_id is null then 'no_opportunity'
        when contracted.source_amount is null or coalesce(amendments.missing_amounts, 0) > 0
            then 'no_amount'
        when (contracted.currency_code is not null
              and contracted.currency_code <> contracts.currency_code)
            or amendments.lowest_currency <> contracts.currency_code
            or amendments.highest_currency <> contracts.currency_code
            then 'currency_differs'
        when cast(round(contracted.source_amount
                        * pow(10, {{ minor_exponent('contracts.currency_code') }})) as bigint)
            <> coalesce(lines.original_minor, 0) then 'original_differs'
        when cast(round(coalesce(amendments.source_amount, 0)
                        * pow(10, {{ minor_exponent('contracts.currency_code') }})) as bigint)
            <> coalesce(lines.amendments_minor, 0) then 'amendments_differs'
        else 'tied'
    end as tieout_status
from contracts
left join lines on lines.contract_id = contracts.contract_id
left join contracted on contracted.contract_record_id = contracts.source_id
left join amendments on amendments.amended_contract_id = contracts.source_id
order by contracts.contract_id
