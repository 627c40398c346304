"""How marketing leads turn into client companies that buy."""

import dagster as dg

from b2b_platform.lib.asset_step import AssetEvents
from b2b_platform.lib.report_step import (
    materialize_report,
    report_asset,
    report_check_specs,
    report_key,
)
from b2b_platform.lib.resources import CalendarResource
from b2b_platform.lib.sql import sql_file
from b2b_platform.lib.warehouse_resource import WarehouseResource

NAME = "lead_conversion"
KEY = report_key(NAME)


# Per campaign and channel.
#
# leads: leads after duplicates were merged. companies_matched: distinct client
# companies whose normalized CUIT a lead carried. companies_converted: matched
# companies with a valid order after their earliest lead of the campaign and channel.
# conversion_rate = converted / matched (NULL when nothing matched). revenue: what
# the converted companies bought in the report window.
QUERY = sql_file(__file__, NAME)


@dg.asset(
    key=KEY,
    deps=[dg.AssetKey(["core", "fct_leads"]), dg.AssetKey(["core", "fct_order_lines"])],
    **report_asset(),
    check_specs=report_check_specs(NAME),
)
def lead_conversion(
    context: dg.AssetExecutionContext, duckdb: WarehouseResource, calendar: CalendarResource
) -> AssetEvents:
    """Lead conversion per marketing campaign and channel: how many leads came in, how
    many client companies they matched (by CUIT), how many of those bought after the
    lead was captured, and what the converted companies bought in the past 12 months."""
    yield from materialize_report(context, duckdb, calendar, NAME, QUERY)
