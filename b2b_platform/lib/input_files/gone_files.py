"""Input files gone from their directory: their rows stay until an operator says otherwise.

A server deletes old logs (retention), a share fails to mount, a setting points at another
directory: the files are gone, the lines they held are not wrong. A run marks a file gone
from its directory `gone` in etl.file_manifest and keeps its rows; `b2b status` lists it.
When most of the files loaded before are missing at once (all of them, for a directory
of one or two), the directory itself is suspect: the run loads nothing from it, keeps
every row and fails with a message saying so. Rows are removed only by
`b2b forget-missing-files SOURCE --yes`, which removes those of the files missing now.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb

from b2b_platform.lib.input_files.file_manifest import HOLDS_ROWS, DirectoryListing
from b2b_platform.lib.metadata import markdown_list
from b2b_platform.lib.warehouse.schema import table_exists
from b2b_platform.lib.warehouse.slice_versions import forget_versions
from b2b_platform.lib.warehouse.sql import qualified_name
from b2b_platform.lib.warehouse.step import WarehouseStep
from b2b_platform.lib.warehouse.writes import QuarantineSlice, TableSlice, utc_now

# fewer missing than this is a retention at work unless none of the files is left
SUSPECT_MISSING_FILES = 3


@dataclass(frozen=True)
class FileSource:
    """A directory of input files loaded into one raw table (rows keyed by source_file)."""

    name: str  # etl.file_manifest.source, and the command's argument
    what: str  # "log directory"
    variable: str  # the setting that names the directory
    table: str
    asset_key: str  # its asset: a removal forgets the versions of its slices
    # the quarantine entity whose findings are keyed "<file name>:...", if any
    quarantine_entity: str | None = None


def present_paths(listing: DirectoryListing) -> set[str]:
    """Every entry of the directory an input file could be: read or skipped, it is there."""
    return {str(f.path) for f in listing.files} | {e.path for e in listing.skipped}


def _files_with_rows(
    conn: duckdb.DuckDBPyConnection, source: FileSource
) -> list[tuple[str, str | None, str, int]]:
    """(path, partition_key, status, rows loaded) of every file whose rows are in the
    warehouse."""
    if not table_exists(conn, "etl.file_manifest"):
        return []
    rows = conn.execute(
        "SELECT path, partition_key, status, coalesce(rows_loaded, 0) FROM etl.file_manifest"
        " WHERE source = ? AND list_contains(?, status) ORDER BY path",
        [source.name, list(HOLDS_ROWS)],
    ).fetchall()
    return [(r[0], r[1], r[2], int(r[3])) for r in rows]


def missing_files(
    conn: duckdb.DuckDBPyConnection, source: FileSource, present: Iterable[str]
) -> list[tuple[str, str | None, str, int]]:
    """The files whose rows are in the warehouse but which are not in the directory now."""
    here = set(present)
    return [f for f in _files_with_rows(conn, source) if f[0] not in here]


def refuse_vanished(
    conn: duckdb.DuckDBPyConnection, source: FileSource, directory: Path, present: Iterable[str]
) -> None:
    """Fail the step, changing nothing, when most files loaded before are missing at once
    (files already marked gone were missed before: they do not count)."""
    here = set(present)
    loaded = [f for f in _files_with_rows(conn, source) if f[2] != "gone"]
    missing = [f for f in loaded if f[0] not in here]
    known = len(loaded)
    everything = bool(missing) and len(missing) == known
    if not (everything or (len(missing) >= SUSPECT_MISSING_FILES and 2 * len(missing) > known)):
        return
    raise dg.Failure(
        # the command first: a long path is what a cut-short message loses
        description=(
            f"{source.what} lacks {len(missing)} of the {known} files loaded before (not"
            f" mounted? moved?): rows kept, nothing loaded; if gone for good:"
            f" `b2b forget-missing-files {source.name}` ({source.variable}={directory})"
        ),
        metadata={
            "files_missing": len(missing),
            "files_loaded_before": known,
            "directory": dg.MetadataValue.path(str(directory)),
            "first_missing": markdown_list(Path(m[0]).name for m in missing[:10]),
        },
        allow_retries=False,
    )


def forget_missing_files(
    step: WarehouseStep,
    source: FileSource,
    present: Iterable[str],
    record_name: Callable[[str], str] = lambda path: Path(path).name,
) -> list[tuple[str, int]]:
    """Remove the rows (and quarantine findings, which name a file as `record_name` does)
    of the files missing from the directory, mark them `removed`, and forget the versions
    of the slices they were in, so that the next `b2b run` builds those slices and what
    reads them again. One transaction. Returns (path, rows removed) per file row."""
    missing = missing_files(step.conn, source, present)
    if not missing:
        return []
    has_table = table_exists(step.conn, source.table)
    for path, partition_key, _, _ in missing:
        quarantine = (
            [QuarantineSlice(
                source.name, source.quarantine_entity, partition_key,
                "SELECT NULL AS record_key, NULL AS reason_code, NULL AS action, NULL AS detail,"
                " NULL AS raw_record WHERE false",
                scope="starts_with(record_key, ?)", scope_params=[f"{record_name(path)}:"],
            )]
            if source.quarantine_entity else []
        )  # fmt: skip
        step.commit(
            [TableSlice(source.table, f"SELECT * FROM {qualified_name(source.table)} LIMIT 0",
                        where="source_file = ?", params=[path])] if has_table else [],
            quarantine=quarantine,
            manifest_rows=[{"source": source.name, "path": path, "partition_key": partition_key,
                            "status": "removed", "loaded_at": utc_now(), "rows_read": 0,
                            "rows_loaded": 0, "rows_rejected": 0}],
            finish=False, keep_open=True,
        )  # fmt: skip
    forget_versions(step.conn, sorted({(source.asset_key, m[1]) for m in missing}, key=str))
    step.commit()
    return [(path, rows) for path, _, _, rows in missing]
