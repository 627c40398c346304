"""Parse workbooks in a child process, so a reader crash fails one workbook, not the run."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.connection import Connection
from queue import SimpleQueue
from types import TracebackType
from typing import TypeVar

import polars as pl
import psutil

from b2b_platform.lib.workbooks.lead_workbooks import LeadSheet, LeadWorkbookError, parse_workbook
from b2b_platform.lib.workbooks.workbook_size import (
    LIMITS,
    WorkbookLimits,
    check_workbook_size,
    unreadable,
)

# ---------------------------------------------------------------- isolated reading

READ_TIMEOUT_SECONDS = 120.0  # a campaign export parses in well under a second
CHILD_MEMORY_HEADROOM = 1 << 30  # what the reader may map beyond its warmed-up footprint
# The child imports this module only: multiprocessing's spawn would also import the
# parent's __main__ (the dagster command line, a second of imports) in every child.
_CHILD = "from b2b_platform.lib.workbooks.workbook_reader import _serve; _serve({fd}, {headroom})"
# Workbooks parsed at once, one child each: a parse is single-threaded (calamine, then
# polars on a small frame), and the run's other work waits for the leads meanwhile.
# `large`'s 24 workbooks: 1.73 s one after another.
READERS = 2
Item = TypeVar("Item")
Parsed = TypeVar("Parsed")


class WorkbookReader:
    """Parses workbooks in one child process, started once and reused for every workbook.

    A child that dies (calamine aborts on an allocation it cannot make, a signal) or
    stops answering fails the workbook it was reading; the next workbook gets a new
    child. Its address space is capped (RLIMIT_AS) at CHILD_MEMORY_HEADROOM beyond what
    it maps once warmed up, so an allocation that would swamp the machine fails there.
    Answers come back as JSON and Arrow IPC, never as a pickle from the child.
    """

    def __init__(
        self,
        limits: WorkbookLimits = LIMITS,
        timeout_seconds: float = READ_TIMEOUT_SECONDS,
        memory_headroom: int = CHILD_MEMORY_HEADROOM,
    ) -> None:
        self.limits = limits
        self.timeout_seconds = timeout_seconds
        self.memory_headroom = memory_headroom
        self._child: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None

    def __enter__(self) -> WorkbookReader:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def read(self, data: bytes) -> LeadSheet:
        """check_workbook_size(), then parse_workbook() in the child."""
        check_workbook_size(data, self.limits)
        conn = self._start()
        try:
            conn.send_bytes(data)
            if not conn.poll(self.timeout_seconds):
                self._stop()
                raise unreadable(f"the reader took over {self.timeout_seconds:g} s and was stopped")
            answer = json.loads(conn.recv_bytes())
            if "error" in answer:
                raise LeadWorkbookError(answer["error"])
            frame = pl.read_ipc(conn.recv_bytes())
        except LeadWorkbookError:
            raise
        except (EOFError, OSError) as exc:  # the child is gone: a broken pipe or end of file
            raise LeadWorkbookError(f"the workbook reader crashed ({self._stop()})") from exc
        except BaseException:
            self._stop()  # an answer read halfway would be taken for the next workbook's
            raise
        return LeadSheet(
            frame, answer["sheet_name"], answer["header_row"], tuple(answer["ignored"])
        )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()  # the child reads end of file and exits
            self._conn = None
        if self._child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):  # then killed below
                self._child.wait(timeout=5)
        self._stop()

    def kill(self) -> None:
        """End the child at once, from any thread: the read in flight fails."""
        child = self._child
        if child is not None and child.poll() is None:
            child.kill()

    def _start(self) -> Connection:
        if self._conn is None or self._child is None:
            ours, theirs = socket.socketpair()
            code = _CHILD.format(fd=theirs.fileno(), headroom=self.memory_headroom)
            # the child sees the modules the parent sees, as multiprocessing would do
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
            with theirs:  # closed here once the child holds it: its death reads as end of file
                self._child = subprocess.Popen(
                    [sys.executable, "-c", code], pass_fds=[theirs.fileno()], env=env,
                    stdin=subprocess.DEVNULL,
                )  # fmt: skip
            self._conn = Connection(ours.detach())
        return self._conn

    def _stop(self) -> str:
        """End the child if it still runs; how it ended."""
        child, conn = self._child, self._conn
        self._child = self._conn = None
        if conn is not None:
            conn.close()
        if child is None:
            return "no reader"
        if child.poll() is None:
            child.kill()
        code = child.wait()
        return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"


class WorkbookReaders:
    """Several WorkbookReaders (READERS), each in its own child process, reading a run's
    workbooks side by side; the answers come back in the order the workbooks were given,
    so the caller commits them in that order. A workbook that fails fails alone."""

    def __init__(self, count: int = READERS) -> None:
        self.count = count
        self._readers = [WorkbookReader() for _ in range(count)]
        self._free: SimpleQueue[WorkbookReader] = SimpleQueue()
        for reader in self._readers:
            self._free.put(reader)
        self._pool = ThreadPoolExecutor(count, thread_name_prefix="workbook-reader")

    def __enter__(self) -> WorkbookReaders:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is not None:  # stopped: the reads in flight end at once, failed
            for reader in self._readers:
                reader.kill()
        self._pool.shutdown(wait=True, cancel_futures=True)
        for reader in self._readers:
            reader.close()

    def each(
        self, read: Callable[[Item, WorkbookReader], Parsed], items: Iterable[Item]
    ) -> Iterator[tuple[Item, Future[Parsed]]]:
        """`read(item, reader)` for every item on the next free reader; yields each item
        with its read, in order (`.result()` waits for it and raises what it raised). At
        most `count` reads run ahead of the one yielded, which bounds the memory."""

        def on_a_free_reader(item: Item) -> Parsed:
            reader = self._free.get()
            try:
                return read(item, reader)
            finally:
                self._free.put(reader)

        ahead: deque[tuple[Item, Future[Parsed]]] = deque()
        for item in items:
            ahead.append((item, self._pool.submit(on_a_free_reader, item)))
            if len(ahead) > self.count:
                yield ahead.popleft()
        while ahead:
            yield ahead.popleft()


def _serve(fd: int, memory_headroom: int) -> None:
    """The child: parse each workbook the parent sends, until it closes the connection."""
    _limit_memory(memory_headroom)
    conn = Connection(fd)
    while True:
        try:
            data = conn.recv_bytes()
        except EOFError:
            return
        try:
            sheet = parse_workbook(data)
        except LeadWorkbookError as exc:
            conn.send_bytes(json.dumps({"error": str(exc)}).encode())
            continue
        answer = {"sheet_name": sheet.sheet_name, "header_row": sheet.header_row}
        conn.send_bytes(json.dumps({**answer, "ignored": sheet.ignored_columns}).encode())
        conn.send_bytes(sheet.frame.write_ipc(None).getvalue())


def _limit_memory(headroom: int) -> None:
    # polars' thread pool and allocator arenas map address space as they start: start
    # them first, so the cap leaves the headroom for data whatever the number of cores
    pl.DataFrame({"n": range(64)}).select(pl.col("n").cast(pl.String).str.len_bytes().sum())
    if not psutil.LINUX:
        return  # the cap is Linux's (RLIMIT_AS); elsewhere a crash still stays in the child
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = psutil.Process().memory_info().vms + headroom
    resource.setrlimit(
        resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard)
    )
