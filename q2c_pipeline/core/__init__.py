"""The finance core: calendar months, money, rounding, FX rates and the policy.

Layering (enforced by ``q2c_pipeline_tests/test_layers.py``)::

    q2c_pipeline.engine        composes the two below into one run (run_engine)
        |            |
    revenue/     accounting/   revenue never imports accounting, nor accounting revenue:
        |            |         revenue hands plain frames (facts) to the engine, which passes
        +---- core --+         them to accounting's posting rules
                               core imports neither (nor dagster, nor I/O)

``core`` is pure: no I/O, no clock, no dagster.
"""
