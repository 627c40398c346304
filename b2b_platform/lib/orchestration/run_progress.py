"""A progress line while a long `b2b run` stage runs: months done of the stage's, or steps
done of its steps, and the time it has taken, rewritten in place on a terminal (nothing
when the output is not one: a log file gets the stage's one line at its end).

It reads the run's events from the Dagster instance: each monthly step logs a line as it
publishes a month (MonthsOfStep), each step ends with STEP_SUCCESS or STEP_FAILURE."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

import dagster as dg

PUBLISHED = "published "  # how a monthly step's log line about a month starts
POLL_SECONDS = 1.0


@contextmanager
def progress_line(
    instance: dg.DagsterInstance,
    run_id: Callable[[], str | None],
    steps: int,
    months: int,
    out: TextIO = sys.stdout,
) -> Iterator[None]:
    """While the body runs, keep one line up to date with the run's progress."""
    if not out.isatty():
        yield
        return
    stop = threading.Event()
    started = time.monotonic()
    tally = _Tally(instance)

    def show() -> None:
        while not stop.wait(POLL_SECONDS):
            current = run_id()
            if current is None:
                continue
            tally.read(current)
            elapsed = time.monotonic() - started
            if months:
                said = f"{tally.months} of {steps * months} months published"
            else:
                said = f"{tally.steps} of {steps} steps done"
            out.write(f"\r  ...     {said}, {elapsed:.0f} s\x1b[K")
            out.flush()

    watcher = threading.Thread(target=show, name="b2b-progress", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join(timeout=5)
        out.write("\r\x1b[K")  # the stage's own line replaces it
        out.flush()


class _Tally:
    """Steps finished and months published so far, read on from where the last read ended."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance = instance
        self.cursor: str | None = None
        self.steps = 0
        self.months = 0

    def read(self, run_id: str) -> None:
        try:
            page = self.instance.get_records_for_run(run_id, cursor=self.cursor)
        except Exception:  # the run's storage is being written: try again on the next tick
            return
        self.cursor = page.cursor
        for record in page.records:
            entry = record.event_log_entry
            event = entry.dagster_event
            if event is not None and (event.is_step_success or event.is_step_failure):
                self.steps += 1
            elif event is None and entry.user_message.startswith(PUBLISHED):
                self.months += 1
