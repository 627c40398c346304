"""The warehouse as a Dagster resource: a DuckDB file, or a DuckLake and its data path.

Everything Dagster runs opens the warehouse through it: `get_connection` to read, or
to write outside a step, and `step` for an asset's recorded write, which knows
whether its slices are up to date. Both open through warehouse_connection, the one
opener (a file's lock wait, a lake's attach, the macros).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from functools import partial
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field

from b2b_platform.lib.dagster_internals import last_event_time, run_asset_graph
from b2b_platform.lib.warehouse.connection import LOCK_WAIT_SECONDS, warehouse_connection
from b2b_platform.lib.warehouse.loaded_files import read_loaded_files
from b2b_platform.lib.warehouse.location import WarehouseLocation
from b2b_platform.lib.warehouse.slice_versions import (
    SliceShape,
    SliceVersion,
    VersionBasis,
    record_versions,
    recorded_versions,
    slice_inputs,
    version_of,
)
from b2b_platform.lib.warehouse.step import WarehouseStep, warehouse_step


class VersionSettings(dg.Config):
    """What every slice's version starts from besides the code and the pseudonym key
    (slice_versions.VersionBasis), from the settings the resources were built with: a
    step reads them here, never from the environment."""

    settings: dict[str, str]  # variable -> digest of its value (Settings.version_digests)
    as_of: str  # YYYY-MM-DD
    pseudonym_key_variable: str  # the variable holding the key; "": the key file
    pseudonym_key_file: str

    def basis(self) -> VersionBasis:
        # the key is looked for at each step: the first one that pseudonymizes makes it
        return VersionBasis.of(
            self.settings, self.as_of, self.pseudonym_key_variable, Path(self.pseudonym_key_file)
        )


# month_step(partition_key, source=""): one month's recorded step (each_month)
MonthStep = Callable[..., AbstractContextManager[WarehouseStep]]
MONTH_LANES = 2  # months of a monthly step written at once on a warehouse file (two cores)


class WarehouseResource(DuckDBResource):
    """The warehouse every step writes and every check reads.

    `database` is a DuckDB file path or a `ducklake:postgres:<conninfo>` catalog;
    `lake_data_path` is where a lake keeps its Parquet files. `connection_config` is
    every connection's DuckDB configuration.
    """

    lake_data_path: str = ""
    # None in a resource that never runs a step (a sensor's, the CLI's): `step` refuses.
    # Masked in the UI: it holds a digest of B2B_SOURCE_DB_URL, whose password could be
    # guessed against it.
    versions: VersionSettings | None = Field(
        default=None, json_schema_extra={"dagster__is_secret": True}
    )

    @classmethod
    def at(cls, location: WarehouseLocation) -> WarehouseResource:
        """The warehouse at `location` with DuckDB's default configuration, for code that
        runs outside Dagster (the CLI)."""
        return cls(database=location.target, lake_data_path=location.data_path)

    def location(self) -> WarehouseLocation:
        return WarehouseLocation(target=self.database, data_path=self.lake_data_path)

    def exists(self) -> bool:
        """Whether there is a warehouse to read (a lake's catalog is asked, read-only)."""
        return self.location().exists()

    def loaded_files(self, source: str) -> dict[str, str] | None:
        """path -> version of the files of `source` the warehouse has read, from the state
        kept next to it without opening it (loaded_files); None when there is none."""
        return read_loaded_files(self.location(), source)

    @contextmanager
    def get_connection(
        self,
        *,
        read_only: bool = False,
        wait_seconds: float = LOCK_WAIT_SECONDS,
        on_wait: Callable[[str], None] | None = None,
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the warehouse; a file's lock is waited for up to `wait_seconds`, and
        `on_wait` hears what is waited for (see warehouse_connection)."""
        with warehouse_connection(
            self.location(),
            read_only=read_only,
            config=self.connection_config,
            wait_seconds=wait_seconds,
            on_wait=on_wait,
        ) as conn:
            yield conn

    @contextmanager
    def step(
        self,
        context: dg.AssetExecutionContext,
        partition_key: str | None = None,
        source: str | None = "",
        *,
        shared: SharedConnection | None = None,
    ) -> Iterator[WarehouseStep]:
        """Open a recorded warehouse step for this asset execution (and one of its partitions).

        Partitioned assets run a range of months in one Dagster run (single-run backfill
        policy) and open one step per month, so each month commits and is recorded alone.
        `source` is the version of the source the slice reads directly (None: read it
        again whatever was recorded); the step knows whether its slices are up to date
        (`step.up_to_date`) and records their versions when it succeeds.
        `shared`: the connection the months of one Dagster step take in turn (each_month).
        """
        with (
            shared.use() if shared else nullcontext((None, False)) as (conn, schema_made),
            warehouse_step(
                self.location(),
                context.run.run_id,
                step_name(context),
                partition_key,
                config=self.connection_config,
                # the last thing a dead run told Dagster is the best estimate of when it broke
                last_event_time=partial(last_event_time, context.instance),
                log=context.log.info,
                connection=conn,
                schema_made=schema_made,
            ) as step,
        ):
            self.set_slice_versions(context, step, partition_key, source)
            yield step

    def each_month(
        self,
        context: dg.AssetExecutionContext,
        month: Callable[[MonthStep, str], None],
        *,
        lanes: int = MONTH_LANES,
    ) -> None:
        """Call `month(month_step, partition_key)` for each month of a monthly asset's
        Dagster step; `month_step(partition_key, source="")` is `step` for that month.

        On a warehouse file, months run `lanes` at a time, each lane on its own
        connection to the one DuckDB database this process holds (so the file's lock is
        not in the way): much of a month's write runs on one thread (an insert, a parse,
        a source's scan), and two lanes keep both cores busy. The first month runs alone,
        since it may create the tables the others write to (two transactions cannot
        create one table). Months then run in groups of `lanes`; between groups,
        connections held longer than SHARED_CONNECTION_SECONDS are all closed, so a reader
        waiting for the file gets in. A lake runs its months in turn: `b2b run` already
        gives a lake's months to several runs at once, and two lanes of one process on
        DuckDB 1.4's DuckLake hung (one lane's `SET threads` waiting on the other's query).

        A failed month fails the step once the months beside it have finished (each
        month commits or rolls back alone); no later month starts.
        """
        keys = list(context.partition_keys)
        lanes = 1 if self.location().is_lake else lanes
        with ExitStack() as stack:
            shared = [
                stack.enter_context(SharedConnection(self, context.log.info)) for _ in range(lanes)
            ]
            beside = stack.enter_context(
                ThreadPoolExecutor(max(lanes - 1, 1), thread_name_prefix="month-lane")
            )
            groups = [keys[:1]] if keys else []
            groups += [keys[i : i + lanes] for i in range(1, len(keys), lanes)]
            for group in groups:
                if any(lane.expired for lane in shared):  # all at once, or the file stays held
                    for lane in shared:
                        lane.close()
                others = [
                    beside.submit(month, partial(self.step, context, shared=lane), key)
                    for lane, key in zip(shared[1:], group[1:], strict=False)
                ]
                try:
                    month(partial(self.step, context, shared=shared[0]), group[0])
                finally:
                    wait(others)
                for other in others:
                    other.result()

    def set_slice_versions(
        self,
        context: dg.AssetExecutionContext,
        step: WarehouseStep,
        partition_key: str | None,
        source: str | None,
    ) -> None:
        """Set the versions the step's slices will be recorded with, and whether they are
        up to date. A step that learns its source's version only as it works sets it again."""
        step.versions, step.up_to_date, step.previous_inputs = slice_versions_of(
            context, step.conn, self._version_basis(), partition_key, source
        )

    def record_unchanged_slices(
        self, context: dg.AssetExecutionContext, sources: dict[str, str]
    ) -> None:
        """Record the current versions of months a step found unchanged at their source
        (partition key -> source version) without opening a step for each (their data
        stays as it is)."""
        if not sources:
            return
        basis = self._version_basis()
        with self.get_connection() as conn:
            rows = []
            for partition_key, source in sources.items():
                rows += slice_versions_of(context, conn, basis, partition_key, source)[0]
            conn.execute("BEGIN TRANSACTION")
            record_versions(conn, rows)
            conn.execute("COMMIT")

    def _version_basis(self) -> VersionBasis:
        if self.versions is None:
            # a step recorded against no settings would look stale to every `b2b run`
            raise dg.DagsterInvariantViolationError(
                "the duckdb resource has no version settings: build it with build_resources"
            )
        return self.versions.basis()


def step_name(context: dg.AssetExecutionContext) -> str:
    return ",".join(sorted(key.to_user_string() for key in context.selected_asset_keys))


def slice_versions_of(
    context: dg.AssetExecutionContext,
    conn: duckdb.DuckDBPyConnection,
    basis: VersionBasis,
    partition_key: str | None,
    source: str | None,
) -> tuple[list[SliceVersion], bool, str | None]:
    """The versions of each slice the step builds (no rows when the source must be read
    again), whether all of them are up to date, and the inputs the first was last built
    from (JSON, None if never built)."""
    graph = run_asset_graph(context)
    recorded = recorded_versions(conn)

    def parent_version(key: dg.AssetKey, month: str | None) -> str | None:
        found = recorded.get((key.to_user_string(), month))
        return found.data_version if found else None

    rows: list[SliceVersion] = []
    current = True
    previous: list[str | None] = []
    for key in sorted(context.selected_asset_keys):
        shape = SliceShape.of(context.assets_def, key, lambda k: graph.get(k).partitions_def)
        inputs = slice_inputs(basis, shape, partition_key, parent_version, source)
        if inputs is None:
            return [], False, None
        version = version_of(key, partition_key, inputs)
        name = key.to_user_string()
        rows.append((name, partition_key, version, json.dumps(inputs, sort_keys=True)))
        found = recorded.get((name, partition_key))
        current &= found is not None and found.input_version == version
        previous.append(found.inputs if found else None)
    return rows, current and bool(rows), previous[0] if previous else None


SHARED_CONNECTION_SECONDS = 5.0


class SharedConnection:
    """A warehouse connection the months of one lane of a step take in turn (each_month).

    Opening a warehouse file and closing it (a checkpoint) costs more than a small
    month's work. A month takes the connection the month before left while it has been
    open less than SHARED_CONNECTION_SECONDS (`expired`: each_month then closes every
    lane's, so a reader waiting for the file gets in); after a month that failed, the
    next opens it afresh.
    """

    def __init__(self, warehouse: WarehouseResource, on_wait: Callable[[str], None]) -> None:
        self._warehouse = warehouse
        self._on_wait = on_wait
        self._stack = ExitStack()
        self._conn: duckdb.DuckDBPyConnection | None = None
        self._opened_at = 0.0
        self._schema_made = False

    @property
    def expired(self) -> bool:
        """Open longer than SHARED_CONNECTION_SECONDS."""
        return (
            self._conn is not None
            and time.monotonic() - self._opened_at > SHARED_CONNECTION_SECONDS
        )

    def __enter__(self) -> SharedConnection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def use(self) -> Iterator[tuple[duckdb.DuckDBPyConnection, bool]]:
        """The connection for the next month, and whether a month before made the
        warehouse's tables and macros on it (one held too long is closed by each_month,
        between groups of months, all lanes' at once)."""
        if self._conn is None:
            self._conn = self._stack.enter_context(
                self._warehouse.get_connection(on_wait=self._on_wait)
            )
            self._opened_at = time.monotonic()
        try:
            yield self._conn, self._schema_made
        except BaseException:
            self.close()
            raise
        self._schema_made = True

    def close(self) -> None:
        self._stack.close()
        self._conn = None
        self._schema_made = False
