"""`b2b run`: bring every selected asset and partition up to date.

Runs go to the Dagster instance in DAGSTER_HOME, so they show in the UI exactly as
if launched there. When a daemon serves that instance, each run is submitted to its
queue and followed (`run_queue.py`), so `b2b run`, sensors, the schedule and clicks in
the UI wait in one line for the warehouse; otherwise runs execute in this process.
Either way the warehouse file is opened only by a step holding the `duckdb_warehouse`
pool slot, never across steps: a process that held the file between steps would make a
run that took the slot wait on the file while it waits for the slot.

The selection is split into stages so that an unpartitioned asset never runs before
the monthly partitions it depends on (and vice versa), also through assets left out of
the selection, which a single Dagster run would not order; each stage is one run, its
monthly assets over the range of months they need, after the unpartitioned ones they
read (selection.plan_stages).
Every asset replaces its slice idempotently, so re-running after a failure or a kill
simply finishes the work (files already loaded are skipped by the manifest).
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from b2b_common.dates import month_name
from b2b_common.errors import UserError
from b2b_platform.lib.dagster_internals import (
    AssetGraph,
    asset_graph,
    fail_run,
    free_pool_slots,
)
from b2b_platform.lib.orchestration.month_fanout import (
    ChildProcessStages,
    month_chunks,
    run_month_chunks,
)
from b2b_platform.lib.orchestration.run_progress import progress_line
from b2b_platform.lib.orchestration.selection import plan_stages
from b2b_platform.lib.orchestration.stage_launchers import (
    IN_PROCESS_TAG,
    PARTITION_RANGE_END,
    PARTITION_RANGE_START,
    PROCESS_TAG,
    RUN_TAG,
    FinishedRun,
    InProcessStages,
    QueuedStages,
    Stage,
    StageLauncher,
)
from b2b_platform.lib.orchestration.stale_slices import StalePlan
from b2b_platform.lib.warehouse.processes import process_alive
from b2b_platform.lib.warehouse.step import is_interruption

if TYPE_CHECKING:  # its GraphQL client loads only when a daemon serves (cli._daemon_queue)
    from b2b_platform.lib.orchestration.run_queue import RunQueue


@dataclass
class RunOutcome:
    runs: int = 0
    failed_runs: list[str] = field(default_factory=list)  # "stage/partition: failing steps"
    failed_checks: list[str] = field(default_factory=list)
    not_started: list[str] = field(default_factory=list)  # stages whose inputs failed
    failed_assets: set[dg.AssetKey] = field(default_factory=set)
    materialized: set[dg.AssetKey] = field(default_factory=set)
    interrupted: bool = False  # stopped by Ctrl-C or SIGTERM: no further stage started
    causes_shown: set[str] = field(default_factory=set)  # failure causes printed so far
    # monthly assets materialized for only some of their stage's months: key -> (done, of)
    partly: dict[dg.AssetKey, tuple[int, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed_runs


@contextmanager
def single_cli_run(dagster_home: Path, exclusive: bool = True) -> Iterator[None]:
    """Refuse a second concurrent `b2b run` on a warehouse file, which one process writes
    at a time; a lake (not `exclusive`) takes several at once."""
    if not exclusive:
        yield
        return
    dagster_home.mkdir(parents=True, exist_ok=True)
    lock_path = dagster_home / "b2b-run.lock"
    with open(lock_path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"another `b2b run` is in progress (lock {lock_path}); wait for it to finish"
            ) from None
        handle.write(str(os.getpid()))
        handle.flush()
        yield


def fail_abandoned_runs(instance: dg.DagsterInstance) -> int:
    """Mark runs an earlier, killed `b2b run` left as STARTED as failed in Dagster.

    A run whose `b2b run` process still runs (beside this one, on a lake) is left alone.
    """
    records = instance.get_run_records(
        filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING],
            # runs submitted to the daemon's queue live on without their `b2b run`
            tags={RUN_TAG: "b2b run", IN_PROCESS_TAG: "true"},
        )
    )
    abandoned = [r for r in records if not _owner_alive(r.dagster_run.tags.get(PROCESS_TAG))]
    for record in abandoned:
        fail_run(instance, record.dagster_run, "the `b2b run` process died during this run")
        # A killed process never releases its pool slot; without this the next run
        # would wait forever for `duckdb_warehouse`.
        free_pool_slots(instance, record.dagster_run.run_id)
    return len(abandoned)


def _owner_alive(process: str | None) -> bool:
    """Whether the `b2b run` process of a run (its `host:pid` tag) still runs."""
    host, _, pid = (process or "").rpartition(":")
    return bool(pid.isdigit()) and process_alive(int(pid), host)


DAGSTER_WRAPPERS = ("Error occurred while", "Exceeded max_retries")
MESSAGE_WIDTH = 200  # a failure line stays readable in a terminal and a cron mail


def _was_interrupted(event: dg.DagsterEvent) -> bool:
    """A step or run that stopped because the process was told to (Ctrl-C, SIGTERM)."""
    error = getattr(event.event_specific_data, "error", None)
    while error is not None:
        if is_interruption(error.cls_name or "", error.message or ""):
            return True
        error = error.cause
    return False


def _depends_on(graph: AssetGraph, key: dg.AssetKey, failed: set[dg.AssetKey]) -> bool:
    """Whether `key` reads, directly or through other assets, a failed asset."""
    upstream = dg.AssetSelection.assets(key).upstream(include_self=False).resolve(graph)
    return bool(upstream & failed)


def run_stages(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    keys: set[dg.AssetKey],
    echo: Callable[[str], None],
    stop: threading.Event | None = None,
    queue: RunQueue | None = None,
    record_break: Callable[[str], None] | None = None,
    plan: StalePlan | None = None,
    writers: int = 1,
    replan: Callable[[], StalePlan] | None = None,
    defs_entry: str | None = None,
) -> RunOutcome:
    """Run the stages in order, in this process or, given a queue, through the daemon.
    When `stop` is set (a signal arrived) or a run was interrupted, no further stage
    starts: they are listed as not started, and `record_break` gets the id of the run
    that was interrupted, to put the break on record even if no step was in flight.
    With a plan, a monthly stage covers only the months from its first stale month to
    its last, not every month. With `writers` above one (a lake), a monthly stage's
    months are split into that many runs, which run at once: without a queue, each in
    a child process that builds the definitions with `defs_entry` (`module:attribute`).

    `replan` computes the plan again from the versions the stages before recorded: a
    table rebuilt with the same rows keeps its data version (slice_versions
    .content_version), and what reads it then turns out up to date and is not run."""
    graph = asset_graph(defs)
    stop = stop or threading.Event()

    def new_launcher() -> StageLauncher:
        if queue:
            return QueuedStages(queue, instance, echo, stop)
        return InProcessStages(defs, instance)

    launcher = new_launcher()

    def new_month_launcher() -> StageLauncher:  # months side by side, each run alone
        if queue:
            return QueuedStages(queue, instance, echo, stop)
        if defs_entry is None:
            raise ValueError("months in child processes need defs_entry (module:attribute)")
        return ChildProcessStages(instance, stop, defs_entry)

    fanout = (new_month_launcher, writers) if writers > 1 else None
    outcome = RunOutcome()
    # an unpartitioned asset built before may be built again with the same rows: the
    # monthly assets reading it are then planned again after it, not run in its run
    rebuilt = (
        set() if plan is None or replan is None else keys - _monthly(graph, keys) - plan.never_built
    )
    stages = plan_stages(graph, keys, alone=rebuilt)
    started = 0
    try:
        for stage in stages:
            if outcome.interrupted or stop.is_set():
                outcome.interrupted = True
                break
            started += 1
            if replan is not None and started > 1:
                plan = replan()
                stage = _still_stale(graph, stage, plan)
                if not stage.keys:
                    continue
            _run_stage(graph, instance, launcher, stage, outcome, echo, plan, fanout)
        # a signal during the last stage: its run may end as failed (DuckDB turns a
        # signal inside a statement into an error), yet the run was stopped
        outcome.interrupted |= stop.is_set()
    except KeyboardInterrupt:  # a signal, wherever it found us (Dagster's own runs excepted)
        outcome.interrupted = True
    if outcome.interrupted:
        for stage in stages[max(started - 1, 0) :]:
            names = _names(stage)
            if not stage.keys & outcome.materialized and names not in outcome.not_started:
                outcome.not_started.append(names)
        if record_break is not None and launcher.run_id:
            record_break(launcher.run_id)
    return outcome


def _still_stale(graph: AssetGraph, stage: Stage, plan: StalePlan) -> Stage:
    """The stage's assets the plan still finds stale (a multi-asset whole)."""
    stale = {
        sibling
        for key in stage.keys & plan.keys
        for sibling in graph.get(key).execution_set_asset_keys
    }
    return _stage(graph, stage.keys & stale)


