"""Opening the warehouse: a DuckDB file, one writer at a time (its file lock) with a
bounded, never silent wait for it; or a DuckLake, where writers do not wait for each
other."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import duckdb

from b2b_common.errors import UserError
from b2b_platform.lib.warehouse.location import WarehouseLocation, forget_lake, open_lake
from b2b_platform.lib.warehouse.private_files import private_umask
from b2b_platform.lib.warehouse.processes import process_command
from b2b_platform.lib.warehouse.schema import create_macros

LOCK_WAIT_SECONDS = 120.0

# The connections open in this process. A stop signal reaches Python only between
# statements, and a long one (a large month's insert or commit) runs in DuckDB for a
# minute: interrupt_statements() cuts it short from the thread that hears the signal.
_open_connections: set[duckdb.DuckDBPyConnection] = set()
_open_lock = threading.Lock()


def interrupt_statements() -> None:
    """Interrupt the statement each open connection is running (its transaction then
    rolls back, as a stopped step's must)."""
    with _open_lock:
        connections = list(_open_connections)
    for conn in connections:
        with suppress(duckdb.Error):  # closed meanwhile
            conn.interrupt()


@contextmanager
def warehouse_connection(
    location: WarehouseLocation | str | Path,
    *,
    read_only: bool = False,
    config: Mapping[str, Any] | None = None,
    wait_seconds: float = LOCK_WAIT_SECONDS,
    on_wait: Any = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse, waiting while another process holds its lock; always close it.

    The wait is bounded and never silent: `on_wait` hears once what is waited for (the
    process holding the lock), and the end of the wait is an error that names it.
    A lake has no such lock: it is attached, with the macros its SQL calls.

    Whatever is created while the connection is open (the file, its WAL and spill files,
    a lake's Parquet, the files a step writes) is the owner's only: see private_files.
    """
    if not isinstance(location, WarehouseLocation):
        location = WarehouseLocation(target=str(location))
    if not location.is_lake and not read_only:
        # the folders on the way keep the operator's umask: they may hold the reports too
        location.file_path.parent.mkdir(parents=True, exist_ok=True)
    with (
        private_umask(),
        _open(location, read_only, dict(config or {}), wait_seconds, on_wait) as conn,
    ):
        with _open_lock:
            _open_connections.add(conn)
        try:
            yield conn
        finally:
            with _open_lock:
                _open_connections.discard(conn)


@contextmanager
def _open(
    location: WarehouseLocation,
    read_only: bool,
    config: dict[str, Any],
    wait_seconds: float,
    on_wait: Any,
) -> Iterator[duckdb.DuckDBPyConnection]:
    if location.is_lake:
        conn = open_lake(location, read_only=read_only, config=config)
        try:
            create_macros(conn, temporary=True)
            yield conn
        except duckdb.Error as exc:
            if isinstance(exc, duckdb.FatalException):  # the process's instance is unusable
                forget_lake(location)
            # the catalog's connection can fail at any query (and be made again), and
            # DuckDB's error then quotes its conninfo: the same error, password masked
            masked = location.mask(str(exc))
            if masked == str(exc):
                raise
            raise type(exc)(masked) from None
        finally:
            conn.close()
        return
    path = location.file_path
    # a conninfo missing its `ducklake:` prefix reads as a file name: shown masked
    shown = location.describe()
    if read_only and not path.exists():
        raise UserError(f"warehouse {shown} does not exist yet: run `b2b run` first")
    started = time.monotonic()
    warned = False
    while True:
        try:
            conn = duckdb.connect(str(path), read_only=read_only, config=config)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                masked = location.mask(str(exc))
                # DuckDB's own error stays the cause unless it quotes a password
                raise UserError(f"cannot open warehouse {shown}: {masked.splitlines()[0]}") from (
                    exc if masked == str(exc) else None
                )
            holder = lock_holder(str(exc))
            waited = time.monotonic() - started
            if waited >= wait_seconds:
                raise UserError(
                    f"warehouse {shown} is locked by {holder}; gave up after {waited:.0f} s:"
                    " try again when it finishes"
                ) from None
            if not warned and on_wait is not None:
                on_wait(
                    f"waiting up to {wait_seconds:.0f} s for warehouse {shown}, locked by {holder}"
                )
                warned = True
            time.sleep(0.5)
    if warned and on_wait is not None:
        on_wait(f"warehouse {shown} opened after waiting {time.monotonic() - started:.1f} s")
    try:
        yield conn
    finally:
        conn.close()


def lock_holder(message: str) -> str:
    """Who holds the warehouse's lock, from DuckDB's message: "process 123 (b2b run)"."""
    match = re.search(r"\(PID (\d+)\)", message)
    if not match:
        return "another process"
    pid = match.group(1)
    command = process_command(int(pid))
    return f"process {pid} ({command})" if command else f"process {pid}"
