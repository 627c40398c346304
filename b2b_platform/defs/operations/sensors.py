"""Sensors: new or changed input files start the runs that load them.

Each sensor keeps, in its cursor, the version (size and modification time) of every
file it has seen; its first tick starts from the files the warehouse already loaded,
and skips (with the reason) while the warehouse cannot be read, rather than taking a
locked warehouse for an empty one. A tick compares the directory with the cursor and
asks for a run of what changed: the month a log file belongs to, or the lead workbooks.
A file modified in the last SETTLE_SECONDS is still being written and waits. The run
key is made from the changed files and their versions, so the same change never runs
twice and a file changed again runs again. Removed files count as changes.
"""

import datetime as dt
import hashlib
import json
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from b2b_platform.defs.leads.raw import lead_files
from b2b_platform.defs.operations import jobs
from b2b_platform.defs.operations.default_status import sensor_status
from b2b_platform.defs.platform_db.raw import MONTHLY
from b2b_platform.defs.weblogs.raw import list_log_files
from b2b_platform.lib.combined_log import log_file_day
from b2b_platform.lib.errors import UserError
from b2b_platform.lib.file_manifest import InputFile
from b2b_platform.lib.resources import DirectoryResource
from b2b_platform.lib.warehouse import table_exists, warehouse_connection

SENSOR_INTERVAL_SECONDS = 60
# A file modified more recently than this is still being written (today's log, a
# workbook being saved): the sensor waits until it has been quiet this long, so a
# growing file is loaded once it settles, not once a minute.
SETTLE_SECONDS = 300


class WarehouseBusy(Exception):
    """The warehouse exists but cannot be read now (a run holds its write lock)."""


def _version(size_bytes: int, modified_at: dt.datetime) -> str:
    return f"{size_bytes}:{modified_at.isoformat()}"


def file_versions(files: list[InputFile]) -> dict[str, str]:
    """path -> "size:modified time", the cheap version the file manifest compares first."""
    return {str(file.path): _version(file.size_bytes, file.modified_at) for file in files}


def loaded_versions(duckdb: DuckDBResource, source: str) -> dict[str, str]:
    """The files the warehouse has loaded, as versions: a sensor's first tick starts from
    them, so files `b2b run` already loaded do not start runs. Empty when the warehouse
    does not exist yet; WarehouseBusy when it exists but cannot be read now, which must
    never be taken for "nothing loaded" (every file would then count as new)."""
    if not Path(duckdb.database).exists():
        return {}
    try:
        with warehouse_connection(duckdb.database, read_only=True, wait_seconds=0) as conn:
            if not table_exists(conn, "etl.file_manifest"):
                return {}
            rows = conn.execute(
                "SELECT path, size_bytes, modified_at FROM etl.file_manifest"
                " WHERE source = ? AND status = 'loaded'",
                [source],
            ).fetchall()
    except UserError as exc:
        raise WarehouseBusy(str(exc)) from None
    return {path: _version(size, modified) for path, size, modified in rows}


def settled(
    files: list[InputFile], seen: dict[str, str], now: dt.datetime
) -> tuple[dict[str, str], int]:
    """The versions to compare: a file still being written keeps the version last seen
    (or is left out if new) until it has been quiet for SETTLE_SECONDS. Also returns how
    many files are still being written."""
    versions = file_versions(files)
    recent = [f for f in files if (now - f.modified_at).total_seconds() < SETTLE_SECONDS]
    for file in recent:
        key = str(file.path)
        if key in seen:
            versions[key] = seen[key]
        else:
            del versions[key]
    return versions, len(recent)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def changed_files(seen: dict[str, str], current: dict[str, str]) -> dict[str, str]:
    """Files new, changed or removed since `seen`: path -> new version ("removed")."""
    changed = {path: version for path, version in current.items() if seen.get(path) != version}
    changed |= {path: "removed" for path in seen.keys() - current.keys()}
    return changed