def _monthly(graph: AssetGraph, keys: Iterable[dg.AssetKey]) -> frozenset[dg.AssetKey]:
    """Those of these assets that are partitioned by month."""
    return frozenset(k for k in keys if graph.get(k).partitions_def is not None)


def _stage(graph: AssetGraph, keys: Iterable[dg.AssetKey]) -> Stage:
    """A stage of these assets: over a range of months when any of them is monthly."""
    keys = frozenset(keys)
    return Stage(keys, bool(_monthly(graph, keys)))


def _names(stage: Stage) -> str:
    return ", ".join(sorted(k.to_user_string() for k in stage.keys))


def _run_stage(
    graph: AssetGraph,
    instance: dg.DagsterInstance,
    launcher: StageLauncher,
    stage: Stage,
    outcome: RunOutcome,
    echo: Callable[[str], None],
    plan: StalePlan | None,
    fanout: tuple[Callable[[], StageLauncher], int] | None = None,
) -> None:
    # an asset whose inputs were not brought up to date is not started: it would publish
    # stale or partial results as if they were current; the rest of the stage runs
    blocked = {
        sibling  # a multi-asset runs whole or not at all
        for key in stage.keys
        if _depends_on(graph, key, outcome.failed_assets)
        for sibling in graph.get(key).execution_set_asset_keys
    } & stage.keys
    if blocked:
        skipped = _stage(graph, blocked)
        outcome.not_started.append(_names(skipped))
        outcome.failed_assets |= blocked
        echo(f"  SKIPPED {_count(skipped)}: an input failed (listed at the end)")
        if blocked == stage.keys:
            return
        stage = _stage(graph, stage.keys - blocked)
    names = _names(stage)
    tags = {RUN_TAG: "b2b run"}
    label = names
    months: list[str] = []
    monthly = _monthly(graph, stage.keys)
    if stage.partitioned:
        partitions_def = graph.get(next(iter(monthly))).partitions_def
        assert partitions_def is not None
        months = partitions_def.get_partition_keys(dynamic_partitions_store=instance)
        if plan is not None:
            stale = {m for key in monthly for m in plan.slices.get(key, ()) if m is not None}
            if stale:  # the range from the first stale month to the last
                months = [m for m in months if min(stale) <= m <= max(stale)]  # type: ignore[type-var, operator]
        if fanout is not None and len(months) > 1:  # a lake: ranges of months side by side
            if stage.keys - monthly:  # each range's run would build them again: first, once
                for part in (stage.keys - monthly, monthly):
                    _run_stage(graph, instance, launcher, _stage(graph, part), outcome, echo,
                               plan, fanout)  # fmt: skip
                return
            _run_month_chunks(graph, stage, tags, label, months, fanout, outcome, echo)
            return
        # one run over every month (single-run backfill policy); each month commits alone
        tags[PARTITION_RANGE_START], tags[PARTITION_RANGE_END] = months[0], months[-1]
        label += f" [{months[0][:7]}..{months[-1][:7]}]"
    started = time.perf_counter()
    # the progress line counts a monthly run's months published, else its steps done
    counted = monthly or stage.keys
    steps = len({frozenset(graph.get(key).execution_set_asset_keys) for key in counted})
    with progress_line(instance, lambda: launcher.run_id, steps, len(months)):
        finished = launcher.run(stage, tags, label)
    scope = f"{_count(stage)}, {month_span(months)}" if months else _count(stage)
    seconds = time.perf_counter() - started
    _account(
        graph, finished, stage, scope, outcome, echo, len(months), f"{scope} in {seconds:.1f} s"
    )


