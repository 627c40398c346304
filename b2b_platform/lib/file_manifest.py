"""Which input files are new, changed, unchanged or gone, against etl.file_manifest.

Size and modification time decide cheaply; a content hash confirms a change, so a
file that was only touched is not reloaded, and a file rewritten with the same size
and time is still caught when its size or time moved at all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class InputFile:
    path: Path
    size_bytes: int
    modified_at: dt.datetime

    def manifest_row(self, source: str, digest: str, partition_key: str | None) -> dict[str, Any]:
        """The etl.file_manifest fields known before the file is read."""
        return {
            "source": source,
            "path": str(self.path),
            "partition_key": partition_key,
            "size_bytes": self.size_bytes,
            "modified_at": self.modified_at,
            "content_hash": digest,
            "loaded_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
        }

    @classmethod
    def stat(cls, path: Path) -> InputFile:
        info = path.stat()
        modified = dt.datetime.fromtimestamp(info.st_mtime, dt.UTC).replace(tzinfo=None)
        return cls(path=path, size_bytes=info.st_size, modified_at=modified)


@dataclass(frozen=True)
class FilePlan:
    # file and its content hash; None for a new file when the caller hashes what it reads
    to_load: list[tuple[InputFile, str | None]]
    unchanged: list[InputFile]
    removed: list[str]  # paths in the manifest that no longer exist


def content_hash(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def content_hash_of(data: bytes) -> str:
    """content_hash of bytes already read (the same digest as of the file)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def plan_files(
    conn: duckdb.DuckDBPyConnection,
    source: str,
    files: Iterable[InputFile],
    partition_key: str | None = None,
    *,
    hash_new_files: bool = True,
) -> FilePlan:
    """Compare files on disk with the manifest (of one partition, if given).

    Without hash_new_files, a file the manifest does not know comes back with no hash:
    the caller hashes the bytes as it reads them, instead of reading every file twice.
    """
    rows = conn.execute(
        "SELECT path, size_bytes, modified_at, content_hash, status FROM etl.file_manifest"
        " WHERE source = ? AND (? IS NULL OR partition_key = ?) AND status <> 'removed'",
        [source, partition_key, partition_key],
    ).fetchall()
    known = {r[0]: r for r in rows}
    to_load: list[tuple[InputFile, str | None]] = []
    unchanged: list[InputFile] = []
    seen: set[str] = set()
    for file in files:
        key = str(file.path)
        seen.add(key)
        previous = known.get(key)
        if (
            previous
            and previous[4] == "loaded"
            and previous[1] == file.size_bytes
            and previous[2] == file.modified_at
        ):
            unchanged.append(file)
            continue
        if previous is None and not hash_new_files:
            to_load.append((file, None))
            continue
        digest = content_hash(file.path)
        if previous and previous[4] == "loaded" and previous[3] == digest:
            unchanged.append(file)  # touched, not changed
            continue
        to_load.append((file, digest))
    removed = sorted(set(known) - seen)
    return FilePlan(to_load=to_load, unchanged=unchanged, removed=removed)


def failed_file_row(
    conn: duckdb.DuckDBPyConnection, manifest: dict[str, Any], error: str
) -> dict[str, Any]:
    """Manifest row for a file that could not be read.

    Rows loaded from an earlier, readable version stay in the warehouse (the old slice
    is kept, never half of a new one), so their counts stay on the row and the
    accounting identity keeps holding until the file is replaced and loads again.
    """
    previous = conn.execute(
        "SELECT rows_read, rows_loaded, rows_rejected FROM etl.file_manifest"
        " WHERE source = ? AND path = ? AND status IN ('loaded', 'failed')",
        [manifest["source"], manifest["path"]],
    ).fetchall()
    counts = previous[0] if previous else (None, None, None)
    return {
        **manifest,
        "status": "failed",
        "error": error,
        "rows_read": counts[0],
        "rows_loaded": counts[1],
        "rows_rejected": counts[2],
    }
