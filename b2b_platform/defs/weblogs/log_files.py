"""The log directory as the loader sees it: which entries are access logs, which days
and months their lines may fall in, what was skipped and why, and a month's version (its
files' names, sizes and modification times).

A file's day is the one its name gives (a day file, `dateext`, rotatelogs) or, for the
names that give none (the live `access.log`, numbered rotations), the day of its first
request: a file keeps its day through every rename and compression rotation puts it
through. Its identity (log_reader.LogHead) is its first line.

A line belongs to the month of its own time, not its file's: a file rotated at 06:25
holds the first hours of the next day, a day file may end with a request logged after
midnight that started before it. So each month reads the files whose days reach into it
(LogDays) and keeps their lines of that month; a file at a month's edge feeds both.
"""

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from b2b_platform.defs.weblogs.loading import ENTITY, SOURCE, TABLE
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
from b2b_platform.lib.weblogs.log_lines import LogDays, access_log_name
from b2b_platform.lib.weblogs.log_reader import LogHead, read_head


@dataclass(frozen=True)
class LogDirectory:
    """The log files of the directory with their days, and the entries not read."""

    days: dict[Path, LogDays]  # regular log files -> the days their lines may fall on
    files: dict[Path, InputFile]
    skipped: list[tuple[SkippedEntry, dt.date | None]]  # None: listed with the last month
    heads: dict[Path, LogHead]


LOG_FILES = FileSource(
    name=SOURCE, what="log directory", variable="B2B_LOG_DIR", table=TABLE,
    asset_key="raw/weblogs", quarantine_entity=ENTITY,
)  # fmt: skip


def present_log_paths(directory: LogDirectory) -> set[str]:
    """Every entry of the directory a log file could be, read or skipped."""
    return {str(path) for path in directory.files} | {e.path for e, _ in directory.skipped}


def is_log_name(name: str) -> bool:
    return access_log_name(name) is not None


NOT_AN_ACCESS_LOG = "not an access log's name (docs/operations.md lists the names read)"


def list_log_files(directory: DirectoryResource) -> LogDirectory:
    """The access logs of the directory and of its subdirectories, one per web server
    (regular files only, links never followed); every other entry is skipped with its
    reason."""
    root = directory.directory
    if not root.is_dir():
        raise dg.Failure(description=missing_directory("log", root, "B2B_LOG_DIR"),
                         allow_retries=False)  # fmt: skip
    found = LogDirectory(days={}, files={}, skipped=[], heads={})
    listing = list_input_files(root, lambda name: True)
    _add_logs(found, listing.files)
    for entry in listing.skipped:
        server = Path(entry.path)
        if server.is_dir() and not server.is_symlink():
            hosts = list_input_files(server, lambda name: True)
            if any(access_log_name(file.path.name) for file in hosts.files):
                _add_logs(found, hosts.files)  # a web server's directory
                found.skipped.extend((e, _name_day(e)) for e in hosts.skipped)
                continue
            entry = SkippedEntry(entry.path, "a directory without access logs")
        found.skipped.append((entry, _name_day(entry)))
    found.skipped.sort(key=lambda pair: pair[0].path)
    return found


def _add_logs(found: LogDirectory, files: list[InputFile]) -> None:
    for file in files:
        name = access_log_name(file.path.name)
        if name is None:
            found.skipped.append((SkippedEntry(str(file.path), NOT_AN_ACCESS_LOG), None))
            continue
        head = found.heads[file.path] = read_head(file)
        found.files[file.path] = file
        # a name without a day, or with the day it was rotated: the first request's,
        # else (empty, or no request time in its head) the day it was last written
        from_lines = head.day if name.day is None or name.rotation_day else None
        day = from_lines or name.day or file.modified_at.date()
        # its last day: a day file's own; a dateext file's rotation day (it was closed
        # then); a file with no day in its name, the day it was last written (its last
        # line need not be its latest request: files get merged)
        if name.day is not None:
            last = max(day, name.day) if name.rotation_day else day
        else:
            last = max(day, file.modified_at.date())
        found.days[file.path] = LogDays(day, last)


def _name_day(entry: SkippedEntry) -> dt.date | None:
    name = access_log_name(Path(entry.path).name)
    return name.day if name else None


def month_version(
    directory: LogDirectory, partition_key: str, keys: list[str], cutoff: dt.datetime
) -> str:
    """The version of a month's log files: what a refresh compares to decide whether the
    month is read again. Besides the files' names, sizes and times, the load cutoff as far
    as it can change their lines' fate: a line more than a day from its file's day is
    rejected whatever the cutoff, so only a cutoff among the month's days moves it (a
    line held back as future_request is looked at again when the cutoff passes it)."""
    chosen = files_of_month(directory.days, partition_key, keys[0], keys[-1])
    skipped = skipped_of_month(directory, partition_key, keys[0], keys[-1])
    listing = listing_version(
        [directory.files[path] for path in chosen],
        skipped,
    )
    if not chosen:
        return listing
    first = min(days.start_at for days in chosen.values())
    last = max(days.end_at for days in chosen.values())
    return f"{listing}@{min(max(cutoff, first), last).isoformat()}"


def skipped_of_month(
    directory: LogDirectory, partition_key: str, first_key: str, last_key: str
) -> list[SkippedEntry]:
    """The entries skipped whose day falls in the month; those without a day go with the
    last month, so that every entry is listed somewhere."""
    dated = {
        Path(entry.path): LogDays(day, day) for entry, day in directory.skipped if day is not None
    }
    in_month = {
        path for path, days in dated.items() if days.own_month(first_key, last_key) == partition_key
    }
    return [
        entry
        for entry, day in directory.skipped
        if Path(entry.path) in in_month or (day is None and partition_key == last_key)
    ]


def files_of_month(
    days: dict[Path, LogDays], partition_key: str, first_key: str, last_key: str
) -> dict[Path, LogDays]:
    """The files whose lines may belong to the month (LogDays.months), with their days."""
    return {
        path: file_days
        for path, file_days in days.items()
        if partition_key in file_days.months(first_key, last_key)
    }
