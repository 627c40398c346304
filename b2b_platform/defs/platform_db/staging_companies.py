"""Staged client and supplier companies: CUITs checked, duplicates merged."""

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
from b2b_platform.lib.checks import Check
from b2b_platform.lib.metadata import table_metadata
from b2b_platform.lib.warehouse.resource import WarehouseResource
from b2b_platform.lib.warehouse.sql import sql_file
from b2b_platform.lib.warehouse.writes import Accounting, QuarantineSlice, TableSlice

# ---------------------------------------------------------------- companies


CUIT_UNIQUE = Check("cuit_unique", "No two surviving companies share a normalized CUIT.")


@dg.asset(
    key=staging_key("companies"),
    deps=[dg.AssetKey(["raw", "companies"])],
    kinds={"duckdb"},
    tags=TAGS,
    pool=WAREHOUSE_POOL,
    check_specs=staging_check_specs(
        "companies",
        checks.UNIQUE_KEY,
        checks.ACCOUNTING_IDENTITY,
        CUIT_UNIQUE,
    ),
)
def staging_companies(context: dg.AssetExecutionContext, duckdb: WarehouseResource) -> AssetEvents:
    """Client and supplier companies, one row per real company.

    CUITs are normalized to 11 digits and validated by check digit; an invalid CUIT
    is set to NULL and flagged. Companies registered twice under the same CUIT (typed
    with and without dashes) are merged into the lowest company_id;
    `staging.company_merges` maps each merged id to its survivor.
    """
    audit = CheckAudit(context, _company_checks)
    yield from published([audit], partial(_stage_companies, context, duckdb, audit))


def _stage_companies(
    context: dg.AssetExecutionContext, duckdb: WarehouseResource, audit: CheckAudit
) -> dict[str, Any]:
    with duckdb.step(context) as step:
        conn = step.conn
        conn.execute(sql_file(__file__, "companies_checked"))
        result = step.commit(
            [
                TableSlice(
                    "staging.companies",
                    sql_file(__file__, "companies_staged"),
                ),
                TableSlice(
                    "staging.company_merges",
                    sql_file(__file__, "company_merges"),
                ),
            ],
            quarantine=[
                QuarantineSlice(
                    SOURCE,
                    "companies",
                    None,
                    sql_file(__file__, "companies_quarantined"),
                )
            ],
            accounting=[
                Accounting(
                    SOURCE,
                    "companies",
                    None,
                    row_count(conn, "raw.companies"),
                    "SELECT count(*) FROM staging.companies",
                )
            ],
            audit=audit,
        )
        return table_metadata(conn, "staging.companies", result)


def _company_checks(conn: duckdb.DuckDBPyConnection) -> list[dg.AssetCheckResult]:
    key = staging_key("companies")
    return [
        checks.unique_key(conn, key, "staging.companies", ["company_id"]),
        checks.accounting_holds(conn, key, SOURCE, ["companies"], None),
        checks.unique_key(
            conn,
            key,
            "staging.companies",
            ["cuit"],
            where="cuit IS NOT NULL",
            check=CUIT_UNIQUE,
        ),
    ]
