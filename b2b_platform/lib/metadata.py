"""Materialization metadata every warehouse asset reports: rows, schema, quality counts."""

from __future__ import annotations

from typing import Any

import dagster as dg
import duckdb

from b2b_platform.lib.warehouse import CommitResult


def table_schema(conn: duckdb.DuckDBPyConnection, table: str) -> dg.TableSchema:
    rows = conn.execute(f"DESCRIBE {table}").fetchall()
    return dg.TableSchema(columns=[dg.TableColumn(name=r[0], type=str(r[1])) for r in rows])


def table_metadata(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    result: CommitResult | None = None,
    where: str | None = None,
    params: list[Any] | None = None,
) -> dict[str, Any]:
    """dagster/row_count (of the slice written when `where` is given), column schema, quality."""
    sql = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")
    rows = int(conn.execute(sql, params or []).fetchall()[0][0])  # type: ignore[index]
    metadata: dict[str, Any] = {
        "dagster/row_count": rows,
        "dagster/column_schema": table_schema(conn, table),
        "dagster/table_name": table,
    }
    if result is not None:
        metadata.update(
            rows_read=result.rows_read,
            rows_rejected=result.rows_rejected,
            rows_flagged=result.rows_flagged,
            rows_merged=result.rows_merged,
        )
    return metadata


def column_schemas(
    database: str, config: dict[str, Any] | None, tables: list[str]
) -> dict[str, Any]:
    """Column schemas of warehouse tables, read after a multi-month run's steps closed."""
    from b2b_platform.lib.warehouse import table_exists, warehouse_connection

    with warehouse_connection(database, config=config) as conn:
        return {t: table_schema(conn, t) for t in tables if table_exists(conn, t)}


def schema_metadata(database: str, config: dict[str, Any] | None, table: str) -> dict[str, Any]:
    """{"dagster/column_schema": ...} for a table that exists, else nothing."""
    schemas = column_schemas(database, config, [table])
    return {"dagster/column_schema": schemas[table]} if table in schemas else {}
