"""A monthly stage split into runs that write at once: on a lake, whose writers do not
wait for each other, the months of a backfill go to `writers` runs side by side instead
of one run that commits them one after the other."""

from __future__ import annotations

import importlib
import multiprocessing
import signal
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import dagster as dg

from b2b_platform.lib.dagster_internals import fail_run, free_pool_slots
from b2b_platform.lib.orchestration.stage_launchers import (
    PARTITION_RANGE_END,
    PARTITION_RANGE_START,
    STOP_WAIT_SECONDS,
    TERMINAL,
    FinishedRun,
    InProcessStages,
    Stage,
    StageLauncher,
    followed_run,
)


def month_chunks(months: list[str], writers: int) -> list[list[str]]:
    """The months in at most `writers` contiguous ranges of (nearly) equal length."""
    count = max(1, min(writers, len(months)))
    size, extra = divmod(len(months), count)
    chunks, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        chunks.append(months[start:end])
        start = end
    return chunks


def run_month_chunks(
    new_launcher: Callable[[], StageLauncher],
    stage: Stage,
    tags: dict[str, str],
    label: str,
    chunks: list[list[str]],
) -> list[tuple[list[str], FinishedRun, float]]:
    """One run per range of months, all at once (each its own launcher); the results
    in month order, each with its seconds."""

    def run(chunk: list[str]) -> tuple[list[str], FinishedRun, float]:
        launcher = new_launcher()
        started = time.perf_counter()
        chunk_tags = {**tags, PARTITION_RANGE_START: chunk[0], PARTITION_RANGE_END: chunk[-1]}
        finished = launcher.run(stage, chunk_tags, f"{label} [{chunk[0][:7]}..{chunk[-1][:7]}]")
        return chunk, finished, time.perf_counter() - started

    with ThreadPoolExecutor(max_workers=len(chunks), thread_name_prefix="months") as pool:
        return list(pool.map(run, chunks))


class ChildProcessStages:
    """Each run executes in a child process of its own: runs side by side without a
    daemon, each stoppable. A stop (SIGTERM or Ctrl-C to `b2b run`) is passed on as
    SIGTERM, which the child turns into an interruption of its step in flight.

    `defs_entry` (`module:attribute`) names what builds the definitions, which the child
    imports: the definitions themselves do not pass between processes, and this layer
    must not import the code location it serves."""

    def __init__(
        self, instance: dg.DagsterInstance, stop: threading.Event, defs_entry: str
    ) -> None:
        self.instance = instance
        self.stop = stop
        self.defs_entry = defs_entry
        self.run_id: str | None = None

    def run(self, stage: Stage, tags: dict[str, str], label: str) -> FinishedRun:
        run_id = self.run_id = str(uuid.uuid4())
        keys = sorted(key.to_user_string() for key in stage.keys)
        child = multiprocessing.get_context("spawn").Process(
            target=execute_stage,
            args=(self.defs_entry, keys, tags, run_id),
            name=f"b2b run {label}"[:60],
        )
        child.start()
        while child.is_alive():
            if self.stop.is_set():
                child.terminate()  # SIGTERM: the child interrupts its step and records it
                child.join(STOP_WAIT_SECONDS)
                return followed_run(self.instance, run_id, stopped=True)
            child.join(0.25)
        run = self.instance.get_run_by_id(run_id)
        if run is None or run.status not in TERMINAL:  # the child was killed mid-run
            error = f"the run's process died (exit code {child.exitcode})"
            if run is not None:
                fail_run(self.instance, run, error)
                free_pool_slots(self.instance, run_id)
            return followed_run(self.instance, run_id, error=error)
        return followed_run(self.instance, run_id)


def load_entry(entry: str) -> Callable[[], dg.Definitions]:
    """What `module:attribute` names: the function building the definitions."""
    module, _, attribute = entry.partition(":")
    return getattr(importlib.import_module(module), attribute)


def execute_stage(defs_entry: str, keys: list[str], tags: dict[str, str], run_id: str) -> None:
    """A child's run: the stage's assets over its months, in the instance of DAGSTER_HOME,
    with the definitions `defs_entry` (`module:attribute`) builds."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    InProcessStages(load_entry(defs_entry)(), dg.DagsterInstance.get()).run(
        Stage(frozenset(dg.AssetKey.from_user_string(key) for key in keys), partitioned=True),
        tags,
        "",
        run_id=run_id,
    )
