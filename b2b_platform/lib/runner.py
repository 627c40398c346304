"""`b2b run`: bring every selected asset and partition up to date, in process.

Runs go to the Dagster instance in DAGSTER_HOME, so they show in the UI exactly as
if launched there. The selection is split into stages so that an unpartitioned asset
never runs before the monthly partitions it depends on (and vice versa); each stage
runs once for its unpartitioned assets and once per month for its partitioned ones.
Every asset replaces its slice idempotently, so re-running after a failure or a kill
simply finishes the work (files already loaded are skipped by the manifest).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph

from b2b_platform.lib.errors import UserError

RUN_TAG = "b2b/launched_by"
REFRESH_JOB = "b2b_refresh"  # the job `b2b run` launches its runs as


@dataclass(frozen=True)
class Stage:
    keys: frozenset[dg.AssetKey]
    partitioned: bool


@dataclass
class RunOutcome:
    runs: int = 0
    failed_runs: list[str] = field(default_factory=list)  # "stage/partition: failing steps"
    failed_checks: list[str] = field(default_factory=list)
    not_started: list[str] = field(default_factory=list)  # stages whose inputs failed
    failed_assets: set[dg.AssetKey] = field(default_factory=set)
    materialized: set[dg.AssetKey] = field(default_factory=set)
    interrupted: bool = False  # stopped by Ctrl-C or SIGTERM: no further stage started

    @property
    def ok(self) -> bool:
        return not self.failed_runs


def resolve_selection(defs: dg.Definitions, selection: str | None) -> set[dg.AssetKey]:
    graph = defs.resolve_asset_graph()
    all_keys = set(graph.get_all_asset_keys())
    materializable = {k for k in all_keys if graph.get(k).is_materializable}
    if not selection:
        return materializable
    try:
        chosen = dg.AssetSelection.from_string(selection).resolve(graph)
    except Exception as exc:
        raise UserError(f"--select {selection!r} is not a valid asset selection: {exc}") from None
    chosen &= materializable
    if not chosen:
        raise UserError(f"--select {selection!r} matches no asset: see `dg list defs`")
    # A multi-asset (e.g. raw orders + order items) runs whole: add its siblings.
    expanded = set(chosen)
    for key in chosen:
        expanded |= set(graph.get_execution_set_asset_and_check_keys(key)) & materializable
    return {k for k in expanded if isinstance(k, dg.AssetKey)}


def plan_stages(graph: AssetGraph, keys: set[dg.AssetKey]) -> list[Stage]:
    """Stages in dependency order; a stage never mixes partitioning within a dependency."""
    stage_of: dict[dg.AssetKey, int] = {}
    for key in graph.toposorted_asset_keys:
        if key not in keys:
            continue
        partitioned = graph.get(key).partitions_def is not None
        stage = 0
        for parent in graph.get(key).parent_keys:
            if parent in stage_of:
                parent_partitioned = graph.get(parent).partitions_def is not None
                stage = max(stage, stage_of[parent] + (parent_partitioned != partitioned))
        stage_of[key] = stage
    # Run a partitioned asset as late as its partitioned children allow, so a month's
    # raw extraction and its staging share one run instead of two.
    for key in reversed(list(graph.toposorted_asset_keys)):
        if key not in stage_of or graph.get(key).partitions_def is None:
            continue
        children = [c for c in graph.get(key).child_keys if c in stage_of]
        if children and all(graph.get(c).partitions_def is not None for c in children):
            stage_of[key] = max(stage_of[key], min(stage_of[c] for c in children))
    stages: list[Stage] = []
    for index in sorted(set(stage_of.values())):
        in_stage = {k for k, s in stage_of.items() if s == index}
        for partitioned in (False, True):
            part = frozenset(
                k for k in in_stage if (graph.get(k).partitions_def is not None) == partitioned
            )
            if part:
                stages.append(Stage(part, partitioned))
    return stages


@contextmanager
def keep_warehouse_open(defs: dg.Definitions) -> Iterator[None]:
    """Hold one connection to the warehouse for the whole in-process `b2b run`.

    Every step opens and closes its own connection; when the last connection to a
    DuckDB file closes, DuckDB checkpoints it, which cost ~40 ms per step and made a
    no-op refresh slow. While this one stays open the steps share the same database
    instance (same path and configuration), and the checkpoint happens once at the end.
    """
    from b2b_platform.lib.warehouse import warehouse_connection

    resource = (defs.resources or {}).get("duckdb")
    if resource is None:
        yield
        return
    with warehouse_connection(resource.database, config=resource.connection_config):
        yield


@contextmanager
def single_cli_run(dagster_home: Path) -> Iterator[None]:
    """Refuse a second concurrent `b2b run`: one process writes the warehouse at a time."""
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

    Called while holding the CLI lock, so no other `b2b run` can own them.
    """
    records = instance.get_run_records(
        filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING],
            tags={RUN_TAG: "b2b run"},
        )
    )
    for record in records:
        instance.report_run_failed(record.dagster_run, "the `b2b run` process died during this run")
        # A killed process never releases its pool slot; without this the next run
        # would wait forever for `duckdb_warehouse`.
        instance.event_log_storage.free_concurrency_slots_for_run(record.dagster_run.run_id)
    return len(records)