def run_key(prefix: str, changes: dict[str, str]) -> str:
    digest = hashlib.blake2b(
        json.dumps(sorted(changes.items())).encode(), digest_size=12
    ).hexdigest()
    return f"{prefix}:{digest}"


def month_of_log_file(path: Path, partition_keys: list[str]) -> str | None:
    """The monthly partition a log file loads into; days outside the range go to the
    first or last month, which account for their lines as out_of_range."""
    day = log_file_day(path)
    if day is None or not partition_keys:
        return None
    key = day.replace(day=1).isoformat()
    return min(max(key, partition_keys[0]), partition_keys[-1])


def _seen(
    context: dg.SensorEvaluationContext, duckdb: DuckDBResource, source: str
) -> dict[str, str]:
    return json.loads(context.cursor) if context.cursor else loaded_versions(duckdb, source)


@dg.sensor(
    job=jobs.weblogs_month_job,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=sensor_status(),
    description="Asks for a run of a month's web logs when one of its files appears, "
    "changes or disappears in B2B_LOG_DIR.",
)
def weblog_files_sensor(
    context: dg.SensorEvaluationContext, log_dir: DirectoryResource, duckdb: DuckDBResource
) -> dg.SensorResult | dg.SkipReason:
    if not log_dir.directory.is_dir():
        return dg.SkipReason(f"log directory {log_dir.directory} does not exist")
    try:
        files = list(list_log_files(log_dir).files.values())
        seen = _seen(context, duckdb, "weblogs")
    except OSError as exc:  # the directory itself unreadable: try again next tick
        return dg.SkipReason(f"cannot list log directory {log_dir.directory}: {exc.strerror}")
    except WarehouseBusy as exc:
        return dg.SkipReason(f"cannot read what the warehouse loaded ({exc}); next tick")
    current, writing = settled(files, seen, _now())
    changes = changed_files(seen, current)
    if not changes:
        return dg.SkipReason(
            "no new, changed or removed log files"
            + (f" ({writing} still being written)" if writing else "")
        )
    keys = MONTHLY.get_partition_keys()
    by_month: dict[str, dict[str, str]] = {}
    for path, version in changes.items():
        month = month_of_log_file(Path(path), keys)
        if month is not None:
            by_month.setdefault(month, {})[path] = version
    requests = [
        dg.RunRequest(
            run_key=run_key(f"weblogs:{month}", files),
            partition_key=month,
            tags={"b2b/changed_files": str(len(files))},
        )
        for month, files in sorted(by_month.items())
    ]
    context.log.info(f"{len(changes)} changed log file(s) in {len(requests)} month(s)")
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(current, sort_keys=True))


@dg.sensor(
    job=jobs.leads_job,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=sensor_status(),
    description="Asks for a load of the lead workbooks when one appears, changes or "
    "disappears in B2B_LEADS_DIR.",
)
def lead_workbooks_sensor(
    context: dg.SensorEvaluationContext, leads_dir: DirectoryResource, duckdb: DuckDBResource
) -> dg.SensorResult | dg.SkipReason:
    if not leads_dir.directory.is_dir():
        return dg.SkipReason(f"leads directory {leads_dir.directory} does not exist")
    try:
        files = lead_files(leads_dir).files
        seen = _seen(context, duckdb, "leads")
    except OSError as exc:
        return dg.SkipReason(f"cannot list leads directory {leads_dir.directory}: {exc.strerror}")
    except WarehouseBusy as exc:
        return dg.SkipReason(f"cannot read what the warehouse loaded ({exc}); next tick")
    current, writing = settled(files, seen, _now())
    changes = changed_files(seen, current)
    if not changes:
        return dg.SkipReason(
            "no new, changed or removed lead workbooks"
            + (f" ({writing} still being written)" if writing else "")
        )
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=run_key("leads", changes))],
        cursor=json.dumps(current, sort_keys=True),
    )
