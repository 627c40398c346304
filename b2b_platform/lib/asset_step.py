"""Glue between a Dagster asset execution and its recorded warehouse steps (opened by
WarehouseResource.step): writes checked before they are published, and their metadata."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

import dagster as dg
import duckdb
from tabulate import tabulate

from b2b_common.dates import add_months, month_name
from b2b_platform.lib import checks
from b2b_platform.lib.dagster_internals import run_asset_graph
from b2b_platform.lib.metadata import input_rows, markdown_list, schema_metadata, table_metadata
from b2b_platform.lib.orchestration.run_progress import PUBLISHED
from b2b_platform.lib.warehouse.resource import MonthStep, WarehouseResource
from b2b_platform.lib.warehouse.schema import scalar
from b2b_platform.lib.warehouse.slice_versions import changed_months
from b2b_platform.lib.warehouse.sql import bind_variables, qualified_name
from b2b_platform.lib.warehouse.step import AuditFailed, WarehouseStep
from b2b_platform.lib.warehouse.writes import TableSlice

WAREHOUSE_POOL = "duckdb_warehouse"

# Reading a source can fail for a moment (a database restart, a file being rotated):
# retry with backoff. Errors that will not go away raise Failure(allow_retries=False).
SOURCE_RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL)


def month_bounds(partition_key: str) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a monthly partition key (YYYY-MM-DD)."""
    start = dt.date.fromisoformat(partition_key)
    return (
        dt.datetime.combine(start, dt.time(0)),
        dt.datetime.combine(add_months(start, 1), dt.time(0)),
    )


SINGLE_RUN = dg.BackfillPolicy.single_run()


def months_markdown(rows: dict[str, dict[str, int]]) -> dg.MetadataValue:
    """A per-month table for the metadata of a run that covered several months (in month
    order, whichever finished first)."""
    if not rows:
        return dg.MetadataValue.md("no months")
    columns = list(next(iter(rows.values())))
    body = [[month[:7], *(f"{rows[month][c]:,}" for c in columns)] for month in sorted(rows)]
    table = tabulate(body, headers=["month", *columns], tablefmt="pipe", disable_numparse=True,
                     colalign=["left", *["right"] * len(columns)])  # fmt: skip
    return dg.MetadataValue.md(table)


def month_metadata(
    context: dg.AssetExecutionContext,
    per_month: Mapping[str, Mapping[str, int]],
    row_count: str,
    asset_key: dg.AssetKey | None = None,
) -> None:
    """Each month's own counts on that month's materialization. A run over several
    months returns one result, which Dagster copies to every month it covered; these
    override the copy, so a partition's dagster/row_count is its own rows."""
    for partition_key, values in per_month.items():
        context.add_asset_metadata(
            {"dagster/row_count": values[row_count], **values},
            asset_key=asset_key,
            partition_key=partition_key,
        )


TableCheck = Callable[[duckdb.DuckDBPyConnection], dg.AssetCheckResult]
AssetEvents = Iterator[dg.MaterializeResult | dg.AssetCheckResult]


class CheckAudit:
    """An asset's checks, run as the audit of its write (write-audit-publish).

    Passed to WarehouseStep.commit: the checks see the new slice inside the open
    transaction, and a failed blocking check rolls it back instead of publishing it.
    The results are kept for the materialization (or for the failure's report).
    """

    def __init__(
        self,
        context: dg.AssetExecutionContext,
        evaluate: Callable[[duckdb.DuckDBPyConnection], Sequence[dg.AssetCheckResult]],
    ) -> None:
        self.evaluate = evaluate
        self.results: list[dg.AssetCheckResult] = []
        self.default_key = context.assets_def.key if len(context.assets_def.keys) == 1 else None
        self.blocking = {spec.key for spec in context.assets_def.check_specs if spec.blocking}

    def __call__(self, conn: duckdb.DuckDBPyConnection) -> list[str]:
        self.results = list(self.evaluate(conn))
        failed = []
        for result in self.results:
            key = dg.AssetCheckKey(result.asset_key or self.default_key, result.check_name)  # type: ignore[arg-type]
            if not result.passed and key in self.blocking:
                # the figures behind the failure, where the check states them
                summary = result.metadata.get("summary")
                said = getattr(summary, "value", summary)
                failed.append(key.to_user_string() + (f" ({said})" if said else ""))
        return failed


