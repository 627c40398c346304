"""Access-log files as numbered lines: the days a file covers, and the lines of a file or text.

A file is read through LogFileReader in bounded parts; each part is split into
(line_number, line) rows, blank lines included, so every line of the file is accounted
for. Bytes that are not UTF-8 become U+FFFD instead of failing the file.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from b2b_platform.lib.weblogs.log_reader import LogFileReader

# The names web servers and their rotation give access logs, each with what the name says
# of the file's day (docs/operations.md shows each layout). `.gz` may follow any of them.
#   access-2026-12-06.log          one file per day, named for it
#   access.log-20261206            logrotate `dateext` (daily), the rotation's day
#   access.log-2026120613          `dateext` with `dateformat -%Y%m%d%H` (hourly)
#   access.log                     the live file a server appends to
#   access.log.1, access.log.2.gz  logrotate's numbered rotation (also size-based)
#   access_log.1764979200          Apache rotatelogs: seconds since the epoch
#   access_log.2026-12-06-13_00_00 rotatelogs with a strftime pattern
# `access.log` may have a prefix (`other_vhosts_access.log`, `ssl_access_log`); the
# numbered and live files name no day: their first line gives it (log_files.py).
_BASE = r"(?P<base>(?:[\w.-]*[_.-])?access[_.]log)"
LOG_FILE_NAME = re.compile(
    r"^(?:access-(?P<iso>\d{4}-\d{2}-\d{2})\.log"
    rf"|{_BASE}(?:-(?P<compact>\d{{8}})(?:\d{{2}})?"
    r"|\.(?P<number>\d{1,4})"
    r"|\.(?P<epoch>\d{9,11})"
    r"|\.(?P<stamp>\d{4}-\d{2}-\d{2})(?:[-_T][\d_:-]{2,8})?"
    r")?)(?:\.gz)?$"
)


@dataclass(frozen=True)
class LogName:
    """What an access log's name says: its day, or None when only its lines can tell."""

    day: dt.date | None
    # the day the file was rotated (`dateext`), not the day of its lines: mostly the day
    # before, and the last file of a month holds its last day
    rotation_day: bool = False


def access_log_name(name: str) -> LogName | None:
    """The name read as an access log's (LOG_FILE_NAME); None when it is not one."""
    match = LOG_FILE_NAME.match(name)
    if not match:
        return None
    try:
        if match["iso"] or match["stamp"]:
            return LogName(dt.date.fromisoformat(match["iso"] or match["stamp"]))
        if match["compact"]:
            day = dt.datetime.strptime(match["compact"], "%Y%m%d").date()
            return LogName(day, rotation_day=True)
        if match["epoch"]:
            return LogName(dt.datetime.fromtimestamp(int(match["epoch"]), dt.UTC).date())
    except (ValueError, OverflowError, OSError):
        return None  # a date that does not exist (2026-02-30): not a log's name
    return LogName(None)  # the live file, or a numbered one


@dataclass(frozen=True)
class LogDays:
    """The days a log file's requests may fall on: from the day before its own day to the
    day after its last. Its own day is its name's, or its first request's; its last is its
    own for a day-named file (a day's file holds that day, give or take time zones and
    slow requests), the rotation day of a dateext name, and the day it was last written
    for the others (the live file, a numbered rotation: a day, a week, or longer on a
    quiet server). A request outside these days is a clock gone wrong:
    `outside_file_day`, with the file's day."""

    day: dt.date
    last: dt.date

    @property
    def start_at(self) -> dt.datetime:
        """The first instant a request may fall on."""
        return dt.datetime.combine(self.day - dt.timedelta(days=1), dt.time(0))

    @property
    def end_at(self) -> dt.datetime:
        """The first instant after the last day a request may fall on."""
        return dt.datetime.combine(self.last + dt.timedelta(days=2), dt.time(0))

    def months(self, first_key: str, last_key: str) -> list[str]:
        """The months (of first_key .. last_key) the file's lines may belong to: those its
        days reach into, and its own day's (clamped to the range: a file dated outside it
        accounts for its lines there, as out_of_range)."""
        reached = {
            key
            for key in month_keys_between(self.start_at.date(), self.end_at.date())
            if first_key <= key <= last_key
        }
        return sorted(reached | {self.own_month(first_key, last_key)})

    def own_month(self, first_key: str, last_key: str) -> str:
        """The month of the file's own day, clamped to first_key .. last_key."""
        return min(max(_month_key(self.day), first_key), last_key)


