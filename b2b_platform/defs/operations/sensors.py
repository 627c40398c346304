"""Sensors: new or changed input files start the runs that load them.

A tick lists the directory and compares it with what the sensor knows is loaded
(`file_requests.FileRequests`, kept in its cursor): the month a new, changed or removed
log file belongs to gets a run, and so do the lead workbooks. The cursor advances only
when that run ended; retrying a failed run is Dagster's (the raw steps' retry policy, the
deployment's run retries), so a file that still fails waits for a change or the refresh.

Nothing here opens the warehouse: DuckDB would refuse a reader while a run writes, and
a sensor must neither wait for a run nor take a locked warehouse for an empty one. What
the warehouse has read comes from the loaded-files state written next to it by every
load; when that state does not exist yet, the warehouse is read once, and a busy one
skips the tick with the reason.

Settle rule: a lead workbook or a compressed log modified within the last SETTLE_SECONDS
(5 minutes) may still be being written; it waits. A plain log file does not wait: the
live `access.log` is read to its last complete line, and the next run reads only what
was appended, so the sensor brings the warehouse within one interval of the server.
"""

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from b2b_common.errors import UserError
from b2b_platform.defs.leads.raw import lead_files
from b2b_platform.defs.operations import jobs
from b2b_platform.defs.operations.file_requests import (
    FAILED,
    MISSING,
    SUCCESS,
    WAITING,
    FileRequests,
    run_key,
)
from b2b_platform.defs.weblogs.log_files import list_log_files
from b2b_platform.lib.input_files.file_manifest import SETTLE_SECONDS, InputFile
from b2b_platform.lib.orchestration.stage_launchers import RUN_TAG
from b2b_platform.lib.resources import CalendarResource, DirectoryResource
from b2b_platform.lib.settings import missing_directory
from b2b_platform.lib.warehouse.loaded_files import file_version, loaded_file_key
from b2b_platform.lib.warehouse.resource import WarehouseResource
from b2b_platform.lib.warehouse.schema import table_exists


class WarehouseBusy(Exception):
    """The warehouse exists but cannot be read now (a run holds its write lock)."""


def file_versions(files: list[InputFile]) -> dict[str, str]:
    """path -> "size:modified time", the cheap version the file manifest compares first."""
    return {str(file.path): file.version for file in files}


def loaded_versions(duckdb: WarehouseResource, source: str) -> dict[str, str] | None:
    """path -> version of the files of `source` the warehouse has read, from the state
    file next to it; read from the warehouse itself only when no state exists yet.
    None when there is no warehouse; WarehouseBusy when the warehouse must be read and
    cannot be now, which must never be taken for "nothing loaded"."""
    state = duckdb.loaded_files(source)
    if state is not None:
        return state
    if not duckdb.exists():
        return None
    try:
        with duckdb.get_connection(read_only=True, wait_seconds=0) as conn:
            if not table_exists(conn, "etl.file_manifest"):
                return {}
            rows = conn.execute(
                "SELECT path, partition_key, size_bytes, modified_at FROM etl.file_manifest"
                " WHERE source = ? AND status IN ('loaded', 'failed')",
                [source],
            ).fetchall()
    except UserError as exc:
        raise WarehouseBusy(str(exc)) from None
    return {
        loaded_file_key(path, month): file_version(size, modified)
        for path, month, size, modified in rows
    }


