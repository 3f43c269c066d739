"""Revenue recognition (ASC 606 / IFRS 15), pure: revenue contracts, obligations, standalone
selling prices, allocation, modifications, schedules and the contract position.

Imports ``q2c_pipeline.core`` only; never ``q2c_pipeline.accounting`` (which never imports this
package either): revenue states facts as frames, accounting turns them into journals, and
``q2c_pipeline.engine`` composes the two. No I/O, no clock, no dagster.
"""
