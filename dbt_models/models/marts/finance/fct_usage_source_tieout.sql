-- Per usage invoice line of an invoice q2c accepted (missing_in_canonical: the invoice was
-- accepted without this line): the quantity Stripe's meter counted for
-- that customer over the line's period (its daily event summaries), the quantity and amount
-- Stripe invoiced, and what q2c rated from the raw usage events for that line. Three sources that
-- q2c did not compute (the meter, the invoice) against one it did (the rating):
--   meter_differs     the meter's count is not the quantity invoiced (Stripe against itself:
--                     late events, a meter changed mid-period, an invoice edited by hand)
--   quantity_differs  q2c's events for the line add up to another quantity (events missing or
--                     extra in the usage files, or matched to another line)
--   amount_differs    q2c's rating of those events is not what Stripe charged (a price read
--                     wrong: package size, tiers, decimals, currency)
with lines as (
    select
        coalesce(c.invoice_line_id, 'stripe:' || l.stripe_line_id) as invoice_line_id,
        i.invoice_id,
        c.invoice_line_id is not null as is_in_canonical,
        l.*
    from {{ ref('stg_billing__stripe_usage_invoice_lines') }} as l
    inner join {{ ref('stg_canonical__invoices') }} as i
        on i.source_system = 'stripe' and i.source_id = l.stripe_invoice_id
    left join {{ ref('stg_canonical__invoice_lines') }} as c
        on c.source_system = 'stripe' and c.source_id = l.stripe_line_id
),

metered as (
    select
        lines.invoice_line_id,
        sum(s.aggregated_value) as meter_quantity
    from lines
    inner join {{ ref('stg_billing__stripe_meter_event_summaries') }} as s
        on s.meter_id = lines.meter_id
        and s.stripe_customer_id = lines.stripe_customer_id
        and s.window_start_at >= lines.period_start_at
        and s.window_end_at <= lines.period_end_at
    group by lines.invoice_line_id
),

rated as (
    select
        invoice_line_id,
        cast(sum(quantity) as decimal(38, 12)) as q2c_quantity,
        cast(sum(amount_minor) as bigint) as q2c_amount_minor,
        count(*) as events
    from {{ ref('stg_canonical__usage') }}
    where invoice_line_id is not null
    group by invoice_line_id
)

select
    lines.invoice_line_id,
    lines.invoice_id,
    lines.stripe_customer_id,
    lines.currency_code,
    lines.meter_id,
    lines.period_start_at,
    lines.period_end_at,
    coalesce(metered.meter_quantity, 0) as meter_quantity,
    lines.source_quantity,
    coalesce(rated.q2c_quantity, 0) as q2c_quantity,
    lines.source_amount_minor,
    coalesce(rated.q2c_amount_minor, 0) as q2c_amount_minor,
    coalesce(rated.events, 0) as q2c_events,
    case
        when not lines.is_in_canonical then 'missing_in_canonical'
        when coalesce(metered.meter_quantity, 0) <> lines.source_quantity then 'meter_differs'
        when coalesce(rated.q2c_quantity, 0) <> lines.source_quantity then 'quantity_differs'
        when coalesce(rated.q2c_amount_minor, 0) <> lines.source_amount_minor
            then 'amount_differs'
        else 'tied'
    end as tieout_status
from lines
left join metered on metered.invoice_line_id = lines.invoice_line_id
left join rated on rated.invoice_line_id = lines.invoice_line_id
order by lines.invoice_line_id
