"""Moving a warehouse: every table out as Parquet, and into another warehouse, whole.

A DuckDB 2.0 file cannot be opened by DuckDB 1.4, the lake profile's, so a file
warehouse moves into a lake through Parquet, which both read: `b2b export-warehouse DIR`
with the default environment, then `b2b import-warehouse DIR` with the lake profile and
B2B_WAREHOUSE naming the lake. The import is one transaction that also brings the run
log, file manifest and slice versions, so the lake knows what is already loaded and
`b2b run` rebuilds nothing that is up to date.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from b2b_common.errors import UserError
from b2b_platform.lib.sql import bind_variables
from b2b_platform.lib.warehouse_schema import SCHEMAS

MANIFEST = "warehouse.json"


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def export_warehouse(conn: duckdb.DuckDBPyConnection, target: Path) -> dict:
    """Write each table of the warehouse's schemas to `target/<schema>.<table>.parquet`,
    and the list of tables, row counts and views to `target/warehouse.json`."""
    if target.exists() and any(target.iterdir()):
        raise UserError(f"{target} is not empty: export into a new directory")
    target.mkdir(parents=True, exist_ok=True)
    tables = conn.execute(
        "SELECT schema_name, table_name FROM duckdb_tables()"
        " WHERE database_name = current_database() AND list_contains(?, schema_name)"
        " ORDER BY ALL",
        [list(SCHEMAS)],
    ).fetchall()
    manifest: dict = {"tables": {}, "views": {}}
    for schema, table in tables:
        name = f"{schema}.{table}"
        path = target / f"{name}.parquet"
        conn.execute(f"COPY {name} TO {_quoted(str(path))} (FORMAT parquet)")
        manifest["tables"][name] = conn.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
    for schema, view, sql in conn.execute(
        "SELECT schema_name, view_name, sql FROM duckdb_views()"
        " WHERE database_name = current_database() AND NOT internal AND list_contains(?, schema_name)",
        [list(SCHEMAS)],
    ).fetchall():
        manifest["views"][f"{schema}.{view}"] = sql
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def _create_views(conn: duckdb.DuckDBPyConnection, views: dict[str, str]) -> None:
    """Create the views, each after the views its SQL names (a view over a view): a
    failed CREATE would abort the transaction, so the order is worked out first."""
    created: set[str] = set()
    while len(created) < len(views):
        ready = [
            name
            for name, sql in views.items()
            if name not in created
            and all(other in created for other in views if other != name and other in sql)
        ]
        if not ready:
            raise UserError(f"the exported views read each other in a circle: {sorted(views)}")
        for name in sorted(ready):
            conn.execute(views[name])
            created.add(name)


def import_warehouse(conn: duckdb.DuckDBPyConnection, source: Path) -> dict:
    """Load an export into this warehouse, which must hold none of its tables yet; all
    of it in one transaction, each table's row count checked against the export's."""
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(
            f"{source / MANIFEST} cannot be read ({exc}): point at a directory"
            " written by `b2b export-warehouse`"
        ) from None
    existing = {
        f"{s}.{t}"
        for s, t in conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_catalog = current_database()"
        ).fetchall()
    }
    taken = sorted(existing & (set(manifest["tables"]) | set(manifest["views"])))
    if taken:
        raise UserError(
            f"the warehouse already holds {', '.join(taken[:3])}: import into an empty one"
        )
    conn.execute("BEGIN TRANSACTION")
    try:
        for schema in sorted({name.split(".")[0] for name in manifest["tables"]}):
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for name, rows in manifest["tables"].items():
            bind_variables(conn, {"exported_file": str(source / f"{name}.parquet")})
            conn.execute(
                f"CREATE TABLE {name} AS SELECT * FROM read_parquet(getvariable('exported_file'))"
            )
            loaded = conn.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
            if loaded != rows:
                raise UserError(f"{name}: {loaded} rows read, the export says {rows}")
        _create_views(conn, manifest["views"])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return manifest
