"""Conformed dimensions: companies, end customers (pseudonymized), products, devices, dates."""

import dagster as dg
import pyarrow as pa
import pycountry

from b2b_common.dates import add_months
from b2b_platform.defs.core.common import (
    core_asset,
    core_checks,
    core_key,
    core_table_checks,
    staging_key,
)
from b2b_platform.lib.asset_step import AssetEvents, materialize_table
from b2b_platform.lib.resources import CalendarResource, Pseudonymizer
from b2b_platform.lib.warehouse.resource import WarehouseResource
from b2b_platform.lib.warehouse.sql import sql_file


@dg.asset(
    key=core_key("dim_company"),
    deps=[staging_key("companies"), staging_key("suppliers")],
    **core_asset(),
    check_specs=core_checks("dim_company"),
)
def dim_company(context: dg.AssetExecutionContext, duckdb: WarehouseResource) -> AssetEvents:
    """Client companies, one row per company after duplicate CUITs were merged.

    A merged duplicate's orders count for the company kept here; `merged_duplicates`
    says how many records were folded into it. A company whose CUIT failed validation
    is kept with the CUIT empty and `cuit_flagged` set.
    """
    table = "core.dim_company"
    yield from materialize_table(
        context,
        duckdb,
        table,
        sql_file(__file__, "dim_company"),
        table_checks=core_table_checks("dim_company", ["company_id"]),
    )


AGE_BANDS = """
    CASE
        WHEN date_of_birth IS NULL THEN 'unknown'
        WHEN age < 18 THEN 'under 18'
        WHEN age < 25 THEN '18-24'
        WHEN age < 35 THEN '25-34'
        WHEN age < 45 THEN '35-44'
        WHEN age < 55 THEN '45-54'
        WHEN age < 65 THEN '55-64'
        ELSE '65+'
    END
"""
# the document's keyed pseudonym (the key is registered on the step's connection)
DOCUMENT_HASH = Pseudonymizer.hmac_sql("document_type", "document_number")


@dg.asset(
    key=core_key("dim_customer"),
    deps=[staging_key("customers")],
    **core_asset(tags={"pii": "pseudonymized"}),
    check_specs=core_checks("dim_customer"),
)
def dim_customer(
    context: dg.AssetExecutionContext,
    duckdb: WarehouseResource,
    calendar: CalendarResource,
    pseudonymizer: Pseudonymizer,
) -> AssetEvents:
    """End customers the companies ship to, pseudonymized for analysis.

    No document number, birth date, name, email or phone: the document becomes a keyed
    HMAC-SHA256 pseudonym (stable across loads while the key stays the same, so the same
    person can still be counted once) and the birth date an age band at the as-of date.
    """
    table = "core.dim_customer"
    yield from materialize_table(
        context,
        duckdb,
        table,
        f"""
        SELECT customer_id, document_type, {DOCUMENT_HASH} AS document_hash,
               {AGE_BANDS} AS age_band, province, city, created_at,
               document_flagged, birth_date_flagged
        FROM (SELECT *, date_sub('year', date_of_birth, getvariable('as_of')) AS age
              FROM staging.customers)
        """,
        # the HMAC's padded keys, bound as data rather than written into the SQL; the
        # warehouse's own key only, so its pseudonyms never change with who runs it
        register=pseudonymizer.key_relations(duckdb),
        table_checks=core_table_checks("dim_customer", ["customer_id"]),
        variables={"as_of": calendar.as_of_date},
    )


@dg.asset(
    key=core_key("dim_product"),
    deps=[staging_key("products"), staging_key("prices")],
    **core_asset(),
    check_specs=core_checks("dim_product"),
)
def dim_product(
    context: dg.AssetExecutionContext, duckdb: WarehouseResource, calendar: CalendarResource
) -> AssetEvents:
    """The product catalogue with how many suppliers offer each product and the lowest
    current price among them."""
    table = "core.dim_product"
    yield from materialize_table(
        context,
        duckdb,
        table,
        sql_file(__file__, "dim_product"),
        table_checks=core_table_checks("dim_product", ["product_id"]),
        variables={"as_of": calendar.as_of_date},
    )


@dg.asset(
    key=core_key("dim_device"),
    deps=[dg.AssetKey(["staging", "web_requests"])],
    **core_asset(),
    check_specs=core_checks("dim_device"),
)
def dim_device(context: dg.AssetExecutionContext, duckdb: WarehouseResource) -> AssetEvents:
    """Devices, one row per distinct user-agent string seen in the web logs.

    `device_label` is what reports show: the device family when the parser knows it,
    otherwise `<OS> desktop` for a PC and `Unknown device` else. Requests without a
    user agent use the row with key `unknown`.
    """
    table = "core.dim_device"
    yield from materialize_table(
        context,
        duckdb,
        table,
        sql_file(__file__, "dim_device"),
        table_checks=core_table_checks("dim_device", ["device_key"]),
    )


@dg.asset(
    key=core_key("dim_date"),
    **core_asset(),
    check_specs=core_checks("dim_date"),
)
def dim_date(
    context: dg.AssetExecutionContext, duckdb: WarehouseResource, calendar: CalendarResource
) -> AssetEvents:
    """The calendar, one row per day from the first loaded month (or the start of the
    report window, if earlier) to the end of the as-of month."""
    table = "core.dim_date"
    window_start, _ = calendar.report_window
    yield from materialize_table(
        context,
        duckdb,
        table,
        sql_file(__file__, "dim_date"),
        table_checks=core_table_checks("dim_date", ["date"]),
        variables={
            "as_of": calendar.as_of_date,
            "window_start": window_start,
            "first_day": min(calendar.first_month_start, window_start),
            "end_day": add_months(calendar.as_of_date, 1),
        },
    )


@dg.asset(
    key=core_key("dim_country"),
    **core_asset(kinds={"duckdb", "python"}),
    check_specs=core_checks("dim_country"),
)
def dim_country(context: dg.AssetExecutionContext, duckdb: WarehouseResource) -> AssetEvents:
    """ISO 3166 countries with the name reports show (pycountry's common name if any)."""
    table = "core.dim_country"
    countries = pa.table(
        {
            "country_code": [c.alpha_2 for c in pycountry.countries],
            "country_name": [getattr(c, "common_name", c.name) for c in pycountry.countries],
            "alpha_3": [c.alpha_3 for c in pycountry.countries],
        }
    )
    yield from materialize_table(
        context,
        duckdb,
        table,
        "SELECT * FROM iso_countries",
        register={"iso_countries": countries},
        table_checks=core_table_checks("dim_country", ["country_code"]),
    )
