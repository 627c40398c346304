"""Every failed or canceled run is recorded in etl.run_log, even when no step could."""

import datetime as dt
import os
from collections.abc import Callable
from typing import Any

import dagster as dg

from b2b_common.errors import UserError
from b2b_platform.lib.warehouse.resource import WarehouseResource
from b2b_platform.lib.warehouse.run_log import (
    defer_run_failure,
    pending_failures_file,
    record_run_failure,
)

# a sensor tick must end within a minute: past this wait for the writer's lock, the
# break is deferred to the next warehouse step instead
LOCK_WAIT_SECONDS = 10.0


def _utc(timestamp: float | None) -> dt.datetime:
    moment = dt.datetime.fromtimestamp(timestamp, dt.UTC) if timestamp else dt.datetime.now(dt.UTC)
    return moment.replace(tzinfo=None)


def run_break(
    instance: dg.DagsterInstance, run: dg.DagsterRun, error: str, status: str
) -> dict[str, Any]:
    """What etl.run_log records of a run that broke (failed, or interrupted)."""
    record = instance.get_run_record_by_id(run.run_id)
    return {
        "run_id": run.run_id,
        "started_at": _utc(record.start_time if record else None),
        "failed_at": _utc(record.end_time if record and record.end_time else None),
        "error": error,
        "partition_key": run.tags.get("dagster/partition"),
        "status": status,
    }


def record_or_defer(
    warehouse: WarehouseResource,
    failure: dict[str, Any],
    log: Callable[[str], None],
    wait_seconds: float | None = None,
) -> None:
    """Write a run's break now, or, when another process holds the writer's lock, keep
    it in DAGSTER_HOME for the next warehouse step (which holds the lock) to write: the
    record never depends on winning the lock at that instant."""
    wait = LOCK_WAIT_SECONDS if wait_seconds is None else wait_seconds
    try:
        with warehouse.get_connection(wait_seconds=wait) as conn:
            written = record_run_failure(conn, **failure)
    except UserError as exc:
        pending = pending_failures_file(os.environ.get("DAGSTER_HOME"))
        if pending is None:
            raise
        defer_run_failure(pending, **failure)
        log(f"run {failure['run_id']}: warehouse busy ({exc}); its break is kept in {pending}")
        return
    log(f"run {failure['run_id']} recorded as {failure['status']} ({written} row(s))")


def record_failed_run(context: dg.RunFailureSensorContext, duckdb: WarehouseResource) -> None:
    event = context.failure_event
    error = (event.message if event else None) or "run failed"
    failure = run_break(context.instance, context.dagster_run, error, "failed")
    record_or_defer(duckdb, failure, context.log.info)


def record_canceled_run(context: dg.RunStatusSensorContext, duckdb: WarehouseResource) -> None:
    failure = run_break(context.instance, context.dagster_run, "run canceled", "interrupted")
    record_or_defer(duckdb, failure, context.log.info)


def build_run_break_sensors(status: dg.DefaultSensorStatus) -> list[dg.SensorDefinition]:
    """record_failed_runs and record_canceled_runs."""
    failed = dg.run_failure_sensor(
        name="record_failed_runs",
        default_status=status,
        description="Writes each failed run into etl.run_log: steps it left `running` become "
        "`failed` with the time it broke, and a run that failed outside any step gets a row.",
    )(record_failed_run)
    canceled = dg.run_status_sensor(
        name="record_canceled_runs",
        run_status=dg.DagsterRunStatus.CANCELED,
        default_status=status,
        description="Writes each canceled run (stopped in the UI, or by a signal to `b2b run`) "
        "into etl.run_log as `interrupted`, so every break is on record.",
    )(record_canceled_run)
    return [failed, canceled]
