"""The most popular products in the countries most users log in from."""

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

NAME = "top_products_by_country"
KEY = report_key(NAME)
TOP_COUNTRIES = 3
TOP_PRODUCTS = 5


# Countries by distinct users with a successful login from them in the
# window (unknown countries do not rank), then each country's products by units in
# valid orders in the window placed by those users. A user who logged in from two
# countries counts in both. A ranked country whose users bought nothing still shows,
# with empty product columns.
QUERY = sql_file(__file__, NAME)


TOP_THREE_BY_FIVE = Check(
    "top_three_by_five",
    "At most 3 countries and 5 products per country, every product found in the catalogue.",
    blocking=False,
)


def _shape(conn: duckdb.DuckDBPyConnection) -> dg.AssetCheckResult:
    countries, most_products, products_named = conn.execute(
        """SELECT count(DISTINCT country_code),
                  coalesce(max(n), 0),
                  coalesce(bool_and(product_id IS NULL OR sku IS NOT NULL), true)
           FROM (SELECT *, count(product_id) OVER (PARTITION BY country_code) AS n
                 FROM reports.top_products_by_country)"""
    ).fetchall()[0]
    return TOP_THREE_BY_FIVE.result(
        KEY,
        passed=countries <= TOP_COUNTRIES and most_products <= TOP_PRODUCTS and products_named,
        metadata={"countries": int(countries), "most_products_in_a_country": int(most_products)},
    )


@dg.asset(
    key=KEY,
    deps=[
        dg.AssetKey(["core", "fct_logins"]),
        dg.AssetKey(["core", "fct_order_lines"]),
        dg.AssetKey(["core", "dim_product"]),
        dg.AssetKey(["core", "dim_country"]),
    ],
    **report_asset(),
    check_specs=report_check_specs(NAME, TOP_THREE_BY_FIVE),
)
def top_products_by_country(
    context: dg.AssetExecutionContext, duckdb: WarehouseResource, calendar: CalendarResource
) -> AssetEvents:
    """The five best-selling products (by units) in each of the three countries from
    which the most platform users logged in over the past 12 months, counting the orders
    those users placed."""
    yield from materialize_report(
        context,
        duckdb,
        calendar,
        NAME,
        QUERY,
        [_shape],
        {
            "top_countries": TOP_COUNTRIES,
            "top_products": TOP_PRODUCTS,
        },
    )