def settled(
    files: list[InputFile], now: dt.datetime, growing_is_read: bool = False
) -> tuple[dict[str, str], set[str]]:
    """The versions of the files that have settled, and the paths still being written:
    modified within SETTLE_SECONDS, unless `growing_is_read` and the file is plain text
    (a log's load reads complete lines only, so a growing log is read as it grows)."""
    writing = {
        str(f.path)
        for f in files
        if (now - f.modified_at).total_seconds() < SETTLE_SECONDS
        and not (growing_is_read and f.path.suffix != ".gz")
    }
    versions = {p: v for p, v in file_versions(files).items() if p not in writing}
    return versions, writing


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def run_status_lookup(context: dg.SensorEvaluationContext, sensor: str) -> Callable[[str], str]:
    """How a run this sensor asked for (by run key) ended: success, failed, waiting
    (queued or running) or missing (not launched yet)."""

    def status(key: str) -> str:
        runs = context.instance.get_runs(
            filters=dg.RunsFilter(tags={"dagster/run_key": key, "dagster/sensor_name": sensor}),
            limit=1,
        )
        if not runs:
            return MISSING
        if runs[0].status == dg.DagsterRunStatus.SUCCESS:
            return SUCCESS
        if runs[0].status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
            return FAILED
        return WAITING

    return status


def _plan(
    context: dg.SensorEvaluationContext,
    files: list[InputFile],
    duckdb: WarehouseResource,
    source: str,
    sensor: str,
    months_of: Callable[[str], list[str]] | None = None,
) -> tuple[FileRequests, dict[str, str], set[str], list[str]]:
    """The sensor's state after this tick's finished runs, and what to ask for now. Files
    are named by loaded_file_key: with `months_of` (a path's months), once per month."""
    now = _now()
    current, writing = settled(files, now, growing_is_read=source == "weblogs")
    if months_of is not None:
        current = {loaded_file_key(p, m): v for p, v in current.items() for m in months_of(p)}
        writing = {loaded_file_key(p, m) for p in writing for m in months_of(p)}
    loaded = loaded_versions(duckdb, source)  # may raise WarehouseBusy
    state = FileRequests.from_cursor(context.cursor) or FileRequests(known=dict(loaded or {}))
    notes = state.settle_runs(run_status_lookup(context, sensor), now)
    state.learn_loaded(loaded, current)
    return state, state.changes(current, writing), writing, notes


def missing_inputs(context: dg.SensorEvaluationContext, selection: dg.AssetSelection) -> list[str]:
    """Assets outside a job's `selection` that its assets read and that were never
    materialized: in a new deployment the platform users, say, before the first `b2b run`.
    A run now would fail on the missing table; the sensor waits instead (its cursor
    does not move)."""
    if context.repository_def is None:  # a test context without definitions
        return []
    graph = context.repository_def.asset_graph
    keys = selection.resolve(graph)
    parents = {parent for key in keys for parent in graph.get(key).parent_keys} - keys
    tables = [
        parent
        for parent in parents
        if graph.get(parent).is_materializable and graph.get(parent).partitions_def is None
    ]
    # their records in one query (each one's latest materialization was a query apiece)
    built = {
        record.asset_entry.asset_key
        for record in context.instance.get_asset_records(tables)
        if record.asset_entry.last_materialization_record is not None
    }
    return sorted(parent.to_user_string() for parent in tables if parent not in built)


def _ask(
    state: FileRequests, prefix: str, changes: dict[str, str], sensor: str, **request
) -> dg.RunRequest:
    """A run for these changed files, remembered in the sensor's state as asked for."""
    key = run_key(prefix, changes)
    state.add_request(key, changes, _now())
    tags = {"b2b/changed_files": str(len(changes)), RUN_TAG: f"sensor {sensor}"}
    return dg.RunRequest(run_key=key, tags=tags, **request)


def _nothing_to_do(what: str, state: FileRequests, writing: set[str]) -> dg.SkipReason:
    extra = []
    if writing:
        extra.append(f"{len(writing)} still being written")
    if state.requested:
        extra.append(f"{len(state.requested)} run(s) asked for still queued or running")
    return dg.SkipReason(
        f"no new, changed or removed {what}" + (f" ({'; '.join(extra)})" if extra else "")
    )


