"""Staged marketing leads: parsed dates, validated contacts and CUITs, one row per lead.

A row without a lead id is rejected on its own (missing_lead_id): rows are merged by
lead id, and rows that have none are not one lead. Each rejected row gets one finding.
"""

from functools import partial
from typing import Any

import dagster as dg
import duckdb
import pycountry
from dagster_duckdb import DuckDBResource

from b2b_common.text import fold_accents
from b2b_platform.defs.leads.raw import SOURCE
from b2b_platform.lib import checks
from b2b_platform.lib.asset_step import (
    WAREHOUSE_POOL,
    AssetEvents,
    CheckAudit,
    asset_step,
    published,
)
from b2b_platform.lib.metadata import table_metadata
from b2b_platform.lib.resources import QualityThresholds
from b2b_platform.lib.warehouse import Accounting, QuarantineSlice, TableSlice
from b2b_platform.lib.warehouse_schema import scalar

KEY = dg.AssetKey(["staging", "leads"])
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"

# Channel labels people write -> canonical channel (matched on the folded label).
CHANNEL_PATTERNS: tuple[tuple[str, str], ...] = (
    ("feria|trade.?show|expo", "trade_show"),
    ("webinar", "webinar"),
    ("linkedin", "linkedin"),
    ("google|adwords|sem", "google_ads"),
    ("mail|newsletter|email", "email"),
    ("referid|referral|recomend", "referral"),
)


def _channel_sql(column: str) -> str:
    folded = f"lower(strip_accents(trim({column})))"
    cases = " ".join(
        f"WHEN regexp_matches({folded}, '{p}') THEN '{c}'" for p, c in CHANNEL_PATTERNS
    )
    return f"CASE {cases} ELSE nullif(regexp_replace({folded}, '[^a-z0-9]+', '_', 'g'), '') END"


def country_codes(values: list[str]) -> dict[str, str]:
    """ISO-2 code per distinct country text ('Argentina', 'ARG', 'argentina', 'Brasil')."""
    spanish = {"brasil": "BR", "mexico": "MX", "espana": "ES", "peru": "PE",
               "estados unidos": "US", "eeuu": "US", "alemania": "DE", "italia": "IT"}  # fmt: skip
    codes: dict[str, str] = {}
    for value in values:
        text = fold_accents(value.strip())
        try:
            codes[value] = pycountry.countries.lookup(text).alpha_2
        except LookupError:
            if text.lower() in spanish:
                codes[value] = spanish[text.lower()]
    return codes


@dg.asset(
    key=KEY,
    deps=[dg.AssetKey(["raw", "marketing_leads"])],
    kinds={"duckdb"},
    tags={"source": SOURCE},
    pool=WAREHOUSE_POOL,
    check_specs=[
        dg.AssetCheckSpec(
            "unique_key", asset=KEY, blocking=True, description="One row per lead_id."
        ),
        dg.AssetCheckSpec(
            "accounting_identity",
            asset=KEY,
            blocking=True,
            description="Rows read = loaded + rejected + merged.",
        ),
        dg.AssetCheckSpec(
            "leads_reject_rate",
            asset=KEY,
            blocking=True,
            description="Rejected leads stay under the configured share.",
        ),
    ],
)
def staging_leads(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, quality: QualityThresholds
) -> AssetEvents:
    """Marketing leads, one row per lead across all campaign exports.

    Dates are read whether Excel stored them as dates or people typed dd/mm/yyyy;
    emails are lower-cased and validated, CUITs normalized and check-digit validated
    (an invalid one is set to NULL and flagged), channels mapped to a fixed set, and
    countries to ISO codes. A row without a lead id, or a lead with neither email nor
    phone, is rejected; a lead exported again in a later file is merged into its first
    appearance.
    """
    audit = CheckAudit(context, partial(_lead_checks, threshold=quality.max_reject_rate))
    yield from published([audit], partial(_stage_leads, context, duckdb, audit))


