"""Which assets are partitioned by month, and the months themselves.

An asset says it is monthly with the BY_MONTH tag; the partitions definition (from
B2B_FIRST_MONTH to the as-of month) is resolved from the settings when the definitions
are built (definitions.py applies it with the owners and groups), never at import, so
one process can build definitions for other settings.
"""

import dagster as dg

BY_MONTH = {"partitioned_by": "month"}


def is_monthly(spec: dg.AssetSpec) -> bool:
    return spec.tags.get("partitioned_by") == BY_MONTH["partitioned_by"]


def with_months(spec: dg.AssetSpec, months: dg.PartitionsDefinition) -> dg.AssetSpec:
    """The spec with the monthly partitions if it declared BY_MONTH."""
    return spec.replace_attributes(partitions_def=months) if is_monthly(spec) else spec


def all_month_keys(context: dg.AssetExecutionContext) -> list[str]:
    """Every month of the running asset's partitions, first to last."""
    partitions = context.assets_def.partitions_def
    if partitions is None:
        raise dg.DagsterInvariantViolationError(
            f"{context.assets_def.key.to_user_string()} has no monthly partitions"
        )
    return partitions.get_partition_keys()