def weblog_files(
    context: dg.SensorEvaluationContext,
    log_dir: DirectoryResource,
    duckdb: WarehouseResource,
    calendar: CalendarResource,
) -> dg.SensorResult | dg.SkipReason:
    """A tick of weblog_files_sensor."""
    if not log_dir.directory.is_dir():
        return dg.SkipReason(missing_directory("log", log_dir.directory, "B2B_LOG_DIR"))
    if missing := missing_inputs(context, jobs.weblogs_month_job.selection):
        return dg.SkipReason(f"waiting for {', '.join(missing)} to be built first (`b2b run`)")
    try:
        directory = list_log_files(log_dir)
        files = list(directory.files.values())
        keys = calendar.monthly_partitions().get_partition_keys()
        state, changes, writing, notes = _plan(
            context, files, duckdb, "weblogs", "weblog_files_sensor",
            months_of=lambda path: directory.days[Path(path)].months(keys[0], keys[-1])
            if keys else [],
        )  # fmt: skip
    except OSError as exc:  # the directory itself unreadable: try again next tick
        return dg.SkipReason(f"cannot list log directory {log_dir.directory}: {exc.strerror}")
    except WarehouseBusy as exc:
        return dg.SkipReason(f"cannot read what the warehouse loaded ({exc}); next tick")
    for note in notes:
        context.log.info(note)
    by_month: dict[str, dict[str, str]] = {}
    for key, change in changes.items():  # "<month> <path>": a file once per month it feeds
        month = key.split(" ", 1)[0]
        if month in keys:  # a month no longer in the range has nothing to load
            by_month.setdefault(month, {})[key] = change
    requests = [
        _ask(state, f"weblogs:{month}", month_changes, "weblog_files_sensor", partition_key=month)
        for month, month_changes in sorted(by_month.items())
    ]
    if not requests:
        skip = _nothing_to_do("log files", state, writing)
        return dg.SensorResult(skip_reason=skip, cursor=state.to_cursor())
    context.log.info(f"{len(changes)} changed log file(s) in {len(requests)} month(s)")
    return dg.SensorResult(run_requests=requests, cursor=state.to_cursor())


def lead_workbooks(
    context: dg.SensorEvaluationContext, leads_dir: DirectoryResource, duckdb: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    """A tick of lead_workbooks_sensor."""
    if not leads_dir.directory.is_dir():
        return dg.SkipReason(missing_directory("leads", leads_dir.directory, "B2B_LEADS_DIR"))
    if missing := missing_inputs(context, jobs.leads_job.selection):
        return dg.SkipReason(f"waiting for {', '.join(missing)} to be built first (`b2b run`)")
    try:
        files = lead_files(leads_dir).files
        state, changes, writing, notes = _plan(
            context, files, duckdb, "leads", "lead_workbooks_sensor"
        )
    except OSError as exc:
        return dg.SkipReason(f"cannot list leads directory {leads_dir.directory}: {exc.strerror}")
    except WarehouseBusy as exc:
        return dg.SkipReason(f"cannot read what the warehouse loaded ({exc}); next tick")
    for note in notes:
        context.log.info(note)
    if not changes:
        skip = _nothing_to_do("lead workbooks", state, writing)
        return dg.SensorResult(skip_reason=skip, cursor=state.to_cursor())
    return dg.SensorResult(
        run_requests=[_ask(state, "leads", changes, "lead_workbooks_sensor")],
        cursor=state.to_cursor(),
    )


def build_weblog_files_sensor(
    status: dg.DefaultSensorStatus, interval_seconds: int
) -> dg.SensorDefinition:
    return dg.sensor(
        name="weblog_files_sensor",
        job=jobs.weblogs_month_job,
        minimum_interval_seconds=interval_seconds,
        default_status=status,
        description="Asks for a run of a month's web logs when one of its files appears, "
        "changes or disappears in B2B_LOG_DIR.",
    )(weblog_files)


def build_lead_workbooks_sensor(
    status: dg.DefaultSensorStatus, interval_seconds: int
) -> dg.SensorDefinition:
    return dg.sensor(
        name="lead_workbooks_sensor",
        job=jobs.leads_job,
        minimum_interval_seconds=interval_seconds,
        default_status=status,
        description="Asks for a load of the lead workbooks when one appears, changes or "
        "disappears in B2B_LEADS_DIR.",
    )(lead_workbooks)
