"""The statements of a step's one transaction: replace a table slice or a view, replace
the quarantine findings, record the accounting, upsert the file manifest; and the fault
points the kill tests use to stop a step just before it commits."""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb

from b2b_platform.lib.warehouse.schema import scalar, table_exists
from b2b_platform.lib.warehouse.sql import (
    SqlFragment,
    column_type,
    identifier_list,
    placeholders,
    qualified_name,
    quote_identifier,
)

FAULT_ENV = "B2B_FAULT_KILL_BEFORE_COMMIT"
SLOW_ENV = "B2B_FAULT_SLOW_BEFORE_COMMIT"
RELEASE_ENV = "B2B_FAULT_RELEASE_FILE"  # SLOW_ENV holds until this file exists (a test says go)
BUSY_ENV = "B2B_FAULT_BUSY_BEFORE_COMMIT"  # a long statement in DuckDB, as a big commit is


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# ---------------------------------------------------------------- what a step writes


@dataclass(frozen=True)
class TableSlice:
    """Replace the rows of `table` matching `where` (all rows if None) with `query`'s rows.

    `params` bind the `?` of `where`; `query` takes none (it becomes a view).
    """

    table: str
    query: SqlFragment
    where: SqlFragment | None = None
    params: Sequence[Any] = ()


@dataclass(frozen=True)
class QuarantineSlice:
    """Quarantine findings for one source/entity/partition, replacing earlier findings.

    `query` yields record_key, reason_code, action, detail, raw_record.
    """

    source: str
    entity: str
    partition_key: str | None
    query: SqlFragment
    # narrower scope inside the partition (e.g. one file's lines): predicate and its params
    scope: SqlFragment | None = None
    scope_params: Sequence[Any] = ()


@dataclass(frozen=True)
class Accounting:
    """records read = loaded + rejected + merged for one entity; loaded is measured."""

    source: str
    entity: str
    partition_key: str | None
    rows_read: int
    loaded_query: SqlFragment  # SELECT count(*) of the records this entity loaded in this slice


@dataclass
class CommitResult:
    rows_read: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    rows_merged: int = 0
    rows_flagged: int = 0
    by_entity: dict[str, dict[str, int]] = field(default_factory=dict)


def fault_point(
    asset_key: str, partition_key: str | None, conn: duckdb.DuckDBPyConnection | None = None
) -> None:
    """Crash-test hooks (tests set the env vars; unset in normal operation): SIGKILL this
    process, hold it for a minute, or keep DuckDB busy for minutes in one statement, with
    a write in flight.

    The value is `asset_key` or `asset_key@partition_key`.
    """
    here = (asset_key, f"{asset_key}@{partition_key}")
    if os.environ.get(FAULT_ENV) in here:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get(SLOW_ENV) in here:
        print(f"fault: holding {asset_key} before its commit", file=sys.stderr, flush=True)
        # a stop signal arrives here, mid-write; or a test lets it go on by a file
        release, deadline = os.environ.get(RELEASE_ENV), time.monotonic() + 60
        while time.monotonic() < deadline and not (release and os.path.exists(release)):
            time.sleep(0.1)
    if os.environ.get(BUSY_ENV) in here and conn is not None:
        print(f"fault: busy in DuckDB before {asset_key} commits", file=sys.stderr, flush=True)
        # an insert of many rows: DuckDB looks at Python's signals only once it is done
        conn.execute(
            "CREATE OR REPLACE TEMP TABLE _busy AS SELECT range AS i, md5(range::VARCHAR) AS h"
            " FROM range(60_000_000)"
        )


def columns_of(conn: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    """The columns and types of a table or view (a dotted name, as code writes it)."""
    described = conn.execute(f"DESCRIBE {qualified_name(relation)}").fetchall()
    return [(r[0], r[1]) for r in described]


def replace_slice(conn: duckdb.DuckDBPyConnection, s: TableSlice) -> int:
    schema = quote_identifier(s.table.split(".")[0])
    table = qualified_name(s.table)
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    if s.where is None:
        # A whole-table replacement may also change the table's shape.
        conn.execute(f"CREATE OR REPLACE TABLE {table} AS {s.query}")
        return int(scalar(conn, f"SELECT count(*) FROM {table}"))
    conn.execute(f"CREATE OR REPLACE TEMP VIEW _new_slice AS {s.query}")
    if not table_exists(conn, s.table):
        conn.execute(f"CREATE TABLE {table} AS SELECT * FROM _new_slice LIMIT 0")
    existing = {name for name, _ in columns_of(conn, s.table)}
    for name, dtype in columns_of(conn, "_new_slice"):
        if name not in existing:  # additive schema change: new columns only
            conn.execute(
                f"ALTER TABLE {table} ADD COLUMN {quote_identifier(name)} {column_type(dtype)}"
            )
    conn.execute(f"DELETE FROM {table} WHERE {s.where}", list(s.params))
    # an INSERT answers with the number of rows it wrote
    inserted = conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _new_slice").fetchall()
    conn.execute("DROP VIEW _new_slice")
    return int(inserted[0][0])


def create_missing_tables(conn: duckdb.DuckDBPyConnection, slices: Sequence[TableSlice]) -> None:
    """Create, empty and committed, the tables these slices go to that do not exist yet.

    On a lake, two writers that each create a table inside their write transaction can
    both commit, the later table replacing the earlier and its rows with it (seen with
    DuckLake 0.3: months loaded at once into a new raw.weblogs lost all but two). So a
    lake's writers create tables first, one at a time (see writer_sections), and write
    their slices into tables that already exist.
    """
    for s in slices:
        if s.where is not None and not table_exists(conn, s.table):
            _create_empty(conn, s)


def _create_empty(conn: duckdb.DuckDBPyConnection, s: TableSlice) -> None:
    """The slice's table, with the columns of its query and no row."""
    schema = quote_identifier(s.table.split(".")[0])
    table = qualified_name(s.table)
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    conn.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM ({s.query}) LIMIT 0")


def replace_view(conn: duckdb.DuckDBPyConnection, view: str, query: SqlFragment) -> None:
    schema, name = view.split(".")
    kind = conn.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, name],
    ).fetchall()
    relation = qualified_name(view)
    if kind and kind[0][0] == "BASE TABLE":  # an older build stored it as a table
        conn.execute(f"DROP TABLE {relation}")
    conn.execute(f"CREATE OR REPLACE VIEW {relation} AS {query}")


