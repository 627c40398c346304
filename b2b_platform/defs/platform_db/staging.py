"""Staging for the platform database: typed, normalized, validated, deduplicated.

The rules (README, Quality rules): master data that facts still need is kept with the bad field
set to NULL (`flagged`); duplicates fold into the lowest id (`merged`) and the
`*_merges` tables let facts follow them; unusable records are `rejected`. Every
finding lands in quarantine.rejected_records with the original record as JSON.
"""

from functools import partial
from typing import Any

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from b2b_platform.defs.partitions import MONTHLY
from b2b_platform.lib import checks
from b2b_platform.lib.asset_step import (
    SINGLE_RUN,
    WAREHOUSE_POOL,
    AssetEvents,
    CheckAudit,
    asset_step,
    blocked,
    month_metadata,
    months_markdown,
    published,
)
from b2b_platform.lib.metadata import column_schemas, table_metadata
from b2b_platform.lib.resources import CalendarResource, QualityThresholds
from b2b_platform.lib.sql import bind_variables, sql_file
from b2b_platform.lib.warehouse import Accounting, AuditFailed, QuarantineSlice, TableSlice, scalar

SOURCE = "platform_db"
TAGS = {"source": SOURCE}
VALID_STATUSES = ("placed", "paid", "shipped", "delivered", "cancelled", "returned")


def _key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["staging", name])


def _specs(name: str, *checks_: tuple[str, str, bool]) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(check, asset=_key(name), description=text, blocking=blocking)
        for check, text, blocking in checks_
    ]


UNIQUE = ("unique_key", "The business key is unique and never null.", True)
ACCOUNTED = (
    "accounting_identity",
    "Records read = loaded + rejected + merged (nothing vanishes).",
    True,
)


def _count(conn: object, table: str) -> int:
    return int(scalar(conn, f"SELECT count(*) FROM {table}"))


# ---------------------------------------------------------------- companies


@dg.asset(
    key=_key("companies"),
    deps=[dg.AssetKey(["raw", "companies"])],
    kinds={"duckdb"},
    tags=TAGS,
    pool=WAREHOUSE_POOL,
    check_specs=_specs(
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
                    _count(conn, "raw.companies"),
                    "SELECT count(*) FROM staging.companies",
                )
            ],
            audit=audit,
        )
        return table_metadata(conn, "staging.companies", result)


def _company_checks(conn: duckdb.DuckDBPyConnection) -> list[dg.AssetCheckResult]:
    key = _key("companies")
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


# ---------------------------------------------------------------- customers


@dg.asset(
    key=_key("customers"),
    deps=[dg.AssetKey(["raw", "customers"])],
    kinds={"duckdb"},
    tags=TAGS,
    pool=WAREHOUSE_POOL,
    check_specs=_specs("customers", UNIQUE, ACCOUNTED),
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
                    _count(conn, "raw.customers"),
                    "SELECT count(*) FROM staging.customers",
                )
            ],
            audit=audit,
        )
        return table_metadata(conn, "staging.customers", result)


def _customer_checks(conn: duckdb.DuckDBPyConnection) -> list[dg.AssetCheckResult]:
    key = _key("customers")
    return [
        checks.unique_key(conn, key, "staging.customers", ["customer_id"]),
        checks.accounting_holds(conn, key, SOURCE, ["customers"], None),
    ]


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
        deps.append(_key("companies"))

    @dg.asset(
        key=_key(name),
        deps=deps,
        kinds={"duckdb"},
        tags=TAGS,
        pool=WAREHOUSE_POOL,
        description=text,
        check_specs=_specs(name, UNIQUE, ACCOUNTED),
    )
    def _reference(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> AssetEvents:
        table = f"staging.{name}"
        key = _key(name)
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
    duckdb: DuckDBResource,
    name: str,
    raw_table: str,
    table: str,
    query: str,
    audit: CheckAudit,
) -> dict[str, Any]:
    with asset_step(context, duckdb) as step:
        conn = step.conn
        result = step.commit(
            [TableSlice(table, query)],
            accounting=[
                Accounting(
                    SOURCE,
                    name,
                    None,
                    _count(conn, f"raw.{raw_table}"),
                    f"SELECT count(*) FROM {table}",
                )
            ],
            audit=audit,
        )
        return table_metadata(conn, table, result)


reference_assets = [_reference_asset(name, *spec) for name, spec in REFERENCE_TABLES.items()]


