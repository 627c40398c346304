"""Order facts: one row per valid order line, by month of the order."""

import dagster as dg
import duckdb

from b2b_platform.defs.core.common import (
    CORE_NO_PII,
    core_key,
    monthly_core_asset,
    staging_key,
)
from b2b_platform.lib import checks
from b2b_platform.lib.asset_step import AssetEvents, materialize_months
from b2b_platform.lib.checks import Check
from b2b_platform.lib.warehouse.resource import WarehouseResource

KEY = core_key("fct_order_lines")
TABLE = "core.fct_order_lines"
# the report contract: a valid order passed validation (it is in staging) and was not undone
EXCLUDED_STATUSES = ("cancelled", "returned")


def _month_query(partition_key: str) -> str:
    return f"""
        SELECT l.order_id, l.line_number, o.order_number, l.ordered_at,
               CAST(l.ordered_at AS DATE) AS order_date, o.status,
               o.company_id, o.customer_id, o.user_id, l.product_id, l.supplier_id,
               l.quantity, l.unit_price, l.discount_pct, l.revenue, o.currency,
               l.partition_key
        FROM staging.order_lines l
        JOIN staging.orders o ON o.order_id = l.order_id AND o.partition_key = l.partition_key
        WHERE l.partition_key = getvariable('partition_key') AND o.status NOT IN {EXCLUDED_STATUSES}
    """


UNIQUE_LINE = checks.UNIQUE_KEY.described("One row per order and line number.")
COMPANY_KNOWN = Check("company_known", "Every line's company is in dim_company.")
CUSTOMER_KNOWN = Check("customer_known", "Every line's customer is in dim_customer.")
PRODUCT_KNOWN = Check("product_known", "Every line's product is in dim_product.")
CHECKS = (UNIQUE_LINE, COMPANY_KNOWN, CUSTOMER_KNOWN, PRODUCT_KNOWN, CORE_NO_PII)


def _month_checks(conn: duckdb.DuckDBPyConnection, partition_key: str) -> list[dg.AssetCheckResult]:
    month = {"where": "partition_key = ?", "params": [partition_key]}
    return [
        checks.unique_key(conn, KEY, TABLE, ["order_id", "line_number"], **month,
                          check=UNIQUE_LINE),
        checks.references_resolve(conn, KEY, COMPANY_KNOWN, TABLE, "company_id",
                                  "core.dim_company", "company_id", **month),
        checks.references_resolve(conn, KEY, CUSTOMER_KNOWN, TABLE, "customer_id",
                                  "core.dim_customer", "customer_id", **month),
        checks.references_resolve(conn, KEY, PRODUCT_KNOWN, TABLE, "product_id",
                                  "core.dim_product", "product_id", **month),
        checks.no_pii_columns(conn, KEY, TABLE, **month, check=CORE_NO_PII),
    ]  # fmt: skip


# the dimension each reference check resolves in: the checks read them, the facts are
# built from staging alone, so a dimension that changes (every customer's age band moves
# with the as-of day) does not make a year of facts stale
CHECK_READS = {
    COMPANY_KNOWN: [core_key("dim_company")],
    CUSTOMER_KNOWN: [core_key("dim_customer")],
    PRODUCT_KNOWN: [core_key("dim_product")],
}


def build_fct_order_lines(months: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """core/fct_order_lines over the code location's months (see partitions)."""
    return dg.asset(
        key=KEY,
        deps=[staging_key("orders"), staging_key("order_lines")],
        partitions_def=months,
        **monthly_core_asset(),
        check_specs=[check.spec(KEY, CHECK_READS.get(check, [])) for check in CHECKS],
    )(fct_order_lines)


def fct_order_lines(context: dg.AssetExecutionContext, duckdb: WarehouseResource) -> AssetEvents:
    """Sales: one row per line of a valid order (passed validation, not cancelled or
    returned), by month of the order.

    revenue = quantity × unit price × (1 − discount %/100), rounded to cents. Orders of a
    merged duplicate company count for the surviving company. `user_id` is empty for
    orders placed through the API.
    """
    yield from materialize_months(context, duckdb, TABLE, _month_query, _month_checks)
