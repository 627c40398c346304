"""Upkeep of a lake warehouse: every night its small files are merged, snapshots older
than a week expire and the files no snapshot reads are deleted. Writers go on meanwhile.
Only a lake has it: a DuckDB file keeps itself compact."""

import datetime as dt

import dagster as dg

from b2b_platform.lib.warehouse.lake import DEFAULT_SNAPSHOT_RETENTION, maintain_lake
from b2b_platform.lib.warehouse.resource import WarehouseResource
from b2b_platform.lib.warehouse.write_conflicts import retry_on_conflict


class LakeMaintenanceConfig(dg.Config):
    # snapshots younger than this stay readable (time travel, readers of an older one)
    keep_snapshots_days: float = DEFAULT_SNAPSHOT_RETENTION.days


@dg.op(tags={"kind": "ducklake"})
def compact_lake(
    context: dg.OpExecutionContext, config: LakeMaintenanceConfig, duckdb: WarehouseResource
) -> None:
    """Merge the lake's small files, expire old snapshots and delete unreferenced files."""
    keep = dt.timedelta(days=config.keep_snapshots_days)
    with duckdb.get_connection() as conn:
        counts = retry_on_conflict(lambda: maintain_lake(conn, keep), on_retry=context.log.info)
    context.log.info(f"lake maintenance: {counts}")
    context.add_output_metadata(
        {name: dg.MetadataValue.int(value) for name, value in counts.items()}
    )


@dg.graph
def lake_maintenance() -> None:
    compact_lake()


def build_lake_upkeep(status: dg.DefaultScheduleStatus) -> dg.Definitions:
    """The lake_maintenance_job and its nightly schedule (a lake's definitions only)."""
    job = lake_maintenance.to_job(
        name="lake_maintenance_job",
        description="Lake upkeep: small files merged, snapshots older than a week expired, "
        "unreferenced Parquet files deleted (DuckLake's maintenance functions).",
    )
    schedule = dg.ScheduleDefinition(
        name="lake_maintenance",
        job=job,
        cron_schedule="30 5 * * *",  # after the 03:00 daily refresh
        execution_timezone="America/Argentina/Buenos_Aires",
        default_status=status,
        description="Every night after the refresh: the lake's files merged and old snapshots "
        "expired (lake mode only).",
    )
    return dg.Definitions(jobs=[job], schedules=[schedule])
