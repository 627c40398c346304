"""Materialization metadata every warehouse asset reports: rows, schema, quality counts."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import dagster as dg
import duckdb

from b2b_platform.lib.column_docs import column_description
from b2b_platform.lib.literal_text import markdown_text
from b2b_platform.lib.warehouse.resource import WarehouseResource
from b2b_platform.lib.warehouse.schema import scalar, table_exists
from b2b_platform.lib.warehouse.sql import SqlFragment, qualified_name
from b2b_platform.lib.warehouse.writes import CommitResult


def table_schema(conn: duckdb.DuckDBPyConnection, table: str) -> dg.TableSchema:
    rows = conn.execute(f"DESCRIBE {qualified_name(table)}").fetchall()
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=r[0], type=str(r[1]), description=column_description(table, r[0]))
            for r in rows
        ]
    )


def table_metadata(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    result: CommitResult | None = None,
    where: SqlFragment | None = None,
    params: list[Any] | None = None,
) -> dict[str, Any]:
    """dagster/row_count (of the slice written when `where` is given), column schema, quality."""
    sql = f"SELECT count(*) FROM {qualified_name(table)}"
    if where:
        sql = f"SELECT count(*) FROM {qualified_name(table)} WHERE {where}"
    rows = int(scalar(conn, sql, params or []))
    metadata: dict[str, Any] = {
        "dagster/row_count": rows,
        "dagster/column_schema": table_schema(conn, table),
        "dagster/table_name": table,
    }
    if result is not None:
        metadata["rows_read"] = result.rows_read
        quality = {
            "rows_rejected": result.rows_rejected,
            "rows_flagged": result.rows_flagged,
            "rows_merged": result.rows_merged,
        }
        # counts of a step that validates records; a derived table's zeros would say nothing
        if table.split(".")[0] in {"raw", "staging"} or any(quality.values()):
            metadata.update(quality)
    return metadata


def column_schemas(warehouse: WarehouseResource, tables: list[str]) -> dict[str, Any]:
    """Column schemas of warehouse tables, read after a multi-month run's steps closed."""
    with warehouse.get_connection() as conn:
        return {t: table_schema(conn, t) for t in tables if table_exists(conn, t)}


def schema_metadata(warehouse: WarehouseResource, table: str) -> dict[str, Any]:
    """{"dagster/column_schema": ...} for a table that exists, else nothing."""
    schemas = column_schemas(warehouse, [table])
    return {"dagster/column_schema": schemas[table]} if table in schemas else {}


def input_rows(
    conn: duckdb.DuckDBPyConnection,
    parents: Iterable[dg.AssetKey],
    parents_of: Callable[[dg.AssetKey], Iterable[dg.AssetKey]],
    partition_key: str | None,
) -> int:
    """The rows a derived table's step reads: its parent tables, only the month's slice of
    a parent kept by month. A view is counted by the tables under it (`parents_of`), so
    no join runs just to be counted."""
    total, seen = 0, set()
    pending = list(parents)
    while pending:
        key = pending.pop()
        if key in seen or len(key.path) != 2:
            continue
        seen.add(key)
        schema, name = key.path
        kind, columns = conn.execute(
            "SELECT any_value(t.table_type), list(c.column_name)"
            " FROM information_schema.tables t JOIN information_schema.columns c"
            " USING (table_schema, table_name) WHERE table_schema = ? AND table_name = ?",
            [schema, name],
        ).fetchall()[0]
        if kind == "VIEW":
            pending += parents_of(key)
            continue
        if kind is None:  # not built
            continue
        table = qualified_name(f"{schema}.{name}")
        if partition_key and "partition_key" in columns:
            sql, params = f"SELECT count(*) FROM {table} WHERE partition_key = ?", [partition_key]
        else:
            sql, params = f"SELECT count(*) FROM {table}", []
        total += int(scalar(conn, sql, params))
    return total


def markdown_list(items: Iterable[str]) -> dg.MetadataValue:
    """A bulleted list for the UI whose items (file names, errors, notes that quote the
    data) show as written: no link, image or emphasis from what a source sent."""
    return dg.MetadataValue.md("\n".join(f"- {markdown_text(item)}" for item in items) or "none")
