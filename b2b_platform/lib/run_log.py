"""Run failures recorded in etl.run_log, including those that had to wait in a file
because another process held the warehouse's lock when they happened."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Any

import duckdb

from b2b_platform.lib.warehouse_schema import ensure_warehouse_schema, scalar


def pending_failures_file(dagster_home: str | Path | None) -> Path | None:
    """Where failures wait that could not be written while another process held the
    warehouse's lock (a small JSON-lines file in DAGSTER_HOME)."""
    return Path(dagster_home) / "b2b-pending-run-failures.jsonl" if dagster_home else None


def defer_run_failure(path: Path, **failure: Any) -> None:
    """Keep a run failure for the next warehouse step to write (one appended line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(failure, default=str) + "\n"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line)


def drain_pending_failures(conn: duckdb.DuckDBPyConnection, path: Path | None) -> int:
    """Write the deferred run failures into etl.run_log (we hold the writer's lock now).

    The file is renamed before it is read, so a failure deferred meanwhile goes to a new
    file; a drain that dies half-way leaves its file, and recording twice is harmless.
    """
    if path is None:
        return 0
    draining = sorted(path.parent.glob(path.name + ".draining-*"))
    if path.exists():
        taken = path.with_name(f"{path.name}.draining-{os.getpid()}-{time.time_ns()}")
        os.replace(path, taken)
        draining.append(taken)
    written = 0
    for file in draining:
        for line in file.read_text(encoding="utf-8").splitlines():
            failure = json.loads(line)
            written += record_run_failure(
                conn,
                failure["run_id"],
                started_at=dt.datetime.fromisoformat(failure["started_at"]),
                failed_at=dt.datetime.fromisoformat(failure["failed_at"]),
                error=failure["error"],
                partition_key=failure.get("partition_key"),
                status=failure.get("status", "failed"),
            )
        file.unlink()
    return written


def record_run_failure(
    conn: duckdb.DuckDBPyConnection,
    run_id: str,
    *,
    started_at: dt.datetime,
    failed_at: dt.datetime,
    error: str,
    partition_key: str | None = None,
    status: str = "failed",
) -> int:
    """Record a Dagster run's break in etl.run_log, whatever point it broke at.

    `status` is `failed`, or `interrupted` for a run an operator stopped (canceled in the
    UI, SIGTERM or Ctrl-C to `b2b run`). Steps still `running` in that run broke when it
    did; a run that broke outside any step (before the first, between two, in Dagster's
    own code) gets one row of its own, asset `(run)`, so every break is on record.
    Returns the number of rows written. Safe to call twice for the same break.
    """
    ensure_warehouse_schema(conn)
    error = error.strip()[:2000] or f"run {status}"
    conn.execute("BEGIN TRANSACTION")
    try:
        broken = conn.execute(
            "UPDATE etl.run_log SET status = ?, broken_at = ?, error = ?"
            " WHERE run_id = ? AND status = 'running' RETURNING asset_key",
            [status, failed_at, error, run_id],
        ).fetchall()
        recorded = scalar(
            conn,
            "SELECT count(*) FROM etl.run_log WHERE run_id = ? AND status IN ('failed', 'interrupted')",
            [run_id],
        )
        if not recorded:
            conn.execute(
                "INSERT INTO etl.run_log (run_id, asset_key, partition_key, started_at,"
                " broken_at, status, error) VALUES (?, '(run)', ?, ?, ?, ?, ?)",
                [run_id, partition_key, started_at, failed_at, status, error],
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(broken) + (0 if recorded else 1)
