"""Input files: which entries of a directory may be read, and which are new, changed,
unchanged or gone against etl.file_manifest.

Only regular files directly inside the configured directory are read. Symbolic links
(even to a regular file), directories, sockets, FIFOs and devices are skipped with a
reason the operator sees, never followed or opened: a link to /proc/self/environ would
otherwise copy the process environment into the quarantine. Every step that touches one
file (stat, hash, open) raises only for that file, so its caller can fail it alone.

Size and modification time decide cheaply; a content hash confirms a change, so a
file that was only touched is not reloaded (and its new time is recorded, so it is not
hashed again), and a file rewritten with the same size and time is still caught when its
size or time moved at all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import duckdb

from b2b_platform.lib.warehouse.loaded_files import file_version
from b2b_platform.lib.warehouse.sql import SqlFragment, identifier_list

# A file written to within this many seconds may still be being written (the settle
# rule): sensors wait for it, and a log's unfinished last line waits for the next run.
SETTLE_SECONDS = 300


@dataclass(frozen=True)
class InputFile:
    path: Path
    size_bytes: int
    modified_at: dt.datetime

    @property
    def version(self) -> str:
        """What tells one state of the file from another, cheaply: its size and
        modification time (the one form every comparison of files uses)."""
        return file_version(self.size_bytes, self.modified_at)

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
        """The file's version, without following a symbolic link."""
        return cls.of(path, path.lstat())

    @classmethod
    def of(cls, path: Path, info: os.stat_result) -> InputFile:
        modified = dt.datetime.fromtimestamp(info.st_mtime, dt.UTC).replace(tzinfo=None)
        return cls(path=path, size_bytes=info.st_size, modified_at=modified)


@dataclass(frozen=True)
class SkippedEntry:
    """A directory entry with an input file's name that is not read, and why."""

    path: str  # printable: bytes that are not UTF-8 shown as U+FFFD
    reason: str

    def manifest_row(self, source: str, partition_key: str | None) -> dict[str, Any]:
        return {
            "source": source,
            "path": self.path,
            "partition_key": partition_key,
            "status": "skipped",
            "error": self.reason,
            "loaded_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
            "rows_read": 0,
            "rows_loaded": 0,
            "rows_rejected": 0,
        }


@dataclass(frozen=True)
class DirectoryListing:
    files: list[InputFile]  # regular files, sorted by path
    skipped: list[SkippedEntry]


def listing_version(files: Iterable[InputFile], skipped: Iterable[SkippedEntry] = ()) -> str:
    """The version of a set of input files: their paths and versions (a file touched
    but unchanged makes it new, and its readers are rebuilt for nothing, which is safe),
    and the entries skipped with their reasons."""
    entries = sorted((str(f.path), f.version) for f in files)
    return hashlib.sha256(
        repr((entries, sorted((e.path, e.reason) for e in skipped))).encode()
    ).hexdigest()[:20]


def printable_name(name: str) -> str:
    """A file name as text: bytes that are not UTF-8 (surrogate-escaped by os) become U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


HARD_LINK = "a hard link (links are never followed: copy the file into the directory)"


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link (links are never followed: copy the file into the directory)"
    if stat.S_ISDIR(mode):
        return "a directory, not a file"
    if stat.S_ISSOCK(mode):
        return "a socket, not a file"
    if stat.S_ISFIFO(mode):
        return "a named pipe, not a file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device, not a file"
    return "not a regular file"


def list_input_files(directory: Path, wanted: Callable[[str], bool]) -> DirectoryListing:
    """Regular files directly inside `directory` whose name `wanted` accepts.

    Entries with a wanted name that cannot be read as such (symbolic or hard links,
    directories, devices, names that are not UTF-8, macOS `._` side files, entries that
    vanish or cannot be stat-ed) come back in `skipped` with the reason; nothing here
    follows a link or opens a file.
    """
    files: list[InputFile] = []
    skipped: list[SkippedEntry] = []
    with os.scandir(directory) as entries:
        for entry in entries:
            if not wanted(entry.name):
                continue
            shown = str(directory / printable_name(entry.name))
            if shown != entry.path:
                skipped.append(SkippedEntry(shown, "file name is not valid UTF-8: rename it"))
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError as exc:
                skipped.append(SkippedEntry(shown, f"cannot stat: {exc.strerror or exc}"))
                continue
            if not stat.S_ISREG(info.st_mode):
                skipped.append(SkippedEntry(shown, _kind(info.st_mode)))
                continue
            if entry.name.startswith("._"):
                # what macOS writes beside a file copied to a foreign disk: not the data
                skipped.append(SkippedEntry(shown, "a macOS metadata file (._name), not data"))
                continue
            if info.st_nlink > 1:  # another name of a file that may live anywhere
                skipped.append(SkippedEntry(shown, HARD_LINK))
                continue
            files.append(InputFile.of(Path(entry.path), info))
    files.sort(key=lambda f: str(f.path))
    skipped.sort(key=lambda s: s.path)
    return DirectoryListing(files=files, skipped=skipped)


def open_regular_file(path: Path) -> IO[bytes]:
    """Open a file for reading only if it is a regular file, never through a link.

    O_NOFOLLOW and the fstat close the gap between listing and opening (a file swapped
    for a symbolic or hard link, a FIFO that would block the reader forever).
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{path.name} is not a regular file")
        if info.st_nlink > 1:  # made a hard link since it was listed
            raise OSError(f"{path.name} is {HARD_LINK}")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _new_digest() -> Any:
    return hashlib.blake2b(digest_size=16)


