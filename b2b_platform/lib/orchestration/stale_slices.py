"""What a refresh must build: the slices whose recorded input version is not the one
their sources and parents give now (see slice_versions for what a version holds)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import dagster as dg

from b2b_platform.lib.dagster_internals import asset_graph, toposorted_keys
from b2b_platform.lib.warehouse.slice_versions import (
    SETTING,
    Recorded,
    RecordedVersion,
    SliceShape,
    VersionBasis,
    changed_inputs,
    data_version,
    slice_inputs,
    version_of,
)

SourceVersions = Mapping[tuple[str, str | None], str | None]


@dataclass
class StalePlan:
    """The stale slices of the selected assets, by asset: months, or {None}."""

    slices: dict[dg.AssetKey, set[str | None]] = field(default_factory=dict)
    reasons: dict[dg.AssetKey, str] = field(default_factory=dict)  # why, for the first slice
    up_to_date: set[dg.AssetKey] = field(default_factory=set)
    never_built: set[dg.AssetKey] = field(default_factory=set)  # a stale slice never built

    @property
    def keys(self) -> set[dg.AssetKey]:
        return set(self.slices)


def plan_stale_slices(
    defs: dg.Definitions,
    selected: set[dg.AssetKey],
    recorded: Recorded,
    sources: SourceVersions,
    basis: VersionBasis,
    in_dagster: Mapping[dg.AssetKey, set[str | None]] | None = None,
) -> StalePlan:
    """Walk the graph from the sources down, computing every selected slice's input
    version as its step will; parents outside the selection count as they are recorded.
    A slice whose parent is stale gets its parent's future data version, so the whole
    chain below a change is stale and nothing else is.

    `in_dagster` holds the slices Dagster has a materialization of: one the warehouse
    holds but Dagster never heard of (a run cancelled after that month committed) is
    built again, or Dagster would count it missing and hold back automation below it."""
    graph = asset_graph(defs)

    def partitions_of(key: dg.AssetKey) -> dg.PartitionsDefinition | None:
        return graph.get(key).partitions_def

    expected: dict[tuple[str, str | None], str] = {}  # data versions after the refresh

    def parent_version(key: dg.AssetKey, month: str | None) -> str | None:
        name = key.to_user_string()
        if (name, month) in expected:
            return expected[(name, month)]
        found = recorded.get((name, month))
        return found.data_version if found else None

    plan = StalePlan()
    for key in (key for key in toposorted_keys(graph) if key in selected):  # parents first
        shape = SliceShape.of(defs.resolve_assets_def(key), key, partitions_of)
        partitions = partitions_of(key)
        name = key.to_user_string()
        for month in partitions.get_partition_keys() if partitions else [None]:
            source = sources.get((name, month), "")
            inputs = slice_inputs(basis, shape, month, parent_version, source)
            version = None if inputs is None else version_of(key, month, inputs)
            found = recorded.get((name, month))
            known = in_dagster is None or month in in_dagster.get(key, set())
            if version is not None and found is not None and found.input_version == version:
                if known:
                    continue
                plan.reasons.setdefault(key, f"no materialization in Dagster{_where(month)}")
            # what it will be once built (unknown for a source read again: a unique mark)
            expected[(name, month)] = data_version(version or f"{name}@{month}: reread")
            plan.slices.setdefault(key, set()).add(month)
            if found is None:
                plan.never_built.add(key)
            plan.reasons.setdefault(key, _reason(found, inputs, month))
        if key not in plan.slices:
            plan.up_to_date.add(key)
    return plan


def _where(month: str | None) -> str:
    return f" ({month[:7]})" if month else ""


def _reason(found: RecordedVersion | None, inputs: dict[str, str] | None, month: str | None) -> str:
    where = _where(month)
    if found is None:
        return f"never built{where}"
    if inputs is None:
        return f"its source must be read again (new, or it failed last time){where}"
    changed = changed_inputs(found.inputs, inputs)
    names = {"code": "the code", "as_of": "the as-of day", "source": "its source",
             "pseudonym_key": "the pseudonym key"}  # fmt: skip
    said = sorted({names.get(name, name.removeprefix(SETTING)) for name in changed})
    return f"changed: {', '.join(said) or 'its inputs'}{where}"
