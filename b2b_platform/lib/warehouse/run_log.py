"""Run failures recorded in etl.run_log, including those that had to wait in a file
because another process held the warehouse's lock when they happened."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from b2b_common.dates import month_name
from b2b_platform.lib.warehouse.schema import ensure_warehouse_schema, scalar, table_exists


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
        # counted, then updated: a lake (DuckLake) has no UPDATE ... RETURNING
        broken = scalar(
            conn,
            "SELECT count(*) FROM etl.run_log WHERE run_id = ? AND status = 'running'",
            [run_id],
        )
        conn.execute(
            "UPDATE etl.run_log SET status = ?, broken_at = ?, error = ?"
            " WHERE run_id = ? AND status = 'running'",
            [status, failed_at, error, run_id],
        )
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
    return int(broken) + (0 if recorded else 1)


# How a step a blocking check stopped records its error in etl.run_log:
# "AuditFailed: blocking check failed in Dec 2026: <asset:check (figures)>; the slice ..."
AUDIT_FAILED_PREFIX = "AuditFailed: "
NOT_PUBLISHED = "; the slice was not published, the previous one stays"
_FAILED_CHECKS = re.compile(r"blocking checks? failed(?: in [A-Z][a-z]{2} \d{4})?: (.*)")


@dataclass(frozen=True)
class HeldSlice:
    """A slice a blocking check holds back: its new data was not published, the previous
    slice (or none) stays, and the next run tries again."""

    asset_key: str  # the step: one asset, or the assets of a multi-asset joined by commas
    partition_key: str | None
    error: str  # as etl.run_log has it
    since: dt.datetime

    @property
    def reason(self) -> str:
        """The checks that failed, with their figures."""
        text = self.error.removeprefix(AUDIT_FAILED_PREFIX).split(NOT_PUBLISHED)[0]
        found = _FAILED_CHECKS.match(text)
        return found.group(1) if found else text

    @property
    def where(self) -> str:
        return self.asset_key + (f" {month_name(self.partition_key)}" if self.partition_key else "")


def held_slices(
    conn: duckdb.DuckDBPyConnection, first_month: dt.date | None = None
) -> list[HeldSlice]:
    """The slices held now: their latest attempt failed a blocking check and no later one
    succeeded (months before `first_month` are no longer built, so no longer held)."""
    if not table_exists(conn, "etl.run_log"):
        return []
    rows = conn.execute(
        """SELECT asset_key, partition_key, error, broken_at FROM etl.run_log r
           WHERE status = 'failed' AND starts_with(error, ?)
             AND (partition_key IS NULL OR ? IS NULL OR partition_key >= ?)
             AND NOT EXISTS (SELECT 1 FROM etl.run_log later
                             WHERE later.asset_key = r.asset_key
                               AND later.partition_key IS NOT DISTINCT FROM r.partition_key
                               AND later.started_at > r.started_at
                               AND later.status IN ('succeeded', 'failed'))
           ORDER BY partition_key NULLS FIRST, asset_key""",
        [AUDIT_FAILED_PREFIX, first_month, str(first_month)],
    ).fetchall()
    return [HeldSlice(key, month, error, at) for key, month, error, at in rows]
