"""Log files that rotation renamed, compressed or copied: their rows follow the file.

Rotation moves a file's lines to another name (`access.log` -> `access.log.1` ->
`access.log.2.gz`), sometimes with more lines than were loaded (the live file grew before
it was rotated). A file is recognized by its identity, a digest of its first line
(log_reader.LogHead), within its directory and month. Before a month's files are planned,
each manifest row whose identity is no longer at its path follows it:

- to the path that now holds that identity: the rows, their findings and the manifest
  row move there; with the same text length the file is the same (renamed or
  compressed) and is not read again, otherwise it is read again and replaces them;
- nowhere, while its old path holds another file: the rows stay, under the old path
  marked as rotated away (`gone`), as a file deleted by retention keeps its rows.

A file whose identity is already loaded under a path still listed is a copy (a
compression in progress, a backup beside the log): it is skipped, never loaded twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from b2b_platform.defs.weblogs.loading import ENTITY, SOURCE, TABLE, record_name
from b2b_platform.lib.input_files.file_manifest import (
    InputFile,
    SkippedEntry,
    content_hash,
    manifest_rows,
)
from b2b_platform.lib.warehouse.schema import table_exists
from b2b_platform.lib.warehouse.sql import SqlFragment
from b2b_platform.lib.weblogs.log_reader import LogHead

ROTATED_AWAY = " (rotated away)"
# the moves as a relation: (month, old path, new path), bound as three lists
RENAMES = (
    "SELECT unnest(?::VARCHAR[]) AS month, unnest(?::VARCHAR[]) AS old_path,"
    " unnest(?::VARCHAR[]) AS new_path"
)


@dataclass(frozen=True)
class Move:
    row: dict[str, Any]  # the manifest row as it was
    new_path: str
    same_text: bool  # the file at new_path holds exactly the text loaded (not read again)


@dataclass(frozen=True)
class Followed:
    moves: list[Move]
    copies: list[SkippedEntry]  # listed files whose lines are loaded under another path


def follow_files(
    conn: duckdb.DuckDBPyConnection,
    partition_key: str,
    files: list[InputFile],
    heads: dict[Path, LogHead],
) -> Followed:
    """Where the month's loaded files went, and which listed files are copies. A row of
    another month whose path this month's file now has is moved out of its way too."""
    listed = {str(f.path): heads[f.path] for f in files if f.path in heads}
    rows = manifest_rows(
        conn,
        SOURCE,
        SqlFragment(
            "status IN ('loaded', 'failed', 'gone') AND first_line_hash IS NOT NULL"
            " AND (partition_key = ? OR list_contains(?, path))"
        ),
        [partition_key, list(listed)],
    )
    # the listed paths holding each identity, per directory (plain files first)
    holders: dict[tuple[str, str], list[str]] = {}
    for path in sorted(listed, key=_preference):
        if listed[path].identity:
            holders.setdefault((str(Path(path).parent), listed[path].identity), []).append(path)
    in_place = [row for row in rows if _identity(listed, row["path"]) == row["first_line_hash"]]
    claimed = {row["path"] for row in in_place if row["partition_key"] == partition_key}
    moves: list[Move] = []
    for row in rows:
        if _identity(listed, row["path"]) == row["first_line_hash"]:
            continue  # still where it was
        key = (str(Path(row["path"]).parent), row["first_line_hash"])
        target = None
        if row["partition_key"] == partition_key:
            target = next((p for p in holders.get(key, []) if p not in claimed), None)
        if target is not None:
            claimed.add(target)
            moves.append(Move(row, target, listed[target].text_bytes == row["text_bytes"]))
        elif row["path"] in listed and (
            row["partition_key"] == partition_key or not holders.get(key)
        ):
            # its content is not here, another file has its name (a row of another month
            # whose file is here under another name follows it when that month loads)
            moves.append(Move(row, row["path"] + ROTATED_AWAY, same_text=True))
    copies = []
    for paths in holders.values():
        kept = next((p for p in paths if p in claimed | {r["path"] for r in in_place}), paths[0])
        reason = f"the same log as {Path(kept).name} (a copy, or a rotation in progress)"
        copies += [SkippedEntry(path, reason) for path in paths if path != kept]
    return Followed(moves, copies)


def _identity(listed: dict[str, LogHead], path: str) -> str | None:
    head = listed.get(path)
    return head.identity if head else None


def _preference(path: str) -> tuple[bool, str]:
    """Of two files with the same lines, the plain one first: a `.gz` beside it may still
    be being written by the compression."""
    return (path.endswith(".gz"), path)


def moved_rows(moves: list[Move], files: dict[str, InputFile]) -> list[dict[str, Any]]:
    """The moved files' manifest rows under their new paths. A file with the same text
    takes its new size, time and hash (so it is unchanged); one with more or other text
    keeps the old ones (so it is read again and its rows replaced)."""
    rows = []
    for move in moves:
        row = {**move.row, "source": SOURCE, "path": move.new_path}
        target = files.get(move.new_path)
        if target is None:  # rotated away: the rows stay, the file is gone
            row["status"] = "gone"
        elif move.same_text:
            row |= {"size_bytes": target.size_bytes, "modified_at": target.modified_at,
                    "content_hash": content_hash(target.path)}  # fmt: skip
        rows.append(row)
    return rows


def move_rows(conn: duckdb.DuckDBPyConnection, moves: list[Move], root: Path) -> None:
    """Inside the month's transaction: the moved files' lines, findings and manifest rows
    leave their old paths (all at once, so that a chain of renames cannot collide)."""
    olds = [move.row["path"] for move in moves]
    months = [move.row["partition_key"] for move in moves]
    conn.execute(  # a file read by two months keeps its row in the other until it moves
        "DELETE FROM etl.file_manifest WHERE source = ?"
        " AND list_contains(?, path || chr(0) || partition_key)",
        [SOURCE, [f"{path}\x00{month}" for path, month in zip(olds, months, strict=True)]],
    )
    if table_exists(conn, TABLE):
        conn.execute(
            f"UPDATE {TABLE} SET source_file = m.new_path FROM ({RENAMES}) m"
            f" WHERE {TABLE}.partition_key = m.month AND {TABLE}.source_file = m.old_path",
            [months, olds, [move.new_path for move in moves]],
        )
    # findings are keyed by file name: "<name>:<line number>"
    conn.execute(
        f"UPDATE quarantine.rejected_records q SET record_key = m.new_path"
        f" || substr(q.record_key, length(m.old_path) + 1) FROM ({RENAMES}) m"
        " WHERE q.source = ? AND q.entity = ? AND q.partition_key = m.month"
        " AND split_part(q.record_key, ':', 1) = m.old_path",
        [months, [record_name(p, root) for p in olds],
         [record_name(m.new_path, root) for m in moves], SOURCE, ENTITY],
    )  # fmt: skip


def followed_paths(conn: duckdb.DuckDBPyConnection, heads: dict[Path, LogHead]) -> set[str]:
    """The manifest's paths whose file is still in the directory under another name (its
    identity is listed there): rotated, not missing."""
    if not table_exists(conn, "etl.file_manifest"):
        return set()
    listed = {(str(path.parent), head.identity) for path, head in heads.items() if head.identity}
    rows = conn.execute(
        "SELECT path, first_line_hash FROM etl.file_manifest WHERE source = ?"
        " AND first_line_hash IS NOT NULL",
        [SOURCE],
    ).fetchall()
    return {path for path, identity in rows if (str(Path(path).parent), identity) in listed}