def blocked(audits: Sequence[CheckAudit], error: AuditFailed) -> AssetEvents:
    """Report the checks of a slice a blocking check stopped, then fail the step.

    The step fails (so nothing downstream runs) after the check results are recorded,
    and etl.run_log already says which check failed.
    """
    for audit in audits:
        yield from audit.results
    raise dg.Failure(description=str(error), allow_retries=False)


class MonthsOfStep:
    """What a monthly step did with each of its months: the checks' results, and the
    months a blocking check held back.

    A held month holds only itself: its new slice is rolled back (the previous one, or
    none, stays published and etl.run_log says which check stopped it and its figures),
    and the step goes on with the other months, whose children then run from what is
    published. `b2b run` still exits non-zero while a month is held.
    """

    def __init__(self, context: dg.AssetExecutionContext) -> None:
        self.context = context
        self.results: list[tuple[str, dg.AssetCheckResult]] = []
        self.held: dict[str, str] = {}  # month -> why

    def checked(self, partition_key: str, audit: CheckAudit) -> None:
        """A month published, with its checks' results (`b2b run` counts these lines)."""
        self.results += [(partition_key, result) for result in audit.results]
        self.context.log.info(f"{PUBLISHED}{month_name(partition_key)}")

    def hold(self, partition_key: str, audit: CheckAudit, error: AuditFailed) -> None:
        self.checked(partition_key, audit)
        self.held[partition_key] = str(error)
        self.context.log.warning(f"{month_name(partition_key)} held: {error}")
        for key in self.context.selected_asset_keys:
            # Dagster records a run over a range of months as a materialization of each:
            # this month's says that its data is the slice published before
            self.context.add_asset_metadata(
                {"held": str(error)}, asset_key=key, partition_key=partition_key
            )

    def check_results(self, asset_key: dg.AssetKey | None = None) -> list[dg.AssetCheckResult]:
        combined = checks.combine_months(self.results, self.held)
        return [r for r in combined if asset_key is None or r.asset_key == asset_key]

    def metadata(self) -> dict[str, dg.MetadataValue]:
        lines = [f"{month_name(m)}: {why}" for m, why in sorted(self.held.items())]
        return {"held_months": markdown_list(lines)}


def published(audits: Sequence[CheckAudit], write: Callable[[], dict[str, Any]]) -> AssetEvents:
    """Run a write whose commits carry these audits; materialize it, or report what blocked it.

    `write` returns the materialization's metadata.
    """
    try:
        metadata = write()
    except AuditFailed as error:
        yield from blocked(audits, error)
    yield dg.MaterializeResult(
        metadata=metadata, check_results=[r for audit in audits for r in audit.results]
    )


def materialize_table(
    context: dg.AssetExecutionContext,
    duckdb_resource: WarehouseResource,
    table: str,
    query: str,
    *,
    view: bool = False,
    register: dict[str, Any] | None = None,
    table_checks: Sequence[TableCheck] = (),
    extra_metadata: Callable[[duckdb.DuckDBPyConnection], dict[str, Any]] | None = None,
    checks_follow: dg.AssetKey | None = None,
    variables: Mapping[str, Any] | None = None,
) -> AssetEvents:
    """Replace a whole (unpartitioned) table or view in one recorded step, checked before
    it is published. `variables` are bound on the step's connection first (the query and
    the checks read them with getvariable()).

    With `checks_follow` (a monthly parent the table holds month by month, with its own
    `partition_key`), the checks look only at the months whose parent slice changed since
    the table was last built: a view over ten million rows then checks the new month,
    not the year.
    """
    months: list[str] | None = None  # with checks_follow: the months to check
    # reads `months` when the audit runs, after the step below has set it
    audit = CheckAudit(context, lambda conn: _evaluate_checks(conn, table_checks, months))
    try:
        with duckdb_resource.step(context) as step:
            if checks_follow is not None and step.versions:
                months = _months_to_check(context, step, checks_follow)
            bind_variables(step.conn, variables or {})
            for name, frame in (register or {}).items():  # Arrow tables the query reads
                step.conn.register(name, frame)
            # up to date: its checks are evaluated again, nothing is rewritten
            rebuild = not step.up_to_date
            result = step.commit(
                [TableSlice(table, query)] if rebuild and not view else [],
                views={table: query} if view and rebuild else None,
                audit=audit,
                rows_read=input_rows(step.conn, *_inputs(context), None) if rebuild else 0,
            )
            metadata = table_metadata(step.conn, table, None if view else result)
            metadata["rebuilt"] = rebuild  # False: unchanged inputs, checks evaluated again
            if months is not None:
                metadata["months_checked"] = ", ".join(m[:7] for m in months) or "none"
            if extra_metadata:
                metadata |= extra_metadata(step.conn)
            # Logged while the step still holds the warehouse, so the events keep the
            # order of the writes: a run that changes an input after this read logs its
            # event after this one, and automation builds this table again. (Logged after
            # the release, a quick writer's event could come first and leave it stale.)
            recorded = list(step.data_versions.values())  # equal content, equal version
            yield dg.MaterializeResult(
                metadata=metadata,
                check_results=audit.results,
                data_version=dg.DataVersion(recorded[0]) if recorded else None,
            )
    except AuditFailed as error:
        yield from blocked([audit], error)