# ---------------------------------------------------------------- orders and lines


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            key=_key("orders"),
            deps=[
                dg.AssetKey(["raw", "orders"]),
                _key("companies"),
                _key("customers"),
            ],
            kinds={"duckdb"},
            tags=TAGS,
            partitions_def=MONTHLY,
            description="Valid orders of the month: status normalized, buyer and customer "
            "resolved to surviving records, dates inside the partition range and not in the future.",
        ),
        dg.AssetSpec(
            key=_key("order_lines"),
            deps=[dg.AssetKey(["raw", "order_items"]), _key("products")],
            kinds={"duckdb"},
            tags=TAGS,
            partitions_def=MONTHLY,
            description="Valid lines of valid orders, with revenue = quantity x unit price x "
            "(1 - discount). A rejected order takes all its lines with it.",
        ),
    ],
    backfill_policy=SINGLE_RUN,
    check_specs=[
        *_specs(
            "orders",
            UNIQUE,
            ACCOUNTED,
            ("orders_reject_rate", "Rejected orders stay under the configured share.", True),
            ("company_known", "Every order's company is a staged company.", True),
        ),
        *_specs(
            "order_lines",
            UNIQUE,
            ACCOUNTED,
            ("order_lines_reject_rate", "Rejected lines stay under the configured share.", True),
            ("order_known", "Every line belongs to a staged order.", True),
        ),
    ],
    pool=WAREHOUSE_POOL,
)
def staging_orders(
    context: dg.AssetExecutionContext,
    duckdb: DuckDBResource,
    calendar: CalendarResource,
    quality: QualityThresholds,
) -> AssetEvents:
    months: dict[str, dict[str, dict[str, int]]] = {"orders": {}, "order_items": {}}
    results: list[tuple[str, dg.AssetCheckResult]] = []
    for partition_key in context.partition_keys:
        audit = CheckAudit(
            context,
            partial(_month_checks, partition_key=partition_key, threshold=quality.max_reject_rate),
        )
        try:
            counts = _stage_month(context, duckdb, calendar, quality, partition_key, audit)
        except AuditFailed as error:
            yield from blocked([audit], error)
        for entity, values in counts.items():
            months[entity][partition_key] = values
        results += [(partition_key, r) for r in audit.results]
    combined = checks.combine_months(results)
    schemas = column_schemas(
        duckdb.database, duckdb.connection_config, ["staging.orders", "staging.order_lines"]
    )
    for entity, key in (("orders", _key("orders")), ("order_items", _key("order_lines"))):
        per_month = months[entity]
        month_metadata(context, per_month, "rows_loaded", key)
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "dagster/column_schema": schemas[f"staging.{key.path[-1]}"],
                "months": months_markdown(per_month),
            },
            check_results=[r for r in combined if r.asset_key == key],
        )


def _stage_month(
    context: dg.AssetExecutionContext,
    duckdb: DuckDBResource,
    calendar: CalendarResource,
    quality: QualityThresholds,
    partition_key: str,
    audit: CheckAudit,
) -> dict[str, dict[str, int]]:
    """Validate one month of orders and lines, published if its checks pass; returns
    accounting per entity."""
    with asset_step(context, duckdb, partition_key) as step:
        conn = step.conn
        bind_variables(conn, {
            "load_cutoff": calendar.load_cutoff,
            "first_month": calendar.first_month_start,
            "valid_statuses": list(VALID_STATUSES),
        })  # fmt: skip
        conn.execute(sql_file(__file__, "orders_checked"))
        conn.execute(sql_file(__file__, "lines_checked"))
        in_month = "partition_key = getvariable('partition_key')"
        result = step.commit(
            [
                TableSlice("staging.orders", sql_file(__file__, "orders_staged"), in_month),
                TableSlice(
                    "staging.order_lines", sql_file(__file__, "order_lines_staged"), in_month
                ),
            ],
            quarantine=[
                QuarantineSlice(
                    SOURCE, "orders", partition_key, sql_file(__file__, "orders_rejected")
                ),
                QuarantineSlice(
                    SOURCE, "order_items", partition_key, sql_file(__file__, "order_lines_rejected")
                ),
            ],
            accounting=[
                Accounting(
                    SOURCE, "orders", partition_key, _count(conn, "orders_checked"),
                    f"SELECT count(*) FROM staging.orders WHERE {in_month}",
                ),
                Accounting(
                    SOURCE, "order_items", partition_key, _count(conn, "lines_checked"),
                    f"SELECT count(*) FROM staging.order_lines WHERE {in_month}",
                ),
            ],
            audit=audit,
        )  # fmt: skip
        return result.by_entity


def _month_checks(
    conn: duckdb.DuckDBPyConnection, partition_key: str, threshold: float
) -> list[dg.AssetCheckResult]:
    """The checks of one staged month of orders and lines (run before it is published)."""
    where = "partition_key = ?"
    orders_key, lines_key = _key("orders"), _key("order_lines")
    in_slice = {"where": where, "params": [partition_key]}
    orders_checks = [
        checks.unique_key(conn, orders_key, "staging.orders", ["order_id"], **in_slice),
        checks.accounting_holds(conn, orders_key, SOURCE, ["orders"], partition_key),
        checks.reject_rate_below(conn, orders_key, SOURCE, "orders", partition_key, threshold),
        checks.references_resolve(
            conn,
            orders_key,
            "company_known",
            "staging.orders",
            "company_id",
            "staging.companies",
            "company_id",
            where="t.partition_key = ?",
            params=[partition_key],
        ),
    ]
    lines_checks = [
        checks.unique_key(
            conn, lines_key, "staging.order_lines", ["order_id", "line_number"], **in_slice
        ),
        checks.accounting_holds(conn, lines_key, SOURCE, ["order_items"], partition_key),
        checks.reject_rate_below(
            conn,
            lines_key,
            SOURCE,
            "order_items",
            partition_key,
            threshold,
            check_name="order_lines_reject_rate",
        ),
        checks.references_resolve(
            conn,
            lines_key,
            "order_known",
            "staging.order_lines",
            "order_id",
            "staging.orders",
            "order_id",
            where="t.partition_key = ?",
            params=[partition_key],
        ),
    ]
    return orders_checks + lines_checks
