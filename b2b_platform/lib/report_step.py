"""Glue for report assets: write the report table and preview it in the UI."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import dagster as dg
import duckdb

from b2b_platform.lib import checks
from b2b_platform.lib.asset_step import (
    WAREHOUSE_POOL,
    AssetEvents,
    TableCheck,
    materialize_table,
)
from b2b_platform.lib.follow_upstream import FOLLOW_UPSTREAM
from b2b_platform.lib.metadata import markdown_list
from b2b_platform.lib.report_files.notes import report_context, report_notes
from b2b_platform.lib.report_files.output import markdown_table, read_report, short_preview
from b2b_platform.lib.resources import CalendarResource
from b2b_platform.lib.warehouse.resource import WarehouseResource


def report_asset(**overrides: Any) -> dict[str, Any]:
    """@dg.asset arguments of a report: it follows its inputs (declarative automation)."""
    return {
        "kinds": {"duckdb"},
        "pool": WAREHOUSE_POOL, "automation_condition": FOLLOW_UPSTREAM, **overrides,
    }  # fmt: skip


def report_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["reports", name])


# Personal data in a report would be exported to files people pass around: blocking.
REPORT_NO_PII = checks.NO_PII.described(
    "No personal data (by column name or value) reaches a report."
)


def report_check_specs(name: str, *report_checks: checks.Check) -> list[dg.AssetCheckSpec]:
    """The report's own checks and REPORT_NO_PII, which every report runs."""
    return [check.spec(report_key(name)) for check in (REPORT_NO_PII, *report_checks)]


def materialize_report(
    context: dg.AssetExecutionContext,
    duckdb_resource: WarehouseResource,
    calendar: CalendarResource,
    name: str,
    query: str,
    report_checks: Sequence[TableCheck] = (),
    variables: Mapping[str, Any] | None = None,
) -> AssetEvents:
    """Replace reports.<name> with the query's rows, over the report window (bound as
    window_start and window_end with the other `variables`); preview, notes, row count
    and schema in the UI."""
    table = f"reports.{name}"
    window_start, window_end = calendar.report_window

    def preview(conn: duckdb.DuckDBPyConnection) -> dict[str, dg.MetadataValue]:
        report = read_report(conn, name)
        about = report_context(
            conn, calendar.as_of_date, window_start, calendar.first_month_start,
            calendar.month_to_date_compared_with, calendar.attribution_days,
        )  # fmt: skip
        notes = report_notes(report, about)
        return {
            "preview": dg.MetadataValue.md(short_preview(report)),  # shown in place
            "all_rows": dg.MetadataValue.md(markdown_table(report, limit=100)),
            "window": dg.MetadataValue.text(about.window),
            "notes": markdown_list(notes),
        }

    yield from materialize_table(
        context,
        duckdb_resource,
        table,
        query,
        table_checks=[
            partial(
                checks.no_pii_columns, asset_key=report_key(name), table=table, check=REPORT_NO_PII
            ),
            *report_checks,
        ],
        extra_metadata=preview,
        variables={**window_variables(window_start, window_end), **(variables or {})},
    )


def window_variables(window_start: dt.date, window_end: dt.date) -> dict[str, Any]:
    """The report window, [window_start, window_end), as the report queries read it."""
    return {"window_start": window_start, "window_end": window_end}
