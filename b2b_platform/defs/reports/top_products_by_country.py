"""The most popular products in the countries most users log in from."""

import datetime as dt

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from b2b_platform.lib.asset_step import AssetEvents
from b2b_platform.lib.report_step import (
    materialize_report,
    report_asset,
    report_check_specs,
    report_key,
)
from b2b_platform.lib.resources import CalendarResource

NAME = "top_products_by_country"
KEY = report_key(NAME)
TOP_COUNTRIES = 3
TOP_PRODUCTS = 5


def top_products_by_country_query(window_start: dt.date, window_end: dt.date) -> str:
    """Countries by distinct users with a successful login from them in the
    window (unknown countries do not rank), then each country's products by units in
    valid orders in the window placed by those users. A user who logged in from two
    countries counts in both. A ranked country whose users bought nothing still shows,
    with empty product columns."""
    in_window = (
        "{column} >= TIMESTAMP '" + str(window_start) + "'"
        " AND {column} < TIMESTAMP '" + str(window_end) + "'"
    )
    return f"""
        WITH login_users AS (
            SELECT DISTINCT country_code, user_id
            FROM core.fct_logins
            WHERE country_code IS NOT NULL AND {in_window.format(column="requested_at")}
        ),
        countries AS (
            SELECT country_code, count(*) AS login_users,
                   row_number() OVER (ORDER BY count(*) DESC, country_code) AS country_rank
            FROM login_users GROUP BY country_code
            QUALIFY country_rank <= {TOP_COUNTRIES}
        ),
        sales AS (
            SELECT u.country_code, f.product_id, sum(f.quantity) AS units,
                   count(DISTINCT f.order_id) AS orders, sum(f.revenue) AS revenue
            FROM countries c
            JOIN login_users u USING (country_code)
            JOIN core.fct_order_lines f ON f.user_id = u.user_id
            WHERE {in_window.format(column="f.ordered_at")}
            GROUP BY u.country_code, f.product_id
        ),
        top_sales AS (
            SELECT * FROM sales
            QUALIFY row_number() OVER (PARTITION BY country_code
                                       ORDER BY units DESC, revenue DESC, product_id)
                    <= {TOP_PRODUCTS}
        )
        SELECT c.country_rank, c.country_code,
               coalesce(n.country_name, c.country_code) AS country_name, c.login_users,
               CASE WHEN s.product_id IS NOT NULL THEN
                   row_number() OVER (PARTITION BY c.country_code
                                      ORDER BY s.units DESC, s.revenue DESC, s.product_id)
               END AS product_rank,
               s.product_id, p.sku, p.product_name, s.units::BIGINT AS units,
               s.orders, s.revenue::DECIMAL(18, 2) AS revenue
        FROM countries c
        LEFT JOIN top_sales s USING (country_code)
        LEFT JOIN core.dim_product p USING (product_id)
        LEFT JOIN core.dim_country n ON n.country_code = c.country_code
    """


def _shape(conn: duckdb.DuckDBPyConnection) -> dg.AssetCheckResult:
    countries, most_products, products_named = conn.execute(
        """SELECT count(DISTINCT country_code),
                  coalesce(max(n), 0),
                  coalesce(bool_and(product_id IS NULL OR sku IS NOT NULL), true)
           FROM (SELECT *, count(product_id) OVER (PARTITION BY country_code) AS n
                 FROM reports.top_products_by_country)"""
    ).fetchall()[0]
    return dg.AssetCheckResult(
        asset_key=KEY,
        check_name="top_three_by_five",
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
    check_specs=report_check_specs(
        NAME,
        {
            "top_three_by_five": "At most 3 countries and 5 products per country, every"
            " product found in the catalogue."
        },
    ),
)
def top_products_by_country(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, calendar: CalendarResource
) -> AssetEvents:
    """The five best-selling products (by units) in each of the three countries from
    which the most platform users logged in over the past 12 months, counting the orders
    those users placed."""
    yield from materialize_report(
        context,
        duckdb,
        NAME,
        top_products_by_country_query(*calendar.report_window),
        [_shape],
    )
