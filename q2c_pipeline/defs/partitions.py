"""Every partition definition of the code location, with its start date as a named constant."""

import dagster as dg

# The sample company starts trading on 2026-01-01; its closed period is 2025-12.
INVOICES_START_DATE = "2025-12-01"
USAGE_START_DATE = "2026-01-01"
ACCOUNTING_PERIODS_START_DATE = "2025-12-01"

# Invoices land in daily partitions keyed by the UTC day they were created (Stripe's `created`,
# the only date its list API filters on, and one that never changes). end_offset=1 makes today a
# partition, so an invoice finalized now reaches the journals within a minute, not after midnight.
invoice_daily_partitions = dg.DailyPartitionsDefinition(
    start_date=INVOICES_START_DATE, end_offset=1
)

# Usage is summarized per UTC day once the day is over.
usage_daily_partitions = dg.DailyPartitionsDefinition(start_date=USAGE_START_DATE)

# Accounting periods (calendar months) for the close.
accounting_monthly_partitions = dg.MonthlyPartitionsDefinition(
    start_date=ACCOUNTING_PERIODS_START_DATE
)
