"""The one way anything is written to the warehouse: a slice replaced in one transaction.

Every asset opens a `WarehouseStep`, which records the step in `etl.run_log`, sweeps
up runs that died without finishing, and commits its table slices together with
their quarantine rows, record accounting, file-manifest rows and its own success
record in a single DuckDB transaction. A crash at any point leaves either the old
slice or the new one, never half, and the next step marks the dead run interrupted.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from pathlib import Path
from typing import Any

import duckdb

from b2b_common.dates import month_name
from b2b_common.errors import UserError
from b2b_platform.lib.warehouse import slice_versions
from b2b_platform.lib.warehouse.connection import warehouse_connection
from b2b_platform.lib.warehouse.loaded_files import loaded_files_path, write_loaded_files
from b2b_platform.lib.warehouse.location import WarehouseLocation
from b2b_platform.lib.warehouse.processes import process_alive
from b2b_platform.lib.warehouse.run_log import (
    NOT_PUBLISHED,
    drain_pending_failures,
    pending_failures_file,
)
from b2b_platform.lib.warehouse.schema import ensure_warehouse_schema, table_exists
from b2b_platform.lib.warehouse.sql import bind_variables
from b2b_platform.lib.warehouse.write_conflicts import retry_on_conflict
from b2b_platform.lib.warehouse.writer_sections import exclusive_section
from b2b_platform.lib.warehouse.writes import (
    Accounting,
    CommitResult,
    QuarantineSlice,
    TableSlice,
    create_missing_tables,
    fault_point,
    record_accounting,
    replace_quarantine,
    replace_slice,
    replace_view,
    upsert_manifest,
    utc_now,
)

# ---------------------------------------------------------------- the step


# exceptions that mean "stopped by the operator", by name (Dagster's is not imported here)
INTERRUPTIONS = frozenset(
    {"KeyboardInterrupt", "DagsterExecutionInterruptedError", "InterruptException"}
)


def is_interruption(cls_name: str, message: str) -> bool:
    """An error that says the process was told to stop (Ctrl-C, SIGTERM), not a fault:
    also DuckDB's own translation of a signal that arrived inside a statement."""
    return cls_name in INTERRUPTIONS or (
        cls_name == "RuntimeError" and message.startswith("Query interrupted")
    )


# the counts of a CommitResult that add up into the step's totals
_COUNTERS = ("rows_read", "rows_written", "rows_rejected", "rows_merged", "rows_flagged")


class AuditFailed(Exception):
    """Blocking checks failed on a slice before it was published: it was rolled back."""

    def __init__(self, checks: Sequence[str], partition_key: str | None = None) -> None:
        self.checks = list(checks)
        self.partition_key = partition_key
        where = f" in {month_name(partition_key)}" if partition_key else ""
        super().__init__(
            f"blocking check{'s' if len(self.checks) > 1 else ''} failed{where}:"
            f" {'; '.join(self.checks)}{NOT_PUBLISHED}"
        )