def _stage_leads(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, audit: CheckAudit
) -> dict[str, Any]:
    with asset_step(context, duckdb) as step:
        conn = step.conn
        countries = [r[0] for r in conn.execute(
            "SELECT DISTINCT country FROM raw.marketing_leads WHERE country IS NOT NULL"
        ).fetchall()]  # fmt: skip
        conn.execute("CREATE OR REPLACE TEMP TABLE country_codes (country VARCHAR, code VARCHAR)")
        mapping = country_codes(countries)
        if mapping:
            conn.executemany("INSERT INTO country_codes VALUES (?, ?)", list(mapping.items()))
        conn.execute(rf"""
            CREATE OR REPLACE TEMP TABLE leads_checked AS
            WITH source AS (SELECT * EXCLUDE (_loaded_at) FROM raw.marketing_leads),
            typed AS (
                SELECT r.*,
                       nullif(upper(trim(r.lead_id)), '') AS lead_key,
                       coalesce(
                           TRY_CAST(r.captured_at AS TIMESTAMP),
                           try_strptime(r.captured_at, '%d/%m/%Y'),
                           try_strptime(r.captured_at, '%d/%m/%Y %H:%M'),
                           try_strptime(r.captured_at, '%d-%m-%Y'),
                           -- an Excel serial number left without a date format
                           CASE WHEN regexp_full_match(r.captured_at, '[0-9]{{5}}(\.[0-9]+)?')
                                THEN TIMESTAMP '1899-12-30'
                                     + to_milliseconds(CAST(round(r.captured_at::DOUBLE * 86400000) AS BIGINT))
                           END) AS captured_ts,
                       lower(trim(r.email)) AS email_norm,
                       regexp_replace(trim(r.cuit), '[\s\-./]', '', 'g') AS cuit_digits,
                       nullif(regexp_replace(r.phone, '[^0-9+]', '', 'g'), '') AS phone_norm,
                       json_merge_patch(to_json(r), json_object(
                           'contact_name', mask_text(r.contact_name),
                           'email', mask_text(r.email),
                           'phone', mask_text(r.phone),
                           'cuit', mask_personal(r.cuit),
                           -- a sole proprietor's company name is the person's name
                           'company_name', CASE WHEN is_personal_cuit(r.cuit)
                               THEN mask_text(r.company_name) ELSE r.company_name END))
                           AS raw_record
                FROM source r
            ), validated AS (
                SELECT *,
                       lead_key IS NULL AS no_lead_id,
                       email_norm IS NULL AND phone_norm IS NULL AS no_contact,
                       email_norm IS NOT NULL AND NOT regexp_matches(email_norm, '{EMAIL_PATTERN}') AS email_bad,
                       cuit_digits IS NOT NULL AND cuit_digits <> '' AND NOT cuit_is_valid(cuit_digits) AS cuit_bad
                FROM typed
            ), ranked AS (
                SELECT *,
                       -- only rows kept are numbered: a rejected row is never merged
                       CASE WHEN NOT rejected THEN row_number() OVER (
                           PARTITION BY lead_key, rejected ORDER BY captured_ts NULLS LAST, source_file, sheet_row)
                       END AS appearance,
                       first_value(source_file || ' row ' || sheet_row) OVER (
                           PARTITION BY lead_key, rejected ORDER BY captured_ts NULLS LAST, source_file, sheet_row)
                           AS first_appearance
                FROM (SELECT *, no_lead_id OR no_contact AS rejected FROM validated)
            )
            SELECT * FROM ranked
        """)
        result = step.commit(
            [
                TableSlice(
                    "staging.leads",
                    f"""
                    SELECT l.lead_key AS lead_id, l.captured_ts AS captured_at,
                           trim(l.campaign) AS campaign, {_channel_sql("l.channel")} AS channel,
                           trim(l.company_name) AS company_name,
                           CASE WHEN NOT l.cuit_bad AND l.cuit_digits <> '' THEN l.cuit_digits END AS cuit,
                           trim(l.contact_name) AS contact_name,
                           CASE WHEN NOT l.email_bad THEN l.email_norm END AS email,
                           l.phone_norm AS phone,
                           coalesce(c.code, upper(trim(l.country))) AS country_code,
                           trim(l.province) AS province, trim(l.city) AS city,
                           trim(l.industry) AS industry,
                           l.email_bad AS email_flagged, l.cuit_bad AS cuit_flagged,
                           l.source_file, l.sheet_row
                    FROM leads_checked l LEFT JOIN country_codes c ON c.country = l.country
                    WHERE l.appearance = 1
                """,
                )
            ],
            quarantine=[
                QuarantineSlice(
                    SOURCE,
                    "leads",
                    None,
                    """
                    SELECT source_file || '#' || sheet_row AS record_key,
                           'missing_lead_id' AS reason_code, 'rejected' AS action,
                           'row has no lead id' AS detail, raw_record
                    FROM leads_checked WHERE no_lead_id
                    UNION ALL
                    SELECT source_file || '#' || sheet_row, 'missing_contact', 'rejected',
                           'lead ' || lead_key || ' has neither email nor phone', raw_record
                    FROM leads_checked WHERE no_contact AND NOT no_lead_id
                    UNION ALL
                    SELECT source_file || '#' || sheet_row, 'duplicate_lead', 'merged',
                           'lead ' || lead_key || ' already in ' || first_appearance, raw_record
                    FROM leads_checked WHERE appearance > 1
                    UNION ALL
                    SELECT source_file || '#' || sheet_row, 'invalid_email', 'flagged',
                           'email ''' || mask_text(email) || ''' is not an address; set to NULL', raw_record
                    FROM leads_checked WHERE email_bad AND appearance = 1
                    UNION ALL
                    SELECT source_file || '#' || sheet_row, 'invalid_cuit', 'flagged',
                           'CUIT ''' || mask_personal(cuit) || ''' fails the check digit; set to NULL', raw_record
                    FROM leads_checked WHERE cuit_bad AND appearance = 1
                """,
                )
            ],
            accounting=[
                Accounting(
                    SOURCE,
                    "leads",
                    None,
                    int(scalar(conn, "SELECT count(*) FROM leads_checked")),
                    "SELECT count(*) FROM staging.leads",
                )
            ],
            audit=audit,
        )
        return table_metadata(conn, "staging.leads", result)


def _lead_checks(conn: duckdb.DuckDBPyConnection, threshold: float) -> list[dg.AssetCheckResult]:
    """The staged leads' checks, run before they are published."""
    return [
        checks.unique_key(conn, KEY, "staging.leads", ["lead_id"]),
        checks.accounting_holds(conn, KEY, SOURCE, ["leads"], None),
        checks.reject_rate_below(conn, KEY, SOURCE, "leads", None, threshold),
    ]
