"""Staged reference tables of the platform: suppliers, products, prices and users."""

from typing import Any

import dagster as dg

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
from b2b_platform.lib.warehouse.resource import WarehouseResource
from b2b_platform.lib.warehouse.sql import qualified_name
from b2b_platform.lib.warehouse.writes import Accounting, TableSlice

# ---------------------------------------------------------------- reference tables

REFERENCE_TABLES: dict[str, tuple[str, list[str], str, str]] = {
    # name: (raw table, key, description, SELECT over raw row `r`)
    "products": (
        "products",
        ["product_id"],
        "The product catalogue, typed: SKU, name, category, brand and unit.",
        """SELECT product_id, trim(sku) AS sku, trim(name) AS name, trim(category) AS category,
                  nullif(trim(brand), '') AS brand, lower(trim(unit)) AS unit,
                  TRY_CAST(created_at AS TIMESTAMP) AS created_at,
                  TRY_CAST(updated_at AS TIMESTAMP) AS updated_at
           FROM raw.products r""",
    ),
    "suppliers": (
        "suppliers",
        ["supplier_id"],
        "Suppliers with their company (merged duplicates resolved to the surviving company).",
        """SELECT r.supplier_id, coalesce(m.surviving_company_id, r.company_id) AS company_id,
                  r.active::BOOLEAN AS active,
                  TRY_CAST(r.created_at AS TIMESTAMP) AS created_at,
                  TRY_CAST(r.updated_at AS TIMESTAMP) AS updated_at
           FROM raw.suppliers r
           LEFT JOIN staging.company_merges m ON m.merged_company_id = r.company_id""",
    ),
    "prices": (
        "supplier_products",
        ["supplier_id", "product_id", "valid_from"],
        "Each supplier's price for a product and the dates it is valid (valid_to NULL = current).",
        """SELECT supplier_id, product_id, TRY_CAST(price AS DECIMAL(14, 2)) AS price,
                  upper(trim(currency)) AS currency,
                  TRY_CAST(valid_from AS DATE) AS valid_from, TRY_CAST(valid_to AS DATE) AS valid_to
           FROM raw.supplier_products r""",
    ),
    "platform_users": (
        "platform_users",
        ["user_id"],
        "People who log in to the platform, with their (surviving) company and role.",
        """SELECT r.user_id, coalesce(m.surviving_company_id, r.company_id) AS company_id,
                  trim(r.username) AS username, lower(trim(r.email)) AS email,
                  lower(trim(r.role)) AS role,
                  TRY_CAST(r.created_at AS TIMESTAMP) AS created_at,
                  TRY_CAST(r.updated_at AS TIMESTAMP) AS updated_at
           FROM raw.platform_users r
           LEFT JOIN staging.company_merges m ON m.merged_company_id = r.company_id""",
    ),
}


def _reference_asset(
    name: str, raw_table: str, key_cols: list[str], text: str, query: str
) -> dg.AssetsDefinition:
    deps = [dg.AssetKey(["raw", raw_table])]
    if "company_merges" in query:
        deps.append(staging_key("companies"))

    @dg.asset(
        key=staging_key(name),
        deps=deps,
        kinds={"duckdb"},
        tags=TAGS,
        pool=WAREHOUSE_POOL,
        description=text,
        check_specs=staging_check_specs(name, checks.UNIQUE_KEY, checks.ACCOUNTING_IDENTITY),
    )
    def _reference(context: dg.AssetExecutionContext, duckdb: WarehouseResource) -> AssetEvents:
        table = f"staging.{name}"
        key = staging_key(name)
        audit = CheckAudit(
            context,
            lambda conn: [
                checks.unique_key(conn, key, table, key_cols),
                checks.accounting_holds(conn, key, SOURCE, [name], None),
            ],
        )
        yield from published(
            [audit], lambda: _stage_reference(context, duckdb, name, raw_table, table, query, audit)
        )

    return _reference


def _stage_reference(
    context: dg.AssetExecutionContext,
    duckdb: WarehouseResource,
    name: str,
    raw_table: str,
    table: str,
    query: str,
    audit: CheckAudit,
) -> dict[str, Any]:
    with duckdb.step(context) as step:
        conn = step.conn
        result = step.commit(
            [TableSlice(table, query)],
            accounting=[
                Accounting(
                    SOURCE,
                    name,
                    None,
                    row_count(conn, f"raw.{raw_table}"),
                    f"SELECT count(*) FROM {qualified_name(table)}",
                )
            ],
            audit=audit,
        )
        return table_metadata(conn, table, result)


reference_assets = [_reference_asset(name, *spec) for name, spec in REFERENCE_TABLES.items()]
