-- The deferred revenue rollforward built from journal movements ends each period where the
-- ledger's account_balances do, in transaction and in functional currency.
select *
from {{ ref('fct_deferred_revenue_rollforward') }}
where not is_tied
