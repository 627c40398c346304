"""Staged end customers: documents and birth dates checked, duplicates merged."""

from functools import partial
from typing import Any

import dagster as dg
import duckdb

from b2b_platform.defs.platform_db.staging_common import (
    SOURCE,
    TAGS,
    row_count,
    staging_check_specs,
    staging_key,
)
from b2b_platform.lib import checks
from b2b_platform.lib.asset_step import (
    WAREHOUSE_POOL,
    AssetEvents,
    CheckAudit,
    published,
)
from b2b_platform.lib.metadata import table_metadata
from b2b_platform.lib.resources import CalendarResource
from b2b_platform.lib.warehouse.resource import WarehouseResource
from b2b_platform.lib.warehouse.sql import bind_variables, sql_file
from b2b_platform.lib.warehouse.writes import Accounting, QuarantineSlice, TableSlice

# ---------------------------------------------------------------- customers


@dg.asset(
    key=staging_key("customers"),
    deps=[dg.AssetKey(["raw", "customers"])],
    kinds={"duckdb"},
    tags=TAGS,
    pool=WAREHOUSE_POOL,
    check_specs=staging_check_specs("customers", checks.UNIQUE_KEY, checks.ACCOUNTING_IDENTITY),
)
def staging_customers(
    context: dg.AssetExecutionContext, duckdb: WarehouseResource, calendar: CalendarResource
) -> AssetEvents:
    """End customers, one row per person.

    Document numbers are normalized (dots, spaces and dashes removed, leading zeros
    dropped) and validated per document type; an invalid document or a birth date in
    the future or more than 120 years ago is set to NULL and flagged. The same person
    registered twice (same type and normalized number) is merged into the lowest
    customer_id; `staging.customer_merges` maps merged ids to survivors.
    """
    audit = CheckAudit(context, _customer_checks)
    yield from published([audit], partial(_stage_customers, context, duckdb, calendar, audit))


def _stage_customers(
    context: dg.AssetExecutionContext,
    duckdb: WarehouseResource,
    calendar: CalendarResource,
    audit: CheckAudit,
) -> dict[str, Any]:
    with duckdb.step(context) as step:
        conn = step.conn
        bind_variables(conn, {"as_of": calendar.as_of_date})
        conn.execute(sql_file(__file__, "customers_checked"))
        result = step.commit(
            [
                TableSlice(
                    "staging.customers",
                    sql_file(__file__, "customers_staged"),
                ),
                TableSlice(
                    "staging.customer_merges",
                    sql_file(__file__, "customer_merges"),
                ),
            ],
            quarantine=[
                QuarantineSlice(
                    SOURCE,
                    "customers",
                    None,
                    sql_file(__file__, "customers_quarantined"),
                )
            ],
            accounting=[
                Accounting(
                    SOURCE,
                    "customers",
                    None,
                    row_count(conn, "raw.customers"),
                    "SELECT count(*) FROM staging.customers",
                )
            ],
            audit=audit,
        )
        return table_metadata(conn, "staging.customers", result)


def _customer_checks(conn: duckdb.DuckDBPyConnection) -> list[dg.AssetCheckResult]:
    key = staging_key("customers")
    return [
        checks.unique_key(conn, key, "staging.customers", ["customer_id"]),
        checks.accounting_holds(conn, key, SOURCE, ["customers"], None),
    ]
