"""Log files that grew since they were loaded: read from where the last load stopped.

The live `access.log` grows all day, and a rotated file may hold a few more lines than
were loaded (written between the last run and the rotation). Reading such a file again
from its start would parse the whole day for a minute's lines, so a month's load reads
only what was appended when the manifest row of the file (in that month) shows that the
text loaded is still the start of the file:

- the file is plain text (a gzip file is read whole: its text cannot be reached by offset);
- its first line is the one loaded (`first_line_hash`), it is longer than the text
  loaded (`text_bytes`), and the digest of its first `text_bytes` bytes is the recorded
  `content_hash` (so a truncation by `copytruncate` followed by new lines is a new file);
- the load cutoff has not moved past any of its lines (else it is read whole again).

Its new lines are numbered after the lines loaded, added to its rows and findings (none
replaced), and its manifest row gains their counts: all in the month's transaction.
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Any

import duckdb

from b2b_platform.defs.weblogs.loading import SOURCE, Appended, CutoffBounds, cutoff_moved_past
from b2b_platform.lib.input_files.file_manifest import InputFile, manifest_rows
from b2b_platform.lib.warehouse.sql import SqlFragment
from b2b_platform.lib.weblogs.log_reader import LogHead, TextPrefix, read_prefix


def appended_files(
    conn: duckdb.DuckDBPyConnection,
    partition_key: str,
    files: list[InputFile],
    heads: dict[Path, LogHead],
    cutoff: dt.datetime,
) -> dict[str, Appended]:
    """The month's files that only grew since their load (by path): read from the end of
    the text loaded. The others are planned as usual (new, changed, unchanged)."""
    grown = {
        str(file.path): file
        for file in files
        if file.path.suffix != ".gz" and heads.get(file.path, LogHead(None, None, None)).identity
    }
    if not grown:
        return {}
    rows = manifest_rows(
        conn,
        SOURCE,
        SqlFragment(
            "partition_key = ? AND status = 'loaded' AND text_bytes IS NOT NULL"
            " AND list_contains(?, path)"
        ),
        [partition_key, list(grown)],
    )
    moved = cutoff_moved_past(cutoff)
    found: dict[str, Appended] = {}
    for row in rows:
        file = grown[row["path"]]
        if (
            row["first_line_hash"] != heads[file.path].identity
            or file.size_bytes <= row["text_bytes"]
            or moved(row)
        ):
            continue
        try:
            prefix = _read_prefix(file.path, row["text_bytes"], file.version)
        except OSError:
            continue  # planned as a changed file: its read says what is wrong
        if prefix.hexdigest() == row["content_hash"]:
            found[row["path"]] = _appended(row, prefix)
    return found


@functools.lru_cache(maxsize=64)
def _read_prefix(path: Path, length: int, version: str) -> TextPrefix:
    """read_prefix, once for the months of a run that read the same file to the same
    length (a live file at a month's end feeds two)."""
    return read_prefix(path, length)


def _appended(row: dict[str, Any], prefix: TextPrefix) -> Appended:
    return Appended(
        prefix,
        first_line_hash=row["first_line_hash"],
        rows_read=row["rows_read"] or 0,
        rows_loaded=row["rows_loaded"] or 0,
        bounds=CutoffBounds(row["held_from"], row["loaded_until"]),
    )
