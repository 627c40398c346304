"""What the warehouse has read, kept next to it where a writer can never block a reader.

DuckDB lets one process write a file and, meanwhile, no other process open it, not even
to read. Sensors must know which input files the warehouse already holds without
waiting for (or mistaking) a run in progress, so every step that changes
etl.file_manifest rewrites this small JSON file once its transaction committed:
`{source: {key: "size:modified time"}}` for every file read (loaded, or failed as that
file), keyed by `loaded_file_key`: a web log read by two months is read once by each. It is replaced atomically, so a reader sees the previous or the next state,
never half of one. A crash between the commit and the rewrite leaves the previous
state: a sensor then asks once more for files already loaded, which the run finds
unchanged. It is a cache of etl.file_manifest, never a source of truth.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from pathlib import Path

import duckdb

from b2b_platform.lib.warehouse.location import WarehouseLocation
from b2b_platform.lib.warehouse.private_files import private_umask

SUFFIX = ".files.json"
# The months of one step commit from two threads (each_month). One rewrite at a time,
# each reading the manifest after its own commit: the last one written holds them all.
_REWRITE = threading.Lock()


def file_version(size_bytes: int, modified_at: dt.datetime) -> str:
    """The cheap version of a file a sensor compares: size and modification time."""
    return f"{size_bytes}:{modified_at.isoformat()}"


def loaded_file_key(path: str, partition_key: str | None) -> str:
    """How the state (and a file sensor) names a file read: its path, with the month
    before it for a file read month by month (a log file's lines may feed two)."""
    return path if partition_key is None else f"{partition_key} {path}"


def loaded_files_path(warehouse: WarehouseLocation | str | Path) -> Path | None:
    """The state file of a warehouse file; None for an in-memory database or a lake,
    which readers open beside its writers."""
    text = warehouse.target if isinstance(warehouse, WarehouseLocation) else str(warehouse)
    if not text or text == ":memory:" or text.startswith(("md:", "ducklake:")):
        return None
    path = Path(text)
    return path.with_name(path.name + SUFFIX)


def write_loaded_files(
    conn: duckdb.DuckDBPyConnection, warehouse: WarehouseLocation | str | Path
) -> None:
    """Rewrite the state from etl.file_manifest (call after a commit that changed it)."""
    target = loaded_files_path(warehouse)
    if target is None:
        return
    with _REWRITE:
        _rewrite(conn, target)


def _rewrite(conn: duckdb.DuckDBPyConnection, target: Path) -> None:
    rows = conn.execute(
        "SELECT source, path, partition_key, size_bytes, modified_at FROM etl.file_manifest"
        " WHERE status IN ('loaded', 'failed') AND size_bytes IS NOT NULL"
        " AND modified_at IS NOT NULL ORDER BY source, path, partition_key"
    ).fetchall()
    state: dict[str, dict[str, str]] = {}
    for source, path, month, size, modified in rows:
        state.setdefault(source, {})[loaded_file_key(path, month)] = file_version(size, modified)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with private_umask():  # it names the files read, like the warehouse: the owner's only
        temporary.write_text(json.dumps(state, sort_keys=True), encoding="utf-8")
    os.replace(temporary, target)


def read_loaded_files(
    warehouse: WarehouseLocation | str | Path, source: str
) -> dict[str, str] | None:
    """loaded_file_key -> version of the files of `source` the warehouse has read; None
    when no state was written yet (a warehouse from before this file existed, or none at all)."""
    target = loaded_files_path(warehouse)
    if target is None:
        return None
    try:
        state = json.loads(target.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # unreadable or cut short by a full disk: fall back like a missing one
    files = state.get(source, {}) if isinstance(state, dict) else {}
    return {str(path): str(version) for path, version in files.items()}