def content_hash(path: Path) -> str:
    with open_regular_file(path) as handle:
        return hashlib.file_digest(handle, _new_digest).hexdigest()


def content_hash_of(data: bytes) -> str:
    """content_hash of bytes already read (the same digest as of the file)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def error_line(exc: BaseException) -> str:
    """One line that says what went wrong with a file, for the manifest and the operator."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:500]


# The manifest statuses of files whose rows are in the warehouse: a file gone from the
# directory keeps its rows (a server's retention, an unmounted share) until an operator
# removes them (`forget_missing_files`); only then is it `removed`.
HOLDS_ROWS = ("loaded", "failed", "gone")


@dataclass(frozen=True)
class FilePlan:
    # file and its content hash; None for a new file when the caller hashes what it reads
    to_load: list[tuple[InputFile, str | None]]
    unchanged: list[InputFile]
    # manifest rows of files gone from the directory since the last run, as `gone`:
    # their rows and counts stay
    gone: list[dict[str, Any]]
    # touched but identical (or back where they were): their manifest rows with the new
    # size and time, to record
    touched: list[dict[str, Any]]
    unreadable: list[tuple[InputFile, str]]  # could not be hashed: the error
    # failed before and unchanged since (same size and time): not read again, the error
    still_failed: list[tuple[InputFile, str]]


MANIFEST_FIELDS = (
    "path", "partition_key", "size_bytes", "modified_at", "content_hash", "status",
    "rows_read", "rows_loaded", "rows_rejected", "loaded_at", "error", "load_cutoff",
    "held_from", "loaded_until", "first_line_hash", "text_bytes",
)  # fmt: skip


def manifest_rows(
    conn: duckdb.DuckDBPyConnection, source: str, condition: SqlFragment, params: list[Any]
) -> list[dict[str, Any]]:
    """The source's etl.file_manifest rows (MANIFEST_FIELDS) that meet `condition` (an SQL
    predicate with `?` for `params`), as dicts."""
    rows = conn.execute(
        f"SELECT {identifier_list(MANIFEST_FIELDS)} FROM etl.file_manifest"
        f" WHERE source = ? AND ({condition})",
        [source, *params],
    ).fetchall()
    return [dict(zip(MANIFEST_FIELDS, row, strict=True)) for row in rows]


def plan_files(
    conn: duckdb.DuckDBPyConnection,
    source: str,
    files: Iterable[InputFile],
    partition_key: str | None = None,
    *,
    hash_new_files: bool = True,
    skipped: Iterable[SkippedEntry] = (),
    read_again: Callable[[Mapping[str, Any]], bool] | None = None,
) -> FilePlan:
    """Compare files on disk with the manifest (of one partition, if given).

    Without hash_new_files, a file the manifest does not know comes back with no hash:
    the caller hashes the bytes as it reads them, instead of reading every file twice.
    Entries skipped by the listing are neither loaded nor removed. `read_again` names the
    unchanged files that must be read again all the same (their manifest row says the
    load would now come out differently: the load cutoff moved past their lines).
    """
    rows = manifest_rows(
        conn, source, SqlFragment("(? IS NULL OR partition_key = ?) AND status <> 'removed'"),
        [partition_key, partition_key],
    )  # fmt: skip
    known = {row["path"]: row for row in rows}
    to_load: list[tuple[InputFile, str | None]] = []
    unchanged: list[InputFile] = []
    touched: list[dict[str, Any]] = []
    unreadable: list[tuple[InputFile, str]] = []
    still_failed: list[tuple[InputFile, str]] = []
    seen: set[str] = {entry.path for entry in skipped}
    for file in files:
        key = str(file.path)
        seen.add(key)
        previous = known.get(key)
        loaded = previous is not None and previous["status"] in ("loaded", "gone")
        again = loaded and read_again is not None and read_again(previous)
        if (
            loaded
            and previous["size_bytes"] == file.size_bytes
            and previous["modified_at"] == file.modified_at
        ):
            if again:  # the same bytes, loaded anew: its old rows are replaced
                to_load.append((file, previous["content_hash"]))
            else:
                unchanged.append(file)
                if previous["status"] == "gone":  # back (a share mounted again)
                    touched.append({**previous, "source": source, "status": "loaded"})
            continue
        if (
            previous is not None
            and previous["status"] == "failed"
            and previous["size_bytes"] == file.size_bytes
            and previous["modified_at"] == file.modified_at
        ):  # it would fail again, and a bomb would cost as much again: read once changed
            still_failed.append((file, previous["error"] or "failed"))
            continue
        if previous is None and not hash_new_files:
            to_load.append((file, None))
            continue
        try:
            digest = content_hash(file.path)
        except OSError as exc:  # permissions, gone since listing, swapped for a link
            unreadable.append((file, error_line(exc)))
            continue
        if loaded and previous["content_hash"] == digest and not again:
            unchanged.append(file)  # touched, not changed: remember its new time
            touched.append(
                {**previous, "source": source, "size_bytes": file.size_bytes,
                 "modified_at": file.modified_at, "status": "loaded"}
            )  # fmt: skip
            continue
        to_load.append((file, digest))
    gone = [
        {**known[path], "source": source, "status": "gone"}
        for path in sorted(set(known) - seen)
        if known[path]["status"] != "gone"
    ]
    return FilePlan(to_load, unchanged, gone, touched, unreadable, still_failed)


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
        " WHERE source = ? AND path = ? AND partition_key IS NOT DISTINCT FROM ?"
        " AND status IN ('loaded', 'failed', 'gone')",
        [manifest["source"], manifest["path"], manifest.get("partition_key")],
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
