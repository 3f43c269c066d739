-- Every usage invoice line of an accepted invoice ties three ways: Stripe's meter count, the
-- quantity and amount Stripe invoiced, and q2c's rating of the raw usage events. Error severity:
-- revenue recognized from usage rests on that rating.
{{ config(severity='error') }}

select *
from {{ ref('fct_usage_source_tieout') }}
where tieout_status <> 'tied'
