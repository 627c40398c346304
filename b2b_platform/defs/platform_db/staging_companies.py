"""Staged client and supplier companies: CUITs checked, duplicates merged."""

from functools import partial
from typing import Any

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from b2b_platform.defs.platform_db.staging_common import (
    ACCOUNTED,
    SOURCE,
    TAGS,
    UNIQUE,
    row_count,
    staging_check_specs,
    staging_key,
)
from b2b_platform.lib import checks
from b2b_platform.lib.asset_step import (
    WAREHOUSE_POOL,
    AssetEvents,
    CheckAudit,
    asset_step,
    published,
)
from b2b_platform.lib.metadata import table_metadata
from b2b_platform.lib.warehouse import Accounting, QuarantineSlice, TableSlice

# ---------------------------------------------------------------- companies


@dg.asset(
    key=staging_key("companies"),
    deps=[dg.AssetKey(["raw", "companies"])],
    kinds={"duckdb"},
    tags=TAGS,
    pool=WAREHOUSE_POOL,
    check_specs=staging_check_specs(
        "companies",
        UNIQUE,
        ACCOUNTED,
        ("cuit_unique", "No two surviving companies share a normalized CUIT.", True),
    ),
)
def staging_companies(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> AssetEvents:
    """Client and supplier companies, one row per real company.

    CUITs are normalized to 11 digits and validated by check digit; an invalid CUIT
    is set to NULL and flagged. Companies registered twice under the same CUIT (typed
    with and without dashes) are merged into the lowest company_id;
    `staging.company_merges` maps each merged id to its survivor.
    """
    audit = CheckAudit(context, _company_checks)
    yield from published([audit], partial(_stage_companies, context, duckdb, audit))


def _stage_companies(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, audit: CheckAudit
) -> dict[str, Any]:
    with asset_step(context, duckdb) as step:
        conn = step.conn
        conn.execute(r"""
            CREATE OR REPLACE TEMP TABLE companies_checked AS
            WITH source AS (SELECT * EXCLUDE (_extracted_at) FROM raw.companies),
            typed AS (
                SELECT r.*,
                       regexp_replace(trim(r.cuit), '[\s\-./]', '', 'g') AS cuit_digits,
                       -- a person's CUIT (sole proprietor) is personal data: masked
                       json_merge_patch(to_json(r), json_object(
                           'cuit', mask_personal(r.cuit),
                           'legal_name', CASE WHEN is_personal_cuit(r.cuit)
                               THEN mask_text(r.legal_name) ELSE r.legal_name END))
                           AS raw_record
                FROM source r
            ), validated AS (
                SELECT *, cuit_is_valid(cuit_digits) AS cuit_ok FROM typed
            )
            SELECT *,
                   CASE WHEN cuit_ok THEN min(company_id) OVER (PARTITION BY cuit_digits)
                        ELSE company_id END AS surviving_company_id
            FROM validated
        """)
        result = step.commit(
            [
                TableSlice(
                    "staging.companies",
                    r"""
                    SELECT company_id,
                           CASE WHEN cuit_ok THEN cuit_digits END AS cuit,
                           CASE WHEN cuit_ok THEN substr(cuit_digits, 1, 2) || '-'
                                || substr(cuit_digits, 3, 8) || '-' || substr(cuit_digits, 11, 1)
                           END AS cuit_formatted,
                           trim(legal_name) AS legal_name,
                           nullif(trim(industry), '') AS industry,
                           upper(trim(country_code)) AS country_code,
                           nullif(trim(province), '') AS province,
                           nullif(trim(city), '') AS city,
                           TRY_CAST(created_at AS TIMESTAMP) AS created_at,
                           TRY_CAST(updated_at AS TIMESTAMP) AS updated_at,
                           NOT cuit_ok AS cuit_flagged
                    FROM companies_checked
                    WHERE surviving_company_id = company_id
                """,
                ),
                TableSlice(
                    "staging.company_merges",
                    """
                    SELECT company_id AS merged_company_id, surviving_company_id
                    FROM companies_checked WHERE surviving_company_id <> company_id
                """,
                ),
            ],
            quarantine=[
                QuarantineSlice(
                    SOURCE,
                    "companies",
                    None,
                    r"""
                    SELECT company_id AS record_key, 'invalid_cuit' AS reason_code,
                           'flagged' AS action,
                           'CUIT ' || coalesce('''' || mask_personal(cuit) || '''', 'NULL')
                           || CASE WHEN regexp_full_match(cuit_digits, '[0-9]{11}')
                                   THEN ' has a wrong check digit' ELSE ' is not 11 digits' END
                           || '; CUIT set to NULL' AS detail,
                           raw_record
                    FROM companies_checked WHERE NOT cuit_ok
                    UNION ALL
                    SELECT company_id, 'duplicate_cuit', 'merged',
                           'same CUIT ' || mask_personal(cuit_digits) || ' as company ' || surviving_company_id
                           || '; merged into it', raw_record
                    FROM companies_checked WHERE surviving_company_id <> company_id
                """,
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
            check_name="cuit_unique",
        ),
    ]
