"""A lake's own state and upkeep: its current snapshot, its size, and DuckLake's
maintenance (small files merged, old snapshots expired, unreferenced files deleted)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from b2b_platform.lib.warehouse.location import LAKE_CATALOG
from b2b_platform.lib.warehouse.schema import scalar

# snapshots kept for time travel and for readers still on an older one
DEFAULT_SNAPSHOT_RETENTION = dt.timedelta(days=7)


@dataclass(frozen=True)
class LakeSummary:
    snapshot_id: int
    snapshot_time: dt.datetime
    snapshots: int
    tables: int
    data_files: int
    data_bytes: int
    delete_files: int
    delete_bytes: int

    def lines(self) -> list[str]:
        return [
            f"Lake snapshot {self.snapshot_id} of {self.snapshot_time:%Y-%m-%d %H:%M:%S %Z}"
            f" ({self.snapshots} snapshots kept)",
            f"Lake size {_size(self.data_bytes + self.delete_bytes)}: {self.data_files} data"
            f" files ({_size(self.data_bytes)}) and {self.delete_files} delete files"
            f" ({_size(self.delete_bytes)}) in {self.tables} tables",
        ]


def _size(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def lake_summary(conn: duckdb.DuckDBPyConnection) -> LakeSummary:
    """The lake's latest snapshot and the bytes its tables hold (data and delete files)."""
    snapshot_id, snapshot_time, snapshots = conn.execute(
        "SELECT max(snapshot_id), max(snapshot_time), count(*) FROM ducklake_snapshots(?)",
        [LAKE_CATALOG],
    ).fetchall()[0]
    tables, files, data_bytes, delete_files, delete_bytes = conn.execute(
        "SELECT count(*), coalesce(sum(file_count), 0), coalesce(sum(file_size_bytes), 0),"
        " coalesce(sum(delete_file_count), 0), coalesce(sum(delete_file_size_bytes), 0)"
        " FROM ducklake_table_info(?)",
        [LAKE_CATALOG],
    ).fetchall()[0]
    return LakeSummary(
        int(snapshot_id), snapshot_time, int(snapshots), int(tables),
        int(files), int(data_bytes), int(delete_files), int(delete_bytes),
    )  # fmt: skip


def maintain_lake(
    conn: duckdb.DuckDBPyConnection, keep: dt.timedelta = DEFAULT_SNAPSHOT_RETENTION
) -> dict[str, int]:
    """Merge small adjacent files, expire snapshots older than `keep`, then delete the
    files no kept snapshot reads. Writers may go on meanwhile: one whose slice sat in a
    merged file loses a write conflict and commits again."""
    before = lake_summary(conn)
    conn.execute("CALL ducklake_merge_adjacent_files(?)", [LAKE_CATALOG]).fetchall()
    cutoff = dt.datetime.now(dt.UTC) - keep
    expired = scalar(
        conn,
        "SELECT count(*) FROM ducklake_expire_snapshots(?, older_than => ?)",
        [LAKE_CATALOG, cutoff],
    )
    deleted = scalar(
        conn,
        "SELECT count(*) FROM ducklake_cleanup_old_files(?, older_than => ?)",
        [LAKE_CATALOG, cutoff],
    )
    after = lake_summary(conn)
    return {
        "snapshots_expired": int(expired),
        "files_deleted": int(deleted),
        "data_files_before": before.data_files,
        "data_files_after": after.data_files,
        "bytes_before": before.data_bytes + before.delete_bytes,
        "bytes_after": after.data_bytes + after.delete_bytes,
    }
