"""How `b2b run` executes one stage: a run in this process, or a run submitted to the
daemon's queue and followed to its end. Both answer with the run's events."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import dagster as dg

from b2b_platform.lib.warehouse.processes import this_process

# the queue's GraphQL client (0.15 s to import) loads only in `b2b run`, not in every
# process that loads the definitions (whose sensors and schedule use the tags below)
if TYPE_CHECKING:
    from b2b_platform.lib.orchestration.run_queue import RunQueue

RUN_TAG = "b2b/launched_by"
IN_PROCESS_TAG = "b2b/in_process"  # the run executed inside the `b2b run` process
PROCESS_TAG = "b2b/process"  # host:pid of that process, to tell a live one from a killed one
REFRESH_JOB = "b2b_refresh"  # the job `b2b run` launches its runs as
PARTITION_RANGE_START = "dagster/asset_partition_range_start"
PARTITION_RANGE_END = "dagster/asset_partition_range_end"


@dataclass(frozen=True)
class Stage:
    """The assets of one run; `partitioned`: the run covers a range of months (its
    unpartitioned assets, if any, are built once, before the monthly ones that read them)."""

    keys: frozenset[dg.AssetKey]
    partitioned: bool


@dataclass
class FinishedRun:
    run_id: str
    events: list[dg.DagsterEvent]
    success: bool
    interrupted: bool = False
    error: str | None = None  # why the run ended when its process did not say (killed)


def followed_run(
    instance: dg.DagsterInstance, run_id: str, *, stopped: bool = False, error: str | None = None
) -> FinishedRun:
    """A run that executed elsewhere (the daemon, a child process) as the instance has it:
    its events, and how it ended; `stopped` when we stopped it, `error` when its process
    died without saying."""
    run = instance.get_run_by_id(run_id)
    status = run.status if run else None
    events = [e.dagster_event for e in instance.all_logs(run_id) if e.dagster_event]
    succeeded = status == dg.DagsterRunStatus.SUCCESS and not (stopped or error)
    canceled = stopped or status == dg.DagsterRunStatus.CANCELED
    return FinishedRun(run_id, events, succeeded, interrupted=canceled, error=error)


class StageLauncher(Protocol):
    run_id: str | None  # the run in flight (or last run)

    def run(self, stage: Stage, tags: dict[str, str], label: str) -> FinishedRun: ...


class InProcessStages:
    """Each stage executes in this process (no daemon serves the instance)."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
        self.job = defs.resolve_job_def(REFRESH_JOB)
        self.instance = instance
        self.run_id: str | None = None

    def run(
        self, stage: Stage, tags: dict[str, str], label: str, run_id: str | None = None
    ) -> FinishedRun:
        self.run_id = run_id or str(uuid.uuid4())
        result = self.job.execute_in_process(
            run_id=self.run_id,
            instance=self.instance,
            asset_selection=list(stage.keys),
            raise_on_error=False,
            tags={**tags, IN_PROCESS_TAG: "true", PROCESS_TAG: this_process()},
            # the CLI prints one line per run and each failure's cause; stack traces and
            # the full event log are in the UI, under the run id the failure line names
            run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
        )
        return FinishedRun(self.run_id, list(result.all_events), result.success)


TERMINAL = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
STOP_WAIT_SECONDS = 5.0  # `b2b run` must be gone within 10 s of a signal
QUIET_SECONDS = 5.0  # a run queued longer than this is said to wait


class QueuedStages:
    """Each stage is a run submitted to the daemon's queue and followed to its end."""

    def __init__(
        self,
        queue: RunQueue,
        instance: dg.DagsterInstance,
        echo: Callable[[str], None],
        stop: threading.Event,
    ) -> None:
        self.queue = queue
        self.instance = instance
        self.echo = echo
        self.stop = stop  # set by a signal: this process never raises mid-launch
        self.run_id: str | None = None

    def run(self, stage: Stage, tags: dict[str, str], label: str) -> FinishedRun:
        run_id = self.run_id = self.queue.launch(REFRESH_JOB, sorted(stage.keys), tags)
        submitted = time.monotonic()
        said_waiting = False
        while (status := self._status(run_id)) not in TERMINAL:
            if self.stop.is_set():
                self._stop(run_id)
                return followed_run(self.instance, run_id, stopped=True)
            queued_long = time.monotonic() - submitted > QUIET_SECONDS
            if status == dg.DagsterRunStatus.QUEUED and queued_long and not said_waiting:
                self.echo(f"  waiting {label}: run {run_id[:8]} is queued behind other"
                          " runs writing the warehouse (pool duckdb_warehouse)")  # fmt: skip
                said_waiting = True
            self.stop.wait(0.5)
        return followed_run(self.instance, run_id)

    def _status(self, run_id: str) -> dg.DagsterRunStatus:
        run = self.instance.get_run_by_id(run_id)
        return run.status if run else dg.DagsterRunStatus.QUEUED

    def _stop(self, run_id: str) -> None:
        """Cancel the run (interrupting the step in flight) and wait, briefly, for it."""
        status = self._status(run_id)
        if status in TERMINAL:
            return
        self.queue.terminate(run_id, queued=status == dg.DagsterRunStatus.QUEUED)
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        while self._status(run_id) not in TERMINAL and time.monotonic() < deadline:
            time.sleep(0.25)