def _evaluate_checks(
    conn: duckdb.DuckDBPyConnection, table_checks: Sequence[TableCheck], months: list[str] | None
) -> list[dg.AssetCheckResult]:
    """Run a table's checks on all of it, or (`months` not None) on those months only."""
    if months is None:
        return [check(conn) for check in table_checks]
    if not months:  # nothing changed: the checks pass on the empty slice
        return [check(conn, where="FALSE") for check in table_checks]
    # month by month: each check's memory is bounded by a month, not the table
    return checks.combine_months([
        (month, check(conn, where="partition_key = ?", params=[month]))
        for month in months for check in table_checks
    ])  # fmt: skip


def materialize_months(
    context: dg.AssetExecutionContext,
    duckdb_resource: WarehouseResource,
    table: str,
    month_query: Callable[[str], str],
    month_checks: Callable[[duckdb.DuckDBPyConnection, str], list[dg.AssetCheckResult]],
) -> AssetEvents:
    """Replace each selected month's slice of a monthly table, one recorded step per month,
    each published only when its checks pass."""
    per_month: dict[str, dict[str, int]] = {}
    months = MonthsOfStep(context)

    def month(month_step: MonthStep, partition_key: str) -> None:
        audit = CheckAudit(context, partial(month_checks, partition_key=partition_key))
        try:
            with month_step(partition_key) as step:
                slice_ = TableSlice(
                    table, month_query(partition_key), where="partition_key = ?",
                    params=[partition_key],
                )  # fmt: skip
                # up to date: its checks are evaluated again, nothing is rewritten
                kept = _month_rows(step.conn, table, partition_key) if step.up_to_date else 0
                read = (
                    0
                    if step.up_to_date
                    else input_rows(step.conn, *_inputs(context), partition_key)
                )
                written = step.commit(
                    [] if step.up_to_date else [slice_], audit=audit, rows_read=read
                )
        except AuditFailed as error:
            months.hold(partition_key, audit, error)
            return
        per_month[partition_key] = {"rows": kept or written.rows_written}
        months.checked(partition_key, audit)

    duckdb_resource.each_month(context, month)
    month_metadata(context, per_month, "rows")
    yield dg.MaterializeResult(
        metadata={
            **schema_metadata(duckdb_resource, table),
            "months": months_markdown(per_month),
            **months.metadata(),
        },
        check_results=months.check_results(),
    )


def _month_rows(conn: duckdb.DuckDBPyConnection, table: str, partition_key: str) -> int:
    return int(
        scalar(
            conn,
            f"SELECT count(*) FROM {qualified_name(table)} WHERE partition_key = ?",
            [partition_key],
        )
    )


def _inputs(
    context: dg.AssetExecutionContext,
) -> tuple[set[dg.AssetKey], Callable[[dg.AssetKey], Iterable[dg.AssetKey]]]:
    """The asset's parents, and how to find the parents of any asset (for views)."""
    graph = run_asset_graph(context)
    return set(graph.get(context.asset_key).parent_keys), lambda key: graph.get(key).parent_keys


def _months_to_check(
    context: dg.AssetExecutionContext, step: WarehouseStep, parent: dg.AssetKey
) -> list[str]:
    """The months of a monthly parent whose slice changed since this table was built
    (every month when that cannot be told)."""
    every = run_asset_graph(context).get(parent).partitions_def.get_partition_keys()
    changed = changed_months(step.previous_inputs, step.versions[0][3], parent)
    return every if changed is None else changed
