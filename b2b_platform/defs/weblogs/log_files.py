"""The log directory as the loader sees it: which entries are log files, which day and
month each belongs to, what was skipped and why, and a month's version (its files'
names, sizes and modification times)."""

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from b2b_platform.defs.weblogs.loading import ENTITY, SOURCE, TABLE
from b2b_platform.lib.asset_step import (
    month_bounds,
)
from b2b_platform.lib.input_files.file_manifest import (
    InputFile,
    SkippedEntry,
    list_input_files,
    listing_version,
)
from b2b_platform.lib.input_files.gone_files import FileSource
from b2b_platform.lib.resources import (
    DirectoryResource,
)
from b2b_platform.lib.settings import missing_directory
from b2b_platform.lib.weblogs.combined_log import log_file_day


@dataclass(frozen=True)
class LogDirectory:
    """The log files of the directory with their days, and the entries not read."""

    days: dict[Path, dt.date]  # regular log files -> the day their name gives
    files: dict[Path, InputFile]
    skipped: list[tuple[SkippedEntry, dt.date]]


LOG_FILES = FileSource(
    name=SOURCE, what="log directory", variable="B2B_LOG_DIR", table=TABLE,
    asset_key="raw/weblogs", quarantine_entity=ENTITY,
)  # fmt: skip


def present_log_paths(directory: LogDirectory) -> set[str]:
    """Every entry of the directory a log file could be, read or skipped."""
    return {str(path) for path in directory.files} | {e.path for e, _ in directory.skipped}


def is_log_name(name: str) -> bool:
    return log_file_day(Path(name)) is not None


def list_log_files(directory: DirectoryResource) -> LogDirectory:
    """Log files directly inside the directory (regular files only, links never followed)."""
    if not directory.directory.is_dir():
        raise dg.Failure(description=missing_directory("log", directory.directory, "B2B_LOG_DIR"),
                         allow_retries=False)  # fmt: skip
    listing = list_input_files(directory.directory, is_log_name)
    days = {file.path: log_file_day(file.path) for file in listing.files}
    return LogDirectory(
        days={path: day for path, day in days.items() if day is not None},
        files={file.path: file for file in listing.files},
        skipped=[(entry, log_file_day(Path(entry.path))) for entry in listing.skipped],  # type: ignore[misc]
    )


def month_version(
    directory: LogDirectory, partition_key: str, keys: list[str], cutoff: dt.datetime
) -> str:
    """The version of a month's log files: what a refresh compares to decide whether the
    month is read again. Besides the files' names, sizes and times, the load cutoff as far
    as it can change their lines' fate: a line more than a day from its file's day is
    rejected whatever the cutoff, so only a cutoff among the month's days moves it (a
    line held back as future_request is looked at again when the cutoff passes it)."""
    chosen = files_of_month(directory.days, partition_key, keys[0], keys[-1])
    skipped_days = {Path(entry.path): day for entry, day in directory.skipped}
    skipped = files_of_month(skipped_days, partition_key, keys[0], keys[-1])
    listing = listing_version(
        [directory.files[path] for path in chosen],
        [entry for entry, _ in directory.skipped if Path(entry.path) in skipped],
    )
    if not chosen:
        return listing
    first = dt.datetime.combine(min(chosen.values()), dt.time(0)) - dt.timedelta(days=1)
    last = dt.datetime.combine(max(chosen.values()), dt.time(0)) + dt.timedelta(days=2)
    return f"{listing}@{min(max(cutoff, first), last).isoformat()}"


def files_of_month(
    days: dict[Path, dt.date], partition_key: str, first_key: str, last_key: str
) -> dict[Path, dt.date]:
    """Files of the month with their days; the first and last months also take files
    dated before or after the whole range (their lines are out_of_range)."""
    start, end = (b.date() for b in month_bounds(partition_key))
    chosen = {}
    for path, day in days.items():
        if (
            start <= day < end
            or (partition_key == first_key and day < start)
            or (partition_key == last_key and day >= end)
        ):
            chosen[path] = day
    return chosen
