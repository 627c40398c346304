"""Every call into Dagster that is not part of its public API, in one place.

Dagster's public API has no way to walk the asset graph a run or a definitions object
holds, to fail a run whose process died, or to give back the pool slots such a run held;
the CLI runner and the asset steps need all three. The automation condition reads the
latest materializations its tick already loaded. Each function below says which
internal it uses, and test_dagster_internals.py pins what the project relies on, so an
upgrade that moves one fails there first, not in a refresh.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import dagster as dg

# The graph object Definitions.resolve_asset_graph() returns. Its class is internal
# (dagster._core...), so it is typed loosely here: callers use .get(key) (a node with
# parent_keys, child_keys, partitions_def, is_materializable, execution_set_asset_keys)
# and get_all_asset_keys().
AssetGraph = Any


def asset_graph(defs: dg.Definitions) -> AssetGraph:
    """The resolved asset graph of a definitions object (Definitions.resolve_asset_graph)."""
    return defs.resolve_asset_graph()


def run_asset_graph(context: dg.AssetExecutionContext) -> AssetGraph:
    """The asset graph of the job an asset runs in (job_def.asset_layer.asset_graph)."""
    return context.job_def.asset_layer.asset_graph


def toposorted_keys(graph: AssetGraph) -> list[dg.AssetKey]:
    """Every asset key, parents before children (AssetGraph.toposorted_asset_keys)."""
    return list(graph.toposorted_asset_keys)


def fail_run(instance: dg.DagsterInstance, run: dg.DagsterRun, message: str) -> None:
    """Mark a run whose process died as failed (DagsterInstance.report_run_failed)."""
    instance.report_run_failed(run, message)


def free_pool_slots(instance: dg.DagsterInstance, run_id: str) -> None:
    """Give back the pool slots a dead run held; a killed process never does
    (EventLogStorage.free_concurrency_slots_for_run)."""
    instance.event_log_storage.free_concurrency_slots_for_run(run_id)


def last_event_time(instance: dg.DagsterInstance, run_id: str) -> dt.datetime | None:
    """When a run last logged an event, naive UTC (DagsterInstance.get_records_for_run)."""
    try:
        records = instance.get_records_for_run(run_id, ascending=False, limit=1).records
    except Exception:  # an unknown or purged run: no estimate
        return None
    if not records:
        return None
    return dt.datetime.fromtimestamp(records[0].timestamp, dt.UTC).replace(tzinfo=None)


def set_pool_limit(instance: dg.DagsterInstance, pool: str, limit: int) -> None:
    """Let `limit` steps of `pool` run at once in this instance, whatever its dagster.yaml's
    default_limit says (EventLogStorage.set_concurrency_slots)."""
    instance.event_log_storage.set_concurrency_slots(pool, limit)


def latest_materialization(
    context: dg.AutomationContext, key: dg.AssetKey
) -> dg.EventLogRecord | None:
    """An asset's latest materialization as the automation tick being evaluated loaded it
    (its instance queryer's get_asset_record: loaded in one batch for the tick's assets and
    kept for the tick, where DagsterInstance.fetch_materializations asks the storage again
    at every call)."""
    queryer = context.asset_graph_view.get_inner_queryer_for_back_compat()
    record = queryer.get_asset_record(key)
    return record.asset_entry.last_materialization_record if record else None


def with_backfill_policy(
    defs: dg.Definitions,
    policy: dg.BackfillPolicy,
    applies: Callable[[dg.AssetsDefinition], bool],
) -> dg.Definitions:
    """The definitions with `policy` on the assets `applies` picks
    (AssetsDefinition.with_attributes; the rest of the definitions carried over as is)."""
    assets = [
        a.with_attributes(backfill_policy=policy)
        if isinstance(a, dg.AssetsDefinition) and applies(a)
        else a
        for a in defs.assets or []
    ]
    return dg.Definitions(
        assets=assets, schedules=defs.schedules, sensors=defs.sensors, jobs=defs.jobs,
        resources=defs.resources, executor=defs.executor, loggers=defs.loggers,
        asset_checks=defs.asset_checks, metadata=defs.metadata, component_tree=defs.component_tree,
    )  # fmt: skip
