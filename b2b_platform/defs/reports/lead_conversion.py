"""How marketing leads turn into client companies that buy."""

import datetime as dt
from collections.abc import Callable

import dagster as dg
import duckdb

from b2b_platform.lib.asset_step import AssetEvents
from b2b_platform.lib.checks import Check
from b2b_platform.lib.report_step import (
    materialize_report,
    report_asset,
    report_check_specs,
    report_key,
)
from b2b_platform.lib.resources import CalendarResource
from b2b_platform.lib.warehouse.resource import WarehouseResource
from b2b_platform.lib.warehouse.sql import sql_file

NAME = "lead_conversion"
KEY = report_key(NAME)


# Per campaign and channel, of the leads captured in the report window:
#
# leads: leads after duplicates were merged. companies_matched: distinct client
# companies whose normalized CUIT a lead carried; companies_new had no valid order
# before the campaign's first lead of them was captured, companies_existing had one.
# companies_converted (= converted_new + converted_existing): matched companies with a
# valid order within the attribution window (B2B_ATTRIBUTION_DAYS, default 90, cut at
# the end of the report window) after that capture. new_conversion_rate =
# converted_new / companies_new (NULL with no new company). attributed_revenue: the
# valid orders of the matched companies placed in their attribution windows, each
# order credited once, to the campaign of the earliest capture whose window holds it
# (first touch): over all campaigns it never exceeds the sales of the window.
QUERY = sql_file(__file__, NAME)

ATTRIBUTED_WITHIN_SALES = Check(
    "attributed_within_sales",
    "Attributed revenue over all campaigns does not exceed the sales of the window.",
    blocking=False,
)


def _attributed_within_sales(
    window_start: dt.date, window_end: dt.date
) -> Callable[[duckdb.DuckDBPyConnection], dg.AssetCheckResult]:
    def check(conn: duckdb.DuckDBPyConnection) -> dg.AssetCheckResult:
        attributed, sales = conn.execute(
            """SELECT (SELECT coalesce(sum(attributed_revenue), 0) FROM reports.lead_conversion),
                      (SELECT coalesce(sum(revenue), 0) FROM core.fct_order_lines
                       WHERE ordered_at >= ?::TIMESTAMP AND ordered_at < ?::TIMESTAMP)""",
            [window_start, window_end],
        ).fetchall()[0]
        return ATTRIBUTED_WITHIN_SALES.result(
            KEY,
            passed=attributed <= sales,
            metadata={"attributed_revenue": float(attributed), "sales": float(sales)},
        )

    return check


@dg.asset(
    key=KEY,
    deps=[dg.AssetKey(["core", "fct_leads"]), dg.AssetKey(["core", "fct_order_lines"])],
    **report_asset(),
    check_specs=report_check_specs(NAME, ATTRIBUTED_WITHIN_SALES),
)
def lead_conversion(
    context: dg.AssetExecutionContext, duckdb: WarehouseResource, calendar: CalendarResource
) -> AssetEvents:
    """Lead conversion per marketing campaign and channel, over the past year: how many
    leads came in, how many client companies they matched (by CUIT), new or existing
    clients, how many of them ordered within the attribution window after the lead was
    captured, and the revenue of those orders, each credited once, to the first
    campaign that reached the company."""
    yield from materialize_report(
        context, duckdb, calendar, NAME, QUERY,
        [_attributed_within_sales(*calendar.report_window)],
        {"attribution_days": calendar.attribution_days},
    )  # fmt: skip
