"""Helpers for tests that build the warehouse: environment, runs, table snapshots."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from b2b_platform.lib.orchestration.runner import RunOutcome, run_stages
from b2b_platform.lib.orchestration.selection import resolve_selection
from b2b_platform.lib.warehouse.connection import warehouse_connection
from b2b_platform.lib.warehouse.location import WarehouseLocation

# Columns that legitimately differ between two runs over the same data.
VOLATILE_COLUMNS = {
    "_extracted_at", "_loaded_at", "run_id", "detected_at", "recorded_at", "loaded_at",
    "started_at", "finished_at", "broken_at", "pid", "hostname", "modified_at", "parsed_at",
    "looked_up_at",
}  # fmt: skip


def warehouse_env(
    data_dir: Path, warehouse: Path, source_db_url: str | None = None
) -> dict[str, str]:
    return {
        "B2B_SOURCE_DB_URL": source_db_url
        or f"sqlite:///{data_dir / 'source' / 'b2b_platform.db'}",
        "B2B_LOG_DIR": str(data_dir / "weblogs"),
        "B2B_LEADS_DIR": str(data_dir / "leads"),
        "B2B_WAREHOUSE_PATH": str(warehouse),
        "B2B_REPORT_DIR": str(warehouse.parent / "reports"),
    }


def materialize(
    selection: str | None = None, instance: dg.DagsterInstance | None = None
) -> RunOutcome:
    """Run the code location (configured from os.environ) like `b2b run`, in process."""
    from b2b_platform.definitions import defs

    definitions = defs()
    keys = resolve_selection(definitions, selection)
    return run_stages(definitions, instance or dg.DagsterInstance.ephemeral(), keys, lambda _: None)


def snapshot(
    warehouse: Path | WarehouseLocation,
    schemas: tuple[str, ...] = ("raw", "staging", "quarantine", "etl"),
) -> dict:
    """Every table's rows (volatile columns left out), sorted, for equality checks: of a
    warehouse file or a lake."""
    with warehouse_connection(warehouse, read_only=True) as conn:
        tables = conn.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables"
            " WHERE list_contains(?, table_schema) AND table_catalog = current_database()"
            " AND table_name NOT IN ('run_log', 'slice_versions') ORDER BY 1",
            [list(schemas)],
        ).fetchall()
        result = {}
        for (table,) in tables:
            columns = [r[0] for r in conn.execute(f"DESCRIBE {table}").fetchall()]
            kept = ", ".join(f'"{c}"' for c in columns if c not in VOLATILE_COLUMNS)
            result[table] = conn.execute(f"SELECT {kept} FROM {table} ORDER BY ALL").fetchall()
        return result


def query(warehouse: Path | WarehouseLocation, sql: str, params: list | None = None) -> list[tuple]:
    with warehouse_connection(warehouse, read_only=True) as conn:
        return conn.execute(sql, params or []).fetchall()


# join operators that compare every row with every row, as DuckDB 1.4 and 2.0 name them
# in a plan (normalized to lower-case letters only)
NESTED_LOOP_OPERATORS = ("nljoin", "nestedloopjoin", "piecewisemergejoin", "crossproduct")


def views_planned_as_nested_loops(warehouse: Path | WarehouseLocation) -> dict[str, list[str]]:
    """Every view of the warehouse, with the nested-loop joins its plan has (none, as a
    view reading a month of requests must stay linear in them)."""
    with warehouse_connection(warehouse, read_only=True) as conn:
        views = [row[0] for row in conn.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables"
            " WHERE table_type = 'VIEW' AND table_catalog = current_database() ORDER BY 1"
        ).fetchall()]  # fmt: skip
        plans = {
            view: conn.execute(f"EXPLAIN SELECT * FROM {view}").fetchall()[0][1] for view in views
        }
    letters = {
        view: "".join(c for c in plan.lower() if c.isalpha()) for view, plan in plans.items()
    }
    return {
        view: [op for op in NESTED_LOOP_OPERATORS if op in text] for view, text in letters.items()
    }