def _month_key(day: dt.date) -> str:
    return day.replace(day=1).isoformat()


def month_keys_between(first: dt.date, end: dt.date) -> list[str]:
    """The month keys of the days first .. end (end excluded)."""
    keys, month = [], first.replace(day=1)
    while month < end:
        keys.append(month.isoformat())
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return keys


def log_file_day(path: Path) -> dt.date | None:
    """The day a log file covers as its name gives it; None if the name gives none."""
    name = access_log_name(path.name)
    return name.day if name else None


def read_log_lines(path: Path) -> pl.DataFrame:
    """Every line of a plain or gzipped log as (line_number, line), blank lines included.

    Reads through LogFileReader (bounded parts, long lines cut). Bytes that are not
    UTF-8 become U+FFFD instead of failing the file. A file that cannot be read at all
    (truncated gzip, permissions, a link) raises.
    """
    frames, offset = [], 0
    with LogFileReader(path) as reader:
        for part in reader.parts():
            lines = lines_of_text(part.text)
            frames.append(lines.with_columns(pl.col("line_number") + offset))
            offset += lines.height
    return pl.concat(frames)


# bytes to split lines on: the first one a text does not contain is the column separator
_SEPARATORS = (b"\x1f", b"\x1e", b"\x1d", b"\x1c", b"\x00", b"\x7f")
# a part of PART_TEXT_BYTES holds about 200,000 real lines; this many is blank or cut lines
MAX_LINES_PER_PART = 2_000_000


class TooManyLines(ValueError):
    """A part of text splits into more than MAX_LINES_PER_PART lines."""


def lines_of_text(text: bytes, max_lines: int = MAX_LINES_PER_PART) -> pl.DataFrame:
    """(line_number, line) of a text in memory; raises TooManyLines past max_lines.

    polars splits the text as a one-column CSV on a byte the text does not contain, so
    no line is cut at a control byte; a text holding all of them (random bytes) is split
    by Python's bytes.split instead, which is slower but gives the same lines. Stopping
    at max_lines bounds memory: 5M newlines are 5 KB of gzip.
    """
    separator = next((s for s in _SEPARATORS if s not in text), None)
    if separator is None:
        return _lines_split_in_python(text, max_lines)
    frame = pl.read_csv(
        text,  # bytes, not a stream: polars reads them in place instead of copying
        has_header=False,
        separator=separator.decode(),
        quote_char=None,
        encoding="utf8-lossy",
        schema={"line": pl.String},
        truncate_ragged_lines=True,
        n_rows=max_lines + 1,
    )
    if frame.height > max_lines:
        raise TooManyLines(f"over {max_lines:,} lines in {len(text) >> 20:,} MiB of text")
    if frame["line"].null_count():  # blank lines
        frame = frame.with_columns(pl.col("line").fill_null(""))
    return frame.select(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("line_number"), "line")


def _lines_split_in_python(text: bytes, max_lines: int) -> pl.DataFrame:
    if text.count(b"\n") > max_lines:
        raise TooManyLines(f"over {max_lines:,} lines in {len(text) >> 20:,} MiB of text")
    lines = text.decode("utf-8", "replace").split("\n")
    if lines and lines[-1] == "":  # the text's final newline ends a line, it starts none
        lines.pop()
    return pl.DataFrame({"line": lines}, schema={"line": pl.String}).select(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("line_number"),
        pl.col("line").str.strip_suffix("\r"),  # as polars' CSV reader drops it
    )
