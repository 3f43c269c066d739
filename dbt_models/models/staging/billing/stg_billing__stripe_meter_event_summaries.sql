-- One row per Stripe meter event summary (a meter's aggregate for one customer and UTC day), the
-- latest version received: Stripe's own count of the usage it will invoice.
select
    record_id as summary_id,
    payload ->> '$.meter' as meter_id,
    payload ->> '$.customer' as stripe_customer_id,
    to_timestamp(cast(payload ->> '$.start_time' as bigint))::timestamp as window_start_at,
    to_timestamp(cast(payload ->> '$.end_time' as bigint))::timestamp as window_end_at,
    cast(payload ->> '$.aggregated_value' as decimal(38, 12)) as aggregated_value
from {{ source('raw', 'stripe_billing_meter_event_summaries') }}
where not coalesce(is_deleted, false)
qualify row_number() over (partition by record_id order by extracted_at desc,
                           source_modstamp desc) = 1