class WarehouseStep:
    """One asset (and partition) being materialized: its connection and its run record."""

    def __init__(
        self,
        conn: duckdb.DuckDBPyConnection,
        run_id: str,
        asset_key: str,
        partition_key: str | None,
        last_event_time: Any = None,
        pending_failures: Path | None = None,
        database: WarehouseLocation | str | Path | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.conn = conn
        self._log = log
        # a lake has other writers: only runs seen to have died are swept
        self._shared = isinstance(database, WarehouseLocation) and database.is_lake
        self._pending_failures = pending_failures
        self._database = database  # where the loaded-files state for sensors lives
        self._manifest_changed = False
        self.run_id = run_id
        self.asset_key = asset_key
        self.partition_key = partition_key
        self.started_at = utc_now()
        self.totals = CommitResult()  # summed over every commit of the step
        self.finished = False
        self._last_event_time = last_event_time
        self.in_transaction = False  # a commit with keep_open left its transaction open
        self._totals_at_begin = CommitResult()
        # (asset key, partition key, input version) of the slices this step builds: the
        # recorded versions are removed by its first commit and written when it succeeds
        self.versions: list[slice_versions.SliceVersion] = []
        self.up_to_date = False  # every slice's recorded input version is the current one
        self.previous_inputs: str | None = None  # JSON of what the (first) slice was built from
        # the data versions its success recorded: (asset key, partition key) -> version
        self.data_versions: dict[tuple[str, str | None], str] = {}

    def exclusive(self, name: str) -> AbstractContextManager[None]:
        """A section no other writer runs at the same time (see writer_sections)."""
        location = self._database if isinstance(self._database, WarehouseLocation) else None
        return exclusive_section(location, name)

    # -- lifecycle

    def begin(self, *, schema_made: bool = False) -> list[tuple[str, str, str | None]]:
        """Create the etl tables (unless an earlier step on this connection did), mark dead
        runs interrupted, record this step as running."""
        if not schema_made:
            # two writers creating a new lake's tables at once: the loser finds them made
            with self.exclusive("table definitions"):  # on a lake, see create_missing_tables
                ensure_warehouse_schema(self.conn)
        interrupted = self._sweep_dead_runs()
        drain_pending_failures(self.conn, self._pending_failures)
        state = loaded_files_path(self._database) if self._database is not None else None
        if state is not None and not state.exists():  # a warehouse older than the state file
            write_loaded_files(self.conn, self._database)
        retry_on_conflict(self._record_start, on_retry=self._log)
        return interrupted

    def _record_start(self) -> None:
        self.conn.execute(
            "INSERT INTO etl.run_log (run_id, asset_key, partition_key, started_at, status, pid, hostname)"
            " VALUES (?, ?, ?, ?, 'running', ?, ?)",
            [
                self.run_id,
                self.asset_key,
                self.partition_key,
                self.started_at,
                os.getpid(),
                socket.gethostname(),
            ],
        )

    def _sweep_dead_runs(self) -> list[tuple[str, str, str | None]]:
        return sweep_dead_steps(
            self.conn, shared=self._shared, last_event_time=self._last_event_time, log=self._log,
            own_step=(self.run_id, self.asset_key),
        )  # fmt: skip

    def rollback(self) -> None:
        """Undo a transaction left open by commit(keep_open=True), totals included."""
        if self.in_transaction:
            # a failed COMMIT (a lake's write conflict) has rolled back already
            with suppress(duckdb.TransactionException):
                self.conn.execute("ROLLBACK")
            self.in_transaction = False
            self.totals = self._totals_at_begin
            self._manifest_changed = False

    def fail(self, error: BaseException) -> None:
        """Record the break: `interrupted` when an operator stopped it (Ctrl-C, SIGTERM),
        `failed` otherwise; the open transaction is rolled back first."""

        def record() -> None:
            self.rollback()
            # built again by the next refresh, even if its inputs then look as they did
            # before (its failure stays on record until a run of it succeeds)
            retry_on_conflict(lambda: self._record_break(error), on_retry=self._log)

        try:
            record()
        except Exception as exc:
            if not is_interruption(type(exc).__name__, str(exc)):
                raise
            # the signal's thread interrupts whatever statement runs when it hears it:
            # aimed at the write it stopped, it may land on this cleanup instead
            record()

    def _record_break(self, error: BaseException) -> None:
        slice_versions.forget_versions(self.conn, [(v[0], v[1]) for v in self.versions])
        message = f"{type(error).__name__}: {error}".strip()[:2000]
        status = "interrupted" if is_interruption(type(error).__name__, str(error)) else "failed"
        self.conn.execute(
            "UPDATE etl.run_log SET status = ?, broken_at = ?, error = ?"
            " WHERE run_id = ? AND asset_key = ? AND partition_key IS NOT DISTINCT FROM ?"
            " AND status = 'running'",
            [status, utc_now(), message, self.run_id, self.asset_key, self.partition_key],
        )

    def finish(self) -> None:
        """Record success with the step's totals (if no commit did so already)."""
        if not self.finished:
            retry_on_conflict(lambda: self._finish(self.totals), on_retry=self._log)

    def _finish(self, result: CommitResult) -> None:
        self.finished = True
        self.data_versions = slice_versions.record_versions(self.conn, self.versions)
        self.conn.execute(
            "UPDATE etl.run_log SET status = 'succeeded', finished_at = ?, rows_read = ?,"
            " rows_written = ?, rows_rejected = ?"
            " WHERE run_id = ? AND asset_key = ? AND partition_key IS NOT DISTINCT FROM ?"
            " AND status = 'running'",
            [
                utc_now(),
                result.rows_read,
                result.rows_written,
                result.rows_rejected,
                self.run_id,
                self.asset_key,
                self.partition_key,
            ],
        )

    # -- the write

    def commit(
        self,
        slices: Sequence[TableSlice] = (),
        quarantine: Sequence[QuarantineSlice] = (),
        accounting: Sequence[Accounting] = (),
        manifest_rows: Sequence[Mapping[str, Any]] = (),
        views: Mapping[str, str] | None = None,
        *,
        records: Sequence[TableSlice] = (),
        rows_read: int | None = None,
        finish: bool = True,
        keep_open: bool = False,
        audit: Callable[[duckdb.DuckDBPyConnection], Sequence[str]] | None = None,
    ) -> CommitResult:
        """Write everything in one transaction; with finish, mark the step succeeded in it too.

        A step that loads file by file commits once per file with finish=False, so a
        crash loses at most the file in flight. `rows_read` is what the step read when
        no accounting entry says it (raw copies). With keep_open the transaction stays
        open and the next commit continues it (a file too large to hold in memory is
        written part by part, yet appears whole or not at all); rollback() undoes it.

        `audit` is write-audit-publish: it runs inside the transaction, sees the new
        slice as no other connection can, and returns the blocking checks that failed.
        Any failure rolls the whole transaction back, so nothing is published, and
        raises AuditFailed naming them. On a lake, a commit that loses a write conflict
        is done again (a transaction left open by keep_open is not).
        """

        def once() -> CommitResult:
            result = CommitResult()
            self._begin()
            try:
                result.rows_written = self._write_slices(slices, records, views)
                for q in quarantine:  # before the accounting, which counts these findings
                    replace_quarantine(self.conn, q, self.run_id)
                self._record_accounting(accounting, result)
                if manifest_rows:
                    upsert_manifest(self.conn, manifest_rows, self.run_id)
                    self._manifest_changed = True
                if rows_read is not None:
                    result.rows_read = rows_read
                self._add_to_totals(result)
                if not keep_open:
                    self._publish(audit, finish)
            except BaseException:
                self.rollback()
                self.finished, self._manifest_changed = False, False
                raise
            return result

        if self.in_transaction:  # a transaction left open cannot be done again alone
            result = once()
        else:  # on a lake, tables first; a commit that lost a conflict is done again
            result = self._write_again_on_conflict([*slices, *records], once)
        if self._manifest_changed and not self.in_transaction and self._database is not None:
            # still holding the writer's connection: state files are written in commit order
            write_loaded_files(self.conn, self._database)
            self._manifest_changed = False
        return result

    def _write_again_on_conflict(
        self, slices: Sequence[TableSlice], write: Callable[[], CommitResult]
    ) -> CommitResult:
        """`write`, done again after a lost conflict; on a lake, the tables the slices go to
        are created first, one writer at a time (see create_missing_tables)."""
        if self._shared:
            with self.exclusive("table definitions"):
                create_missing_tables(self.conn, slices)
        return retry_on_conflict(write, on_retry=self._log)

    def _begin(self) -> None:
        """Open the step's transaction unless a commit with keep_open left it open; the
        totals so far are kept for rollback()."""
        if self.in_transaction:
            return
        self.conn.execute("BEGIN TRANSACTION")
        self.in_transaction = True
        slice_versions.forget_versions(self.conn, [(v[0], v[1]) for v in self.versions])
        self._totals_at_begin = CommitResult(
            **{name: getattr(self.totals, name) for name in _COUNTERS},
            by_entity=dict(self.totals.by_entity),
        )

    def _write_slices(
        self,
        slices: Sequence[TableSlice],
        records: Sequence[TableSlice],
        views: Mapping[str, str] | None,
    ) -> int:
        """Replace the table slices, the bookkeeping records and the views. Returns the
        rows written to the slices."""
        rows_written = 0
        for table_slice in slices:
            rows_written += replace_slice(self.conn, table_slice)
        for record in records:  # bookkeeping that travels with the slice, not counted
            replace_slice(self.conn, record)
        for view, query in (views or {}).items():
            replace_view(self.conn, view, query)
        return rows_written

    def _record_accounting(self, accounting: Sequence[Accounting], result: CommitResult) -> None:
        """Record each entity's accounting and add its counts to `result`."""
        for acc in accounting:
            counts = record_accounting(self.conn, acc, self.run_id)
            result.by_entity[acc.entity] = counts
            result.rows_read += counts["rows_read"]
            result.rows_rejected += counts["rows_rejected"]
            result.rows_merged += counts["rows_merged"]
            result.rows_flagged += counts["rows_flagged"]

    def _add_to_totals(self, result: CommitResult) -> None:
        """Add one commit's counts to the step's totals."""
        totals = self.totals
        for name in _COUNTERS:
            setattr(totals, name, getattr(totals, name) + getattr(result, name))
        totals.by_entity.update(result.by_entity)

    def _publish(
        self, audit: Callable[[duckdb.DuckDBPyConnection], Sequence[str]] | None, finish: bool
    ) -> None:
        """Audit the new slices inside the transaction, then commit it (with the step's
        success record when `finish`); a failed blocking check raises AuditFailed."""
        failed = list(audit(self.conn)) if audit is not None else []
        if failed:
            raise AuditFailed(failed, self.partition_key)
        if finish:
            self._finish(self.totals)
        fault_point(self.asset_key, self.partition_key, self.conn)
        self.conn.execute("COMMIT")
        self.in_transaction = False


def sweep_dead_steps(
    conn: duckdb.DuckDBPyConnection,
    *,
    shared: bool,
    last_event_time: Callable[[str], Any] | None = None,
    log: Callable[[str], None] | None = None,
    own_step: tuple[str, str] | None = None,
) -> list[tuple[str, str, str | None]]:
    """Mark the steps of etl.run_log still `running` whose process is gone interrupted;
    returns them (run, asset, partition). `conn` is a writer's connection.

    Holding a file's connection means no other process is mid-step (DuckDB allows one
    process per file, and a step keeps its connection until its record is final), so
    every row still 'running' belongs to a step that died, but for the other months of
    `own_step` (run, asset) in this process, written beside it (each_month). A lake
    (`shared`) has other writers: there a row is dead when its process on this host is gone.
    """
    running = conn.execute(
        "SELECT run_id, asset_key, partition_key, started_at, pid, hostname"
        " FROM etl.run_log WHERE status = 'running'"
    ).fetchall()
    here = (os.getpid(), socket.gethostname())
    dead = [
        row[:4]
        for row in running
        if not (own_step == row[:2] and here == (row[4], row[5]))
        and (not shared or not process_alive(row[4], row[5]))
    ]
    return retry_on_conflict(lambda: _mark_interrupted(conn, dead, last_event_time), on_retry=log)


def _mark_interrupted(
    conn: duckdb.DuckDBPyConnection,
    dead: list[tuple[str, str, str | None, Any]],
    last_event_time: Callable[[str], Any] | None,
) -> list[tuple[str, str, str | None]]:
    for run_id, asset_key, partition_key, started_at in dead:
        broken_at = last_event_time(run_id) if last_event_time is not None else None
        broken_at = max(broken_at or utc_now(), started_at)
        conn.execute(
            "UPDATE etl.run_log SET status = 'interrupted', broken_at = ?,"
            " error = 'process ended without finishing (killed or machine lost)'"
            " WHERE run_id = ? AND asset_key = ? AND partition_key IS NOT DISTINCT FROM ?"
            " AND status = 'running'",
            [broken_at, run_id, asset_key, partition_key],
        )
    return [(r[0], r[1], r[2]) for r in dead]


def close_dead_steps(
    location: WarehouseLocation,
    *,
    last_event_time: Callable[[str], Any] | None = None,
    wait_seconds: float = 2.0,
) -> list[tuple[str, str, str | None]] | None:
    """What a step does as it begins, for a run that may begin none (all up to date):
    the steps a dead process left `running` are marked interrupted, and the failures
    waiting in DAGSTER_HOME are written. None when another process holds the warehouse
    and did not let go within `wait_seconds`: its steps sweep as they begin."""
    if not location.exists():
        return []
    try:
        with warehouse_connection(location, wait_seconds=wait_seconds) as conn:
            if not table_exists(conn, "etl.run_log"):  # nothing was ever built
                return []
            dead = sweep_dead_steps(conn, shared=location.is_lake, last_event_time=last_event_time)
            drain_pending_failures(conn, pending_failures_file(os.environ.get("DAGSTER_HOME")))
            return dead
    except UserError:  # locked by a writer, which sweeps itself
        return None


@contextmanager
def warehouse_step(
    database: WarehouseLocation | str | Path,
    run_id: str,
    asset_key: str,
    partition_key: str | None,
    *,
    config: Mapping[str, Any] | None = None,
    last_event_time: Any = None,
    log: Any = None,
    connection: duckdb.DuckDBPyConnection | None = None,
    schema_made: bool = False,
) -> Iterator[WarehouseStep]:
    """Open the warehouse for one asset step and keep its run record true whatever happens.
    A monthly step's connection has its month bound as the variable `partition_key`.

    Given an open `connection` (an earlier month's of the same Dagster step, see
    WarehouseResource.each_month), the step works on it and leaves it open;
    `schema_made`: an earlier step on it made the tables and macros."""
    opened = (
        nullcontext(connection)
        if connection is not None
        else warehouse_connection(database, config=config, on_wait=log)
    )
    with opened as conn:
        step = WarehouseStep(
            conn, run_id, asset_key, partition_key, last_event_time,
            pending_failures_file(os.environ.get("DAGSTER_HOME")), database, log,
        )  # fmt: skip
        interrupted = step.begin(schema_made=schema_made)
        if partition_key is not None:  # the month's SQL reads getvariable('partition_key')
            bind_variables(conn, {"partition_key": partition_key})
        if interrupted and log is not None:
            log(f"marked {len(interrupted)} dead step(s) interrupted: {interrupted[:5]}")
        try:
            yield step
        except BaseException as exc:
            try:
                step.fail(exc)
            finally:
                if not isinstance(exc, KeyboardInterrupt) and is_interruption(
                    type(exc).__name__, str(exc)
                ):
                    # a stop signal DuckDB turned into an error inside a statement:
                    # stopped, so the run stops too (as an error, its other steps go on)
                    raise KeyboardInterrupt from exc
            raise
        step.finish()
