"""Completeness checks: every Salesforce object's landed records match what Salesforce reports.

For each Salesforce raw asset, ``rows_match_salesforce_count`` compares the count Salesforce
reported at extraction (``SELECT COUNT() FROM <object>``, stored in ``raw._extraction_state``;
the snapshot path stores the file's count) with the records whose latest landed version is not a
deletion. Fewer landed means rows were lost (a skipped window, a failed page); more means deletions
were missed (purged from the recycle bin before an incremental run saw them): either way run a
``full_refresh`` extraction. Not blocking: the close may proceed, but the gap is on record.
"""

import dagster as dg

from q2c_pipeline.defs.resources import WarehouseResource
from q2c_pipeline.sources.extract import count_landed_records, read_state
from q2c_pipeline.sources.registry import SALESFORCE_OBJECTS, SourceObject

CHECK_NAME = "rows_match_salesforce_count"


def build_completeness_check(obj: SourceObject) -> dg.AssetChecksDefinition:
    """The completeness check of one Salesforce object's raw asset."""

    @dg.asset_check(
        asset=dg.AssetKey(["raw", obj.raw_table]),
        name=CHECK_NAME,
        description=f"Records landed in raw.{obj.raw_table} equal Salesforce's {obj.name} count.",
    )
    def _check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.get_connection() as conn:
            state = read_state(conn, "salesforce", obj.name)
            landed = count_landed_records(conn, obj.raw_table)
        if state is None or state.source_count is None:
            return dg.AssetCheckResult(
                passed=False,
                metadata={"landed": landed, "problem": "no extraction recorded for this object"},
            )
        reported = int(state.source_count)
        return dg.AssetCheckResult(
            passed=landed == reported,
            metadata={
                "salesforce_count": reported,
                "landed": landed,
                "missing": max(reported - landed, 0),
                "extra": max(landed - reported, 0),
                "path": state.path,
                "extracted_at": str(state.extracted_at),
                "high_water_mark": state.high_water_mark or "",
            },
        )

    return _check


completeness_checks = [build_completeness_check(obj) for obj in SALESFORCE_OBJECTS]
