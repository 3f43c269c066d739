"""Accounting: posting rules, functional-currency measurement, journals, the append-only ledger,
balances and the ERP outbox.

The pure modules (accounts, postings, journals, measurement, intercompany, remeasurement,
presentation, balances) import ``q2c_pipeline.core`` only and never ``q2c_pipeline.revenue``:
they read the revenue facts as plain frames whose columns ``q2c_pipeline.engine`` documents.
The ledger, outbox and usage-summary modules also read and write DuckDB.
"""
