"""Monthly sales over the past year."""

import datetime as dt
from collections.abc import Callable
from typing import Any

import dagster as dg
import duckdb

from b2b_common.dates import add_months, months_between
from b2b_platform.lib.asset_step import AssetEvents
from b2b_platform.lib.checks import Check
from b2b_platform.lib.report_step import (
    materialize_report,
    report_asset,
    report_check_specs,
    report_key,
    window_variables,
)
from b2b_platform.lib.resources import CalendarResource
from b2b_platform.lib.warehouse.resource import WarehouseResource
from b2b_platform.lib.warehouse.sql import sql_file

NAME = "monthly_sales"
KEY = report_key(NAME)


QUERY = sql_file(__file__, NAME)


def monthly_sales_variables(
    window_start: dt.date,
    window_end: dt.date,
    first_loaded_month: dt.date,
    month_to_date_compared_with: dt.datetime,
) -> dict[str, Any]:
    """What monthly_sales.sql reads: one row per month of the window, zeros where nothing
    sold.

    The change is against the previous calendar month, NULL when that month had no
    revenue or was never loaded (before B2B_FIRST_MONTH); for the as-of month still in
    progress, like for like: against the previous month up to the same point
    (`month_to_date_compared_with`). A month is partial when it is still in progress at
    the as-of date or lies before the first loaded month.
    """
    last_day = window_end - dt.timedelta(days=1)
    return {
        **window_variables(window_start, window_end),  # bound again by materialize_report
        "previous_month": add_months(window_start, -1),
        "as_of_month": last_day.replace(day=1),
        "as_of_month_complete": add_months(last_day, 1) == window_end,
        "first_loaded_month": first_loaded_month,
        "month_to_date_compared_with": month_to_date_compared_with,
    }


WINDOW_MONTHS = Check(
    "window_months",
    "Every month of the window once, consecutive: the 12 complete months and, unless the"
    " as-of day ends its month, the month to date.",
    blocking=False,
)
REVENUE_RECONCILES = Check(
    "revenue_reconciles",
    "The months add up to the revenue of valid order lines in the window.",
    blocking=False,
)


def _window_months(
    window_start: dt.date, window_end: dt.date
) -> Callable[[duckdb.DuckDBPyConnection], dg.AssetCheckResult]:
    expected = months_between(window_start, window_end - dt.timedelta(days=1)) + 1

    def check(conn: duckdb.DuckDBPyConnection) -> dg.AssetCheckResult:
        months, distinct, first, last = conn.execute(
            "SELECT count(*), count(DISTINCT month), min(month), max(month)"
            " FROM reports.monthly_sales"
        ).fetchall()[0]
        return WINDOW_MONTHS.result(
            KEY,
            passed=months == distinct == expected
            and first == window_start
            and last is not None
            and months_between(first, last) + 1 == expected,
            metadata={"months": int(months), "expected": expected},
        )

    return check


def _revenue_reconciles(
    window_start: dt.date, window_end: dt.date
) -> Callable[[duckdb.DuckDBPyConnection], dg.AssetCheckResult]:
    def check(conn: duckdb.DuckDBPyConnection) -> dg.AssetCheckResult:
        report, facts = conn.execute(
            """SELECT (SELECT coalesce(sum(revenue), 0) FROM reports.monthly_sales),
                      (SELECT coalesce(sum(revenue), 0) FROM core.fct_order_lines
                       WHERE ordered_at >= ?::TIMESTAMP AND ordered_at < ?::TIMESTAMP)""",
            [window_start, window_end],
        ).fetchall()[0]
        return REVENUE_RECONCILES.result(
            KEY,
            passed=report == facts,
            metadata={"report_revenue": float(report), "fact_revenue": float(facts)},
        )

    return check


@dg.asset(
    key=KEY,
    deps=[dg.AssetKey(["core", "fct_order_lines"])],
    **report_asset(),
    check_specs=report_check_specs(NAME, WINDOW_MONTHS, REVENUE_RECONCILES),
)
def monthly_sales(
    context: dg.AssetExecutionContext, duckdb: WarehouseResource, calendar: CalendarResource
) -> AssetEvents:
    """Sales by month over the past year: the 12 most recent complete months and the
    current month to date (flagged partial). Orders, units, revenue and average order
    value of valid orders (not cancelled or returned), and the change in revenue against
    the previous month (for the month to date, against the same days of the month
    before)."""
    window_start, window_end = calendar.report_window
    yield from materialize_report(
        context,
        duckdb,
        calendar,
        NAME,
        QUERY,
        [
            _window_months(window_start, window_end),
            _revenue_reconciles(window_start, window_end),
        ],
        monthly_sales_variables(
            window_start,
            window_end,
            calendar.first_month_start,
            calendar.month_to_date_compared_with,
        ),
    )