def _run_month_chunks(
    graph: AssetGraph,
    stage: Stage,
    tags: dict[str, str],
    label: str,
    months: list[str],
    fanout: tuple[Callable[[], StageLauncher], int],
    outcome: RunOutcome,
    echo: Callable[[str], None],
) -> None:
    new_launcher, writers = fanout
    for chunk, finished, seconds in run_month_chunks(
        new_launcher, stage, tags, label, month_chunks(months, writers)
    ):
        scope = f"{_count(stage)}, {month_span(chunk)}"
        _account(
            graph, finished, stage, scope, outcome, echo, len(chunk), f"{scope} in {seconds:.1f} s"
        )


def _count(stage: Stage) -> str:
    return f"{len(stage.keys)} asset{'s' if len(stage.keys) > 1 else ''}"


def month_span(months: list[str]) -> str:
    """Monthly partition keys as people read them: Nov 2026, or Dec 2025 to Nov 2026."""
    first, last = month_name(months[0]), month_name(months[-1])
    return first if len(months) == 1 else f"{first} to {last} ({len(months)} months)"


def _account(
    graph: AssetGraph,
    finished: FinishedRun,
    stage: Stage,
    label: str,
    outcome: RunOutcome,
    echo: Callable[[str], None],
    months: int,
    summary: str,
) -> None:
    """Add one run's result to the outcome and print its line: a short one when it
    succeeded (what `--plan` or the UI lists in full), every failure in full."""
    events = finished.events
    outcome.runs += 1
    done = _materialized_partitions(events)
    materialized = set(done)
    outcome.materialized |= materialized
    for key, partitions in done.items():
        if months and None not in partitions and len(partitions) < months:
            outcome.partly[key] = (len(partitions), months)
    interrupted = finished.interrupted or any(_was_interrupted(event) for event in events)
    outcome.interrupted |= interrupted
    failed_checks = _failed_checks(events)
    outcome.failed_checks += failed_checks
    if finished.success:
        echo(
            f"  ok      {summary}"
            + (f"  (failed checks: {', '.join(failed_checks)})" if failed_checks else "")
        )
        return
    causes = (
        _run_failures(graph, events, interrupted) if not finished.error else {finished.error: []}
    )
    outcome.failed_assets |= set(stage.keys) - materialized
    outcome.failed_runs.append(
        f"{label}: {'; '.join(_cause_line(assets, cause) for cause, assets in causes.items())}"
    )
    echo(f"  FAILED  {label} (run {finished.run_id[:8]}):")
    for cause, assets in causes.items():
        # a missing source fails every asset that reads it, in every run: say it once
        said = "the same cause as above" if cause in outcome.causes_shown else cause
        outcome.causes_shown.add(cause)
        echo(f"    {_cause_line(assets, said, MESSAGE_WIDTH - 4)}")
    if not (interrupted or finished.error):
        # the steps Dagster skipped because a step before them in the run failed
        failed = {k for e in events if e.is_step_failure for k in _keys_of_step(graph, e.step_key)}
        if skipped := set(stage.keys) - materialized - failed:
            outcome.not_started.append(_names(_stage(graph, skipped)))


