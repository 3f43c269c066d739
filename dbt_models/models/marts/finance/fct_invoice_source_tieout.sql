-- Per invoice q2c accepted: what Stripe states, what q2c's canonical model holds, what the ledger
-- booked. The existing AR reconciliation compares canonical with the ledger (q2c with itself);
-- this one starts from the source's own totals.
--   subtotal  = Stripe's subtotal, shown only     (canonical: sum of amount + discount_amount)
--   discount  = total_discount_amounts             (canonical: sum of discount_amount)
--   tax       = total_taxes                        (canonical: sum of tax_amount)
--   total     = subtotal - discount + exclusive tax (canonical: the billed total; ledger: the net
--               debit to AccountsReceivable of the invoice's billing journal)
--   paid      = amount_paid                        (canonical: its payments; ledger: credits to
--               AccountsReceivable of those payment journals)
--   remaining = amount_remaining of an open or paid invoice (canonical: total - paid - credit
--               notes issued before the first payment)
with source as (
    select * from {{ ref('stg_billing__stripe_invoices') }}
    where not is_ambiguous
),

invoices as (
    select invoice_id, source_system, source_id from {{ ref('stg_canonical__invoices') }}
),

billed as (
    select * from {{ ref('int_invoice_billed_totals') }}
),

lines as (
    select
        invoice_id,
        sum(amount_minor + discount_amount_minor) as subtotal_minor,
        sum(discount_amount_minor) as discount_minor,
        sum(tax_amount_minor) as tax_minor
    from {{ ref('stg_canonical__invoice_lines') }}
    group by invoice_id
),

payments as (
    select invoice_id, sum(amount_minor) as paid_minor
    from {{ ref('stg_canonical__payments') }}
    where invoice_id is not null
    group by invoice_id
),

ar as (
    select * from {{ ref('int_invoice_ar_postings') }}
),

-- credit notes that lowered what the customer owed before it paid (Stripe: amount_due =
-- total - pre-payment credit notes), gross as the credited line carries tax
credits as (
    select
        notes.invoice_id,
        sum(notes.amount_minor + case
            when coalesce(credited.is_tax_inclusive, inclusive.is_tax_inclusive, false) then 0
            else notes.tax_amount_minor end) as credited_minor
    from {{ ref('stg_canonical__credit_notes') }} as notes
    left join {{ ref('stg_canonical__invoice_lines') }} as credited
        on notes.invoice_line_id = credited.invoice_line_id
    left join (
        select invoice_id, bool_or(is_tax_inclusive) as is_tax_inclusive
        from {{ ref('stg_canonical__invoice_lines') }} group by invoice_id
    ) as inclusive on notes.invoice_id = inclusive.invoice_id
    left join (
        select invoice_id, min(paid_at) as first_paid_at
        from {{ ref('stg_canonical__payments') }} where invoice_id is not null group by 1
    ) as paid on notes.invoice_id = paid.invoice_id
    where notes.voided_at is null
        and (paid.first_paid_at is null or notes.issued_at < paid.first_paid_at)
    group by notes.invoice_id
),

ledger_paid as (
    select paid.invoice_id, sum(lines.credit_minor) - sum(lines.debit_minor) as paid_minor
    from {{ ref('stg_finance__journal_lines') }} as lines
    inner join {{ ref('stg_canonical__payments') }} as paid
        on lines.source_id = paid.payment_id
    where lines.source_type = 'payment' and lines.account = 'AccountsReceivable'
    group by paid.invoice_id
),

joined as (
    select
        billed.invoice_id,
        billed.customer_id,
        billed.legal_entity,
        billed.currency_code,
        billed.invoiced_period as period,
        source.source_status,
        source.record_id is not null as is_in_source,
        source.source_subtotal_minor,
        cast(coalesce(lines.subtotal_minor, 0) as bigint) as canonical_subtotal_minor,
        source.source_discount_minor,
        cast(coalesce(lines.discount_minor, 0) as bigint) as canonical_discount_minor,
        source.source_tax_minor,
        cast(coalesce(lines.tax_minor, 0) as bigint) as canonical_tax_minor,
        source.source_total_minor,
        billed.billed_total_minor as canonical_total_minor,
        cast(coalesce(ar.ar_debit_minor, 0) as bigint) as ledger_total_minor,
        source.source_paid_minor,
        cast(coalesce(payments.paid_minor, 0) as bigint) as canonical_paid_minor,
        cast(coalesce(ledger_paid.paid_minor, 0) as bigint) as ledger_paid_minor,
        source.source_remaining_minor,
        -- what q2c says is still owed on an open or paid invoice (void and uncollectible
        -- invoices are settled by their own events, compared elsewhere)
        case when source.source_status in ('open', 'paid') then cast(greatest(
            billed.billed_total_minor - coalesce(payments.paid_minor, 0)
            - coalesce(credits.credited_minor, 0), 0) as bigint) end
            as canonical_remaining_minor
    from billed
    inner join invoices on billed.invoice_id = invoices.invoice_id
    left join source on invoices.source_id = source.record_id
    left join lines on billed.invoice_id = lines.invoice_id
    left join payments on billed.invoice_id = payments.invoice_id
    left join ar on billed.invoice_id = ar.invoice_id
    left join ledger_paid on billed.invoice_id = ledger_paid.invoice_id
    left join credits on billed.invoice_id = credits.invoice_id
    -- invoices from another billing system have no Stripe object to compare with
    where invoices.source_system = 'stripe'
)

select
    *,
    case
        when not is_in_source then 'missing_in_source'
        -- (subtotal is shown, not compared: Stripe's subtotal already nets line-level discounts
        -- and not invoice-level ones, which the lines do not tell apart; discount and total are
        -- compared, which fixes the pre-discount amount)
        when source_discount_minor is distinct from canonical_discount_minor then 'discount_differs'
        when source_tax_minor is distinct from canonical_tax_minor then 'tax_differs'
        when source_total_minor is distinct from canonical_total_minor then 'total_differs'
        -- a zero invoice needs no ledger entry
        when canonical_total_minor <> 0 and canonical_total_minor <> ledger_total_minor
            then 'ledger_total_differs'
        when source_paid_minor is distinct from canonical_paid_minor then 'paid_differs'
        when canonical_paid_minor <> ledger_paid_minor then 'ledger_paid_differs'
        -- a customer balance or credit applied in Stripe and unknown to q2c shows here
        when canonical_remaining_minor is not null
            and source_remaining_minor is distinct from canonical_remaining_minor
            then 'remaining_differs'
        else 'tied'
    end as tieout_status
from joined
order by invoice_id
