"""When an unpartitioned core table or report rebuilds by itself: its inputs changed.

Dagster's `eager()` rebuilds an asset when a parent was updated since the asset was last
requested or updated. It misses one case: the asset is materialized by a run that read a
parent *before* that parent was updated again, and both updates land between two ticks
of the automation sensor (a report launched from the UI while a sensor's run rebuilds the
leads): the asset's own update then counts as having handled the parent's. The report
would stay stale until the next refresh. So the condition also asks Dagster's record of
what each materialization read (its input event pointers): an unpartitioned parent
materialized after the one this asset last read makes it rebuild, once.
"""

from __future__ import annotations

import dagster as dg

from b2b_platform.lib.dagster_internals import latest_materialization

AC = dg.AutomationCondition


class ReadOlderInputs(dg.AutomationCondition):
    """True when an unpartitioned parent has a newer materialization than the one the
    asset's latest materialization read (monthly parents are followed by `eager()`)."""

    @property
    def name(self) -> str:
        return "read_older_inputs"

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        key, graph = context.key, context.asset_graph
        if not isinstance(key, dg.AssetKey):
            return dg.AutomationResult(context, context.get_empty_subset())
        # the materializations as the tick loaded them: asking the storage for each (64
        # queries) was half of an automation tick on `tiny` (0.55 s of 1.0 s)
        own = latest_materialization(context, key)
        read = (own.asset_materialization.tags or {}) if own and own.asset_materialization else {}
        for parent in graph.get(key).parent_keys:
            pointer = read.get(f"dagster/input_event_pointer/{parent.to_user_string()}")
            if pointer is None or graph.get(parent).partitions_def is not None:
                continue
            newest = latest_materialization(context, parent)
            if newest is not None and newest.storage_id > int(pointer):
                return dg.AutomationResult(context, context.candidate_subset)
        return dg.AutomationResult(context, context.get_empty_subset())


_STALE = ReadOlderInputs()
# latched when it becomes true, until the rebuild is requested or it is no longer true:
# a run that fails does not make it ask again every tick
_READ_OLDER_INPUTS = (
    _STALE.newly_true().since(AC.newly_requested() | ~_STALE)
    & ~AC.any_deps_missing()
    & ~AC.any_deps_in_progress()
    & ~AC.in_progress()
).with_label("read_older_inputs")

# Core tables and reports that are not partitioned rebuild when an upstream asset was
# updated (by a sensor's run, the schedule or by hand), unless a blocking check of an
# unpartitioned parent failed: bad data stops where it was found instead of reaching a
# report. A monthly parent's blocking checks hold the failing month only (MonthsOfStep):
# the other months are published and followed.
FOLLOW_UPSTREAM = (AC.eager() | _READ_OLDER_INPUTS) & (
    AC.all_deps_blocking_checks_passed().ignore(dg.AssetSelection.tag("partitioned_by", "month"))
)