def _materialized_partitions(events: list[dg.DagsterEvent]) -> dict[dg.AssetKey, set[str | None]]:
    """The partitions (None: unpartitioned) each asset of a run materialized."""
    done: dict[dg.AssetKey, set[str | None]] = {}
    for e in events:
        if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION and e.asset_key:
            done.setdefault(e.asset_key, set()).add(e.partition)
    return done


def _failed_checks(events: list[dg.DagsterEvent]) -> list[str]:
    """The checks of a run that did not pass, as `asset:check` (and the months a blocking
    check held, which the run published without)."""
    failed = []
    for event in events:
        data = event.event_specific_data
        if event.event_type != dg.DagsterEventType.ASSET_CHECK_EVALUATION or data.passed:  # type: ignore[union-attr]
            continue
        held = data.metadata.get("held_months")  # type: ignore[union-attr]
        failed.append(
            f"{data.asset_key.to_user_string()}:{data.check_name}"  # type: ignore[union-attr]
            + (f" (held {held.value})" if held else "")
        )
    return failed


def _run_failures(
    graph: AssetGraph, events: list[dg.DagsterEvent], interrupted: bool
) -> dict[str, list[str]]:
    """Why a run failed: each distinct error and the assets whose steps it failed, or the
    run's own reason when no step failed."""
    causes: dict[str, list[str]] = {}
    for event in events:
        if event.is_step_failure and interrupted and _was_interrupted(event):
            causes.setdefault("interrupted", []).append(event.step_key or "run")
        elif event.is_step_failure:
            message = _step_failure_message(event)
            causes.setdefault(message, []).append(_assets_of_step(graph, event.step_key))
    if not causes:
        causes[
            "interrupted" if interrupted else "steps skipped (a blocking check failed upstream)"
        ] = []
    return causes


