"""Which assets are partitioned by month, and the months themselves.

The months (B2B_FIRST_MONTH to the as-of month) come from the settings, which are read
when the definitions are built, never at import: a decorator at module level runs
once per process, and one process may build definitions for other settings (each
build gets its own months). So a monthly asset is made by a factory, `build_<asset>
(months)`, whose decorator says `partitions_def=months`; definitions.py calls each
factory (MONTHLY_ASSETS there) with the months of the settings it read.

A monthly asset also carries the BY_MONTH tag, which selections name it by (automation
does not wait for a monthly parent's checks: see follow_upstream.FOLLOW_UPSTREAM).
"""

from collections.abc import Callable

import dagster as dg

BY_MONTH = {"partitioned_by": "month"}

# a monthly asset's factory: its definition over these months
MonthlyAsset = Callable[[dg.PartitionsDefinition], dg.AssetsDefinition]


def all_month_keys(context: dg.AssetExecutionContext) -> list[str]:
    """Every month of the running asset's partitions, first to last."""
    partitions = context.assets_def.partitions_def
    if partitions is None:
        raise dg.DagsterInvariantViolationError(
            f"{context.assets_def.key.to_user_string()} has no monthly partitions"
        )
    return partitions.get_partition_keys()
