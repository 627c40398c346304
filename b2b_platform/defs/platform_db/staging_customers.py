"""Staged end customers: documents and birth dates checked, duplicates merged."""

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
from b2b_platform.lib.resources import CalendarResource
from b2b_platform.lib.sql import bind_variables
from b2b_platform.lib.warehouse import Accounting, QuarantineSlice, TableSlice

# ---------------------------------------------------------------- customers


@dg.asset(
    key=staging_key("customers"),
    deps=[dg.AssetKey(["raw", "customers"])],
    kinds={"duckdb"},
    tags=TAGS,
    pool=WAREHOUSE_POOL,
    check_specs=staging_check_specs("customers", UNIQUE, ACCOUNTED),
)
def staging_customers(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, calendar: CalendarResource
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
    duckdb: DuckDBResource,
    calendar: CalendarResource,
    audit: CheckAudit,
) -> dict[str, Any]:
    with asset_step(context, duckdb) as step:
        conn = step.conn
        bind_variables(conn, {"as_of": calendar.as_of_date})
        conn.execute(r"""
            CREATE OR REPLACE TEMP TABLE customers_checked AS
            WITH source AS (SELECT * EXCLUDE (_extracted_at) FROM raw.customers),
            typed AS (
                SELECT r.*,
                       upper(trim(document_type)) AS doc_type,
                       upper(regexp_replace(trim(document_number), '[\s.\-]', '', 'g')) AS doc_clean,
                       TRY_CAST(date_of_birth AS DATE) AS birth,
                       -- the quarantine keeps what an operator needs, not who the person is
                       json_merge_patch(to_json(r), json_object(
                           'document_number', mask_text(r.document_number),
                           'full_name', mask_text(r.full_name),
                           'date_of_birth', mask_date(r.date_of_birth),
                           'email', mask_text(r.email),
                           'phone', mask_text(r.phone))) AS raw_record
                FROM source r
            ), normalized AS (
                SELECT *,
                       CASE WHEN doc_type IN ('DNI', 'LC', 'LE', 'CI')
                            THEN nullif(ltrim(doc_clean, '0'), '') ELSE doc_clean END AS doc_norm
                FROM typed
            ), validated AS (
                SELECT *,
                       coalesce(CASE
                           WHEN doc_type IN ('DNI', 'LC', 'LE') THEN regexp_full_match(doc_norm, '[0-9]{6,8}')
                           WHEN doc_type = 'CI' THEN regexp_full_match(doc_norm, '[0-9]{5,9}')
                           WHEN doc_type = 'PASAPORTE' THEN regexp_full_match(doc_norm, '[A-Z0-9]{6,10}')
                           ELSE false END, false) AS doc_ok,
                       coalesce(birth > getvariable('as_of')
                                OR birth < getvariable('as_of') - INTERVAL 120 YEAR, false) AS birth_implausible
                FROM normalized
            )
            SELECT *,
                   CASE WHEN doc_ok THEN min(customer_id) OVER (PARTITION BY doc_type, doc_norm)
                        ELSE customer_id END AS surviving_customer_id
            FROM validated
        """)
        result = step.commit(
            [
                TableSlice(
                    "staging.customers",
                    """
                    SELECT customer_id, doc_type AS document_type,
                           CASE WHEN doc_ok THEN doc_norm END AS document_number,
                           trim(full_name) AS full_name,
                           CASE WHEN NOT birth_implausible THEN birth END AS date_of_birth,
                           nullif(lower(trim(email)), '') AS email,
                           nullif(trim(phone), '') AS phone,
                           nullif(trim(province), '') AS province,
                           nullif(trim(city), '') AS city,
                           TRY_CAST(created_at AS TIMESTAMP) AS created_at,
                           TRY_CAST(updated_at AS TIMESTAMP) AS updated_at,
                           NOT doc_ok AS document_flagged,
                           birth_implausible AS birth_date_flagged
                    FROM customers_checked WHERE surviving_customer_id = customer_id
                """,
                ),
                TableSlice(
                    "staging.customer_merges",
                    """
                    SELECT customer_id AS merged_customer_id, surviving_customer_id
                    FROM customers_checked WHERE surviving_customer_id <> customer_id
                """,
                ),
            ],
            quarantine=[
                QuarantineSlice(
                    SOURCE,
                    "customers",
                    None,
                    """
                    SELECT customer_id AS record_key, 'invalid_document' AS reason_code,
                           'flagged' AS action,
                           doc_type || ' ''' || mask_text(document_number) || ''' is not a valid '
                           || doc_type || ' number; document set to NULL' AS detail, raw_record
                    FROM customers_checked WHERE NOT doc_ok AND surviving_customer_id = customer_id
                    UNION ALL
                    SELECT customer_id, 'implausible_birth_date', 'flagged',
                           'born ' || mask_date(birth) || ', in the future or over 120 years ago;'
                           || ' birth date set to NULL', raw_record
                    FROM customers_checked
                    WHERE birth_implausible AND surviving_customer_id = customer_id
                    UNION ALL
                    SELECT customer_id, 'duplicate_customer', 'merged',
                           'same ' || doc_type || ' ' || mask_text(doc_norm) || ' as customer '
                           || surviving_customer_id || '; merged into it', raw_record
                    FROM customers_checked WHERE surviving_customer_id <> customer_id
                """,
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
