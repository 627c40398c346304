"""Sensors: new or changed input files start the runs that load them.

Each sensor keeps, in its cursor, the version (size and modification time) of every
file it has seen. A tick compares the directory with the cursor and asks for a run of
what changed: the month a log file belongs to, or the lead workbooks. The run key is
made from the changed files and their versions, so the same change never runs twice and
a file changed again runs again. Removed files count as changes (their rows must go).
"""

import hashlib
import json
from pathlib import Path

import dagster as dg

from b2b_platform.defs.leads.raw import lead_files
from b2b_platform.defs.operations import jobs
from b2b_platform.defs.operations.default_status import sensor_status
from b2b_platform.defs.platform_db.raw import MONTHLY
from b2b_platform.defs.weblogs.raw import log_files_by_day
from b2b_platform.lib.combined_log import log_file_day
from b2b_platform.lib.resources import DirectoryResource

SENSOR_INTERVAL_SECONDS = 60


def file_versions(paths: list[Path]) -> dict[str, str]:
    """path -> "size:mtime_ns", the cheap version the manifest also compares first."""
    versions = {}
    for path in paths:
        try:
            stat = path.stat()
        except FileNotFoundError:  # removed between listing and stat: next tick sees it
            continue
        versions[str(path)] = f"{stat.st_size}:{stat.st_mtime_ns}"
    return versions


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


def _cursor(context: dg.SensorEvaluationContext) -> dict[str, str]:
    return json.loads(context.cursor) if context.cursor else {}


@dg.sensor(
    job=jobs.weblogs_month_job,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=sensor_status(),
    description="Asks for a run of a month's web logs when one of its files appears, "
    "changes or disappears in B2B_LOG_DIR.",
)
def weblog_files_sensor(
    context: dg.SensorEvaluationContext, log_dir: DirectoryResource
) -> dg.SensorResult | dg.SkipReason:
    if not log_dir.directory.is_dir():
        return dg.SkipReason(f"log directory {log_dir.directory} does not exist")
    current = file_versions(list(log_files_by_day(log_dir)))
    changes = changed_files(_cursor(context), current)
    if not changes:
        return dg.SkipReason("no new, changed or removed log files")
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
    context: dg.SensorEvaluationContext, leads_dir: DirectoryResource
) -> dg.SensorResult | dg.SkipReason:
    if not leads_dir.directory.is_dir():
        return dg.SkipReason(f"leads directory {leads_dir.directory} does not exist")
    current = file_versions([f.path for f in lead_files(leads_dir)])
    changes = changed_files(_cursor(context), current)
    if not changes:
        return dg.SkipReason("no new, changed or removed lead workbooks")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=run_key("leads", changes))],
        cursor=json.dumps(current, sort_keys=True),
    )
