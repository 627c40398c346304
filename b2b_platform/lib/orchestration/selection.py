"""What `b2b run` runs: the selection resolved, the stale part of it, and the stages
(runs) it is split into, in dependency order."""

from __future__ import annotations

import warnings
from collections.abc import Collection

import dagster as dg

from b2b_common.errors import UserError
from b2b_platform.lib.dagster_internals import AssetGraph, asset_graph, toposorted_keys
from b2b_platform.lib.orchestration.stage_launchers import Stage
from b2b_platform.lib.orchestration.stale_slices import StalePlan

SELECTION_HINT = (
    "write keys like raw/weblogs or +reports/monthly_sales, group:reports or tag:source=leads;"
    " `.venv/bin/dg list defs` lists the assets"
)


def resolve_selection(defs: dg.Definitions, selection: str | None) -> set[dg.AssetKey]:
    graph = asset_graph(defs)
    all_keys = set(graph.get_all_asset_keys())
    materializable = {k for k in all_keys if graph.get(k).is_materializable}
    if not selection:
        return materializable
    try:
        # tag: and group: selections use a beta parameter of Dagster's: not the user's concern
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dg.BetaWarning)
            chosen = dg.AssetSelection.from_string(selection).resolve(graph)
    except dg.DagsterInvalidSubsetError:
        chosen = set()  # a key that names no asset
    except Exception:
        raise UserError(
            f"--select {selection!r} is not an asset selection: {SELECTION_HINT}"
        ) from None
    chosen &= materializable
    if not chosen:
        raise UserError(f"--select {selection!r} matches no asset: {SELECTION_HINT}")
    return with_siblings(defs, chosen)


def with_siblings(defs: dg.Definitions, keys: set[dg.AssetKey]) -> set[dg.AssetKey]:
    """A multi-asset (e.g. raw orders + order items) runs whole: add its siblings."""
    expanded = set(keys)
    for key in keys:
        expanded |= set(defs.resolve_assets_def(key).keys)
    return expanded


def stale_only(defs: dg.Definitions, keys: set[dg.AssetKey], plan: StalePlan) -> set[dg.AssetKey]:
    """The selected assets a refresh must run: those with stale slices, with siblings."""
    return with_siblings(defs, plan.keys & keys)


def _selected_ancestors(
    graph: AssetGraph, key: dg.AssetKey, keys: set[dg.AssetKey]
) -> tuple[set[dg.AssetKey], set[dg.AssetKey]]:
    """The nearest selected assets upstream of key, looking through unselected ones; and
    those of them reached only through an unselected asset, an order a run cannot see."""
    nearest: set[dg.AssetKey] = set()
    hidden: set[dg.AssetKey] = set()
    seen: set[dg.AssetKey] = set()
    frontier = [(parent, False) for parent in graph.get(key).parent_keys]
    while frontier:
        parent, through = frontier.pop()
        if (parent, through) in seen:
            continue
        seen.add((parent, through))
        if parent in keys:
            nearest.add(parent)
            if through:
                hidden.add(parent)
        else:
            frontier.extend((grand, True) for grand in graph.get(parent).parent_keys)
    return nearest, hidden


def plan_stages(
    graph: AssetGraph, keys: set[dg.AssetKey], alone: Collection[dg.AssetKey] = ()
) -> list[Stage]:
    """Stages in dependency order, each one run; a stage never mixes partitioning within
    a dependency.

    A monthly asset may share the run of its unpartitioned parents (Dagster runs them
    first); an unpartitioned asset that reads a monthly one waits for the next stage.
    The unpartitioned assets of a stage run alone first where one of them is in `alone`
    (rebuilt, it may keep its rows, and the months after it are planned again), or where
    a monthly asset reads one of them only through assets left out of the selection,
    which the run could not order. Fewer stages are fewer runs, and each run costs its
    start and its end (seconds, whatever it does)."""
    stage_of: dict[dg.AssetKey, int] = {}
    hidden_of: dict[dg.AssetKey, set[dg.AssetKey]] = {}
    for key in toposorted_keys(graph):
        if key not in keys:
            continue
        partitioned = graph.get(key).partitions_def is not None
        stage = 0
        nearest, hidden_of[key] = _selected_ancestors(graph, key, keys)
        for parent in nearest:
            if parent in stage_of:
                parent_partitioned = graph.get(parent).partitions_def is not None
                later = parent_partitioned and not partitioned
                stage = max(stage, stage_of[parent] + later)
        stage_of[key] = stage
    # Run a partitioned asset as late as its partitioned children allow, so a month's
    # raw extraction and its staging share one run instead of two.
    for key in reversed(toposorted_keys(graph)):
        if key not in stage_of or graph.get(key).partitions_def is None:
            continue
        children = [c for c in graph.get(key).child_keys if c in stage_of]
        if children and all(graph.get(c).partitions_def is not None for c in children):
            stage_of[key] = max(stage_of[key], min(stage_of[c] for c in children))
    stages: list[Stage] = []
    for index in sorted(set(stage_of.values())):
        in_stage = {k for k, s in stage_of.items() if s == index}
        monthly = frozenset(k for k in in_stage if graph.get(k).partitions_def is not None)
        whole = frozenset(in_stage - monthly)
        if whole & set(alone) or any(hidden_of[k] & whole for k in monthly):
            stages += [Stage(whole, partitioned=False), Stage(monthly, partitioned=True)]
        else:
            stages.append(Stage(whole | monthly, partitioned=bool(monthly)))
    return stages