def _cause_line(assets: list[str], cause: str, width: int = MESSAGE_WIDTH) -> str:
    """`raw/companies, raw/customers and 4 more: <cause>`, at most `width` long: the
    first line of an error is enough here, the whole of it is in the Dagster UI."""
    named = ", ".join(assets[:2]) + (f" and {len(assets) - 2} more" if len(assets) > 2 else "")
    line = f"{named}: {cause}" if named else cause
    return line if len(line) <= width else line[: width - 1] + "…"


def _step_failure_message(event: dg.DagsterEvent) -> str:
    """The first line of the error that failed a step, in the user's terms."""
    error = event.step_failure_data.error  # type: ignore[union-attr]
    retried = error is not None and "Exceeded max_retries" in error.message
    # Dagster's wrappers ("Error occurred while...", "Exceeded max_retries") say
    # where; the innermost cause says what went wrong, in the user's terms
    while (
        error is not None
        and error.cause is not None
        and any(wrapper in error.message for wrapper in DAGSTER_WRAPPERS)
    ):
        error = error.cause
    message = error.message.strip().splitlines()[0] if error else "failed"
    # dg.Failure is how our steps say what went wrong: its class name says nothing
    if error is not None and error.cls_name == "Failure":
        message = message.split(": ", 1)[-1]
    if retried:
        message += " (retries exhausted)"
    return message


def _keys_of_step(graph: AssetGraph, step_key: str | None) -> set[dg.AssetKey]:
    """The assets a step materializes."""
    return {
        node.key
        for node in graph.asset_nodes
        if node.is_materializable and node.assets_def.node_def.name == step_key
    }


def _assets_of_step(graph: AssetGraph, step_key: str | None) -> str:
    """The assets a step materializes, as people name them (raw/orders, raw/order_items;
    not raw_orders)."""
    names = sorted(key.to_user_string() for key in _keys_of_step(graph, step_key))
    return ", ".join(names) or step_key or "run"
