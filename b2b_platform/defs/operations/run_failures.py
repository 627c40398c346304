"""Every failed run is recorded in etl.run_log, even when no step could record it."""

import datetime as dt
import os

import dagster as dg
from dagster_duckdb import DuckDBResource

from b2b_platform.defs.operations.default_status import sensor_status
from b2b_platform.lib.errors import UserError
from b2b_platform.lib.warehouse import (
    defer_run_failure,
    pending_failures_file,
    record_run_failure,
    warehouse_connection,
)

# a sensor tick must end within a minute: past this wait for the writer's lock, the
# failure is deferred to the next warehouse step instead
LOCK_WAIT_SECONDS = 10.0


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
    failure = {
        "run_id": run.run_id,
        "started_at": _utc(record.start_time if record else None),
        "failed_at": _utc(failed_at),
        "error": (event.message if event else None) or "run failed",
        "partition_key": run.tags.get("dagster/partition"),
    }
    try:
        with warehouse_connection(
            duckdb.database, config=duckdb.connection_config, wait_seconds=LOCK_WAIT_SECONDS
        ) as conn:
            written = record_run_failure(conn, **failure)
    except UserError as exc:
        # another process holds the writer's lock: the failure waits in DAGSTER_HOME and
        # the next warehouse step (which holds the lock) writes it, so none is lost
        pending = pending_failures_file(os.environ.get("DAGSTER_HOME"))
        if pending is None:
            raise
        defer_run_failure(pending, **failure)
        context.log.info(f"run {run.run_id}: warehouse busy ({exc}); failure kept in {pending}")
        return
    context.log.info(f"run {run.run_id} recorded as failed ({written} row(s))")
