"""Every failed run is recorded in etl.run_log, even when no step could record it."""

import datetime as dt

import dagster as dg
from dagster_duckdb import DuckDBResource

from b2b_platform.defs.operations.default_status import sensor_status
from b2b_platform.lib.warehouse import record_run_failure, warehouse_connection

# a sensor tick must end within a minute; a run holding the warehouse lock longer means
# the tick fails and the next one records the failure
LOCK_WAIT_SECONDS = 30.0


def _utc(timestamp: float | None) -> dt.datetime:
    moment = dt.datetime.fromtimestamp(timestamp, dt.UTC) if timestamp else dt.datetime.now(dt.UTC)
    return moment.replace(tzinfo=None)


@dg.run_failure_sensor(
    name="record_failed_runs",
    default_status=sensor_status(),
    description="Writes each failed run into etl.run_log: steps it left `running` become "
    "`failed` with the time it broke, and a run that failed before any step gets a row.",
)
def record_failed_runs(context: dg.RunFailureSensorContext, duckdb: DuckDBResource) -> None:
    run = context.dagster_run
    record = context.instance.get_run_record_by_id(run.run_id)
    event = context.failure_event
    failed_at = record.end_time if record and record.end_time else None
    with warehouse_connection(
        duckdb.database, config=duckdb.connection_config, wait_seconds=LOCK_WAIT_SECONDS
    ) as conn:
        written = record_run_failure(
            conn,
            run.run_id,
            started_at=_utc(record.start_time if record else None),
            failed_at=_utc(failed_at),
            error=(event.message if event else None) or "run failed",
            partition_key=run.tags.get("dagster/partition"),
        )
    context.log.info(f"run {run.run_id} recorded as failed ({written} row(s))")