def replace_quarantine(conn: duckdb.DuckDBPyConnection, q: QuarantineSlice, run_id: str) -> None:
    delete = (
        "DELETE FROM quarantine.rejected_records WHERE source = ? AND entity = ?"
        " AND partition_key IS NOT DISTINCT FROM ?"
    )
    if q.scope:  # a narrower scope inside the partition
        delete = (
            "DELETE FROM quarantine.rejected_records WHERE source = ? AND entity = ?"
            f" AND partition_key IS NOT DISTINCT FROM ? AND ({q.scope})"
        )
    conn.execute(delete, [q.source, q.entity, q.partition_key, *q.scope_params])
    conn.execute(
        f"""
        INSERT INTO quarantine.rejected_records BY NAME
        SELECT ?::VARCHAR AS source, ?::VARCHAR AS entity, record_key::VARCHAR AS record_key,
               reason_code, action, detail::VARCHAR AS detail, raw_record::VARCHAR AS raw_record,
               ?::VARCHAR AS partition_key, ?::VARCHAR AS run_id, ?::TIMESTAMP AS detected_at
        FROM ({q.query})
        """,
        [q.source, q.entity, q.partition_key, run_id, utc_now()],
    )


def record_accounting(
    conn: duckdb.DuckDBPyConnection, acc: Accounting, run_id: str
) -> dict[str, int]:
    loaded = int(scalar(conn, acc.loaded_query))
    actions = dict(
        conn.execute(
            "SELECT action, count(DISTINCT record_key) FROM quarantine.rejected_records"
            " WHERE source = ? AND entity = ? AND partition_key IS NOT DISTINCT FROM ?"
            " GROUP BY action",
            [acc.source, acc.entity, acc.partition_key],
        ).fetchall()
    )
    counts = {
        "rows_read": acc.rows_read,
        "rows_loaded": loaded,
        "rows_rejected": int(actions.get("rejected", 0)),
        "rows_merged": int(actions.get("merged", 0)),
        "rows_flagged": int(actions.get("flagged", 0)),
    }
    conn.execute(
        "DELETE FROM etl.record_accounting WHERE source = ? AND entity = ?"
        " AND partition_key IS NOT DISTINCT FROM ?",
        [acc.source, acc.entity, acc.partition_key],
    )
    conn.execute(
        "INSERT INTO etl.record_accounting (source, entity, partition_key, rows_read, rows_loaded,"
        " rows_rejected, rows_merged, rows_flagged, run_id, recorded_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            acc.source,
            acc.entity,
            acc.partition_key,
            counts["rows_read"],
            counts["rows_loaded"],
            counts["rows_rejected"],
            counts["rows_merged"],
            counts["rows_flagged"],
            run_id,
            utc_now(),
        ],
    )
    return counts


def recorded_accounting(
    conn: duckdb.DuckDBPyConnection, source: str, entities: Sequence[str], partition_key: str
) -> dict[str, dict[str, int]]:
    """The accounting a slice was published with, by entity (as record_accounting
    returned it then): for a step that finds its slice up to date."""
    rows = conn.execute(
        "SELECT entity, rows_read, rows_loaded, rows_rejected, rows_merged, rows_flagged"
        " FROM etl.record_accounting WHERE source = ? AND list_contains(?, entity)"
        " AND partition_key = ?",
        [source, list(entities), partition_key],
    ).fetchall()
    names = ("rows_read", "rows_loaded", "rows_rejected", "rows_merged", "rows_flagged")
    found = {row[0]: dict(zip(names, map(int, row[1:]), strict=True)) for row in rows}
    return {entity: found.get(entity, dict.fromkeys(names, 0)) for entity in entities}


MANIFEST_COLUMNS: tuple[str, ...] = (
    "source", "path", "partition_key", "size_bytes", "modified_at", "content_hash", "status",
    "rows_read", "rows_loaded", "rows_rejected", "loaded_at", "error", "load_cutoff",
    "held_from", "loaded_until", "first_line_hash", "text_bytes",
)  # fmt: skip


def upsert_manifest(
    conn: duckdb.DuckDBPyConnection, rows: Sequence[Mapping[str, Any]], run_id: str
) -> None:
    """Replace the manifest rows of these files in their partitions (one DELETE and one
    INSERT for all): a log file read by two months has a row in each."""
    conn.execute(
        "DELETE FROM etl.file_manifest WHERE list_contains(?,"
        " source || chr(0) || path || chr(0) || coalesce(partition_key, ''))",
        [[f"{row['source']}\x00{row['path']}\x00{row.get('partition_key') or ''}" for row in rows]],
    )
    conn.executemany(
        f"INSERT INTO etl.file_manifest ({identifier_list(MANIFEST_COLUMNS)}, run_id)"
        f" VALUES ({placeholders(len(MANIFEST_COLUMNS))}, ?)",
        [[row.get(c) for c in MANIFEST_COLUMNS] + [run_id] for row in rows],
    )