DAGSTER_WRAPPERS = ("Error occurred while", "Exceeded max_retries")


def _was_interrupted(event: dg.DagsterEvent) -> bool:
    """A step or run that stopped because the process was told to (Ctrl-C, SIGTERM)."""
    error = getattr(event.event_specific_data, "error", None)
    while error is not None:
        if error.cls_name in {"DagsterExecutionInterruptedError", "KeyboardInterrupt"}:
            return True
        error = error.cause
    return False


def _depends_on(graph: AssetGraph, keys: frozenset[dg.AssetKey], failed: set[dg.AssetKey]) -> bool:
    """Whether any of `keys` reads, directly or through other assets, a failed asset."""
    seen: set[dg.AssetKey] = set()
    frontier = set(keys)
    while frontier:
        parents = {p for key in frontier for p in graph.get(key).parent_keys} - seen
        if parents & failed:
            return True
        seen |= parents
        frontier = parents
    return False


def run_stages(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    keys: set[dg.AssetKey],
    echo: Callable[[str], None],
    stop: threading.Event | None = None,
) -> RunOutcome:
    """Run the stages in order. When `stop` is set (a signal arrived) or a run was
    interrupted, no further stage starts: they are listed as not started."""
    graph = defs.resolve_asset_graph()
    job = defs.resolve_job_def(REFRESH_JOB)
    outcome = RunOutcome()
    for stage in plan_stages(graph, keys):
        names = ", ".join(sorted(k.to_user_string() for k in stage.keys))
        if outcome.interrupted or (stop is not None and stop.is_set()):
            outcome.interrupted = True
            outcome.not_started.append(names)
            continue
        if _depends_on(graph, stage.keys, outcome.failed_assets):
            # its inputs were not brought up to date: running it would publish stale or
            # partial results as if they were current
            outcome.not_started.append(names)
            outcome.failed_assets |= stage.keys
            echo(f"  SKIPPED {names}: an input failed")
            continue
        partition_range = None
        if stage.partitioned:
            partitions_def = graph.get(next(iter(stage.keys))).partitions_def
            assert partitions_def is not None
            keys_ = partitions_def.get_partition_keys(dynamic_partitions_store=instance)
            # one run over every month (single-run backfill policy); each month commits alone
            partition_range = (keys_[0], keys_[-1])
        try:
            _run_one(job, instance, stage, partition_range, names, outcome, echo)
        except KeyboardInterrupt:  # a signal outside Dagster's own handling of it
            outcome.interrupted = True
            outcome.not_started.append(names)
    return outcome


def _run_one(
    job: dg.JobDefinition,
    instance: dg.DagsterInstance,
    stage: Stage,
    partition_range: tuple[str, str] | None,
    names: str,
    outcome: RunOutcome,
    echo: Callable[[str], None],
) -> None:
    tags = {RUN_TAG: "b2b run"}
    label = names
    if partition_range:
        first, last = partition_range
        tags["dagster/asset_partition_range_start"] = first
        tags["dagster/asset_partition_range_end"] = last
        label += f" [{first[:7]}..{last[:7]}]"
    result = job.execute_in_process(
        instance=instance,
        asset_selection=list(stage.keys),
        raise_on_error=False,
        tags=tags,
        # the CLI prints one line per run; the full event log is in the UI
        run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
    )
    outcome.runs += 1
    outcome.materialized |= {e.asset_key for e in result.get_asset_materialization_events()}
    if any(_was_interrupted(event) for event in result.all_events):
        outcome.interrupted = True
    failed_checks = [
        f"{e.asset_key.to_user_string()}:{e.check_name}"
        for e in result.get_asset_check_evaluations()
        if not e.passed
    ]
    outcome.failed_checks += failed_checks
    if result.success:
        echo(
            f"  ok      {label}"
            + (f"  (failed checks: {', '.join(failed_checks)})" if failed_checks else "")
        )
        return
    failures = []
    for event in result.all_events:
        if event.is_step_failure:
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
            if retried:
                message += " (retries exhausted)"
            failures.append(f"{event.step_key}: {message}")
    if not failures:
        failures.append("steps skipped (a blocking check failed upstream)")
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    outcome.failed_assets |= set(stage.keys) - materialized
    outcome.failed_runs.append(f"{label}: {'; '.join(failures)}")
    echo(f"  FAILED  {label}: {'; '.join(failures)}")
