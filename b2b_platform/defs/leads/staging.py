"""Staged marketing leads: parsed dates, validated contacts and CUITs, one row per lead.

A row without a lead id is rejected on its own (missing_lead_id): rows are merged by
lead id, and rows that have none are not one lead. Each rejected row gets one finding.
"""

from functools import partial
from typing import Any

import dagster as dg
import duckdb
import pycountry

from b2b_common.text import fold_accents
from b2b_platform.defs.leads.raw import SOURCE
from b2b_platform.lib import checks
from b2b_platform.lib.asset_step import (
    WAREHOUSE_POOL,
    AssetEvents,
    CheckAudit,
    published,
)
from b2b_platform.lib.metadata import table_metadata
from b2b_platform.lib.resources import QualityThresholds
from b2b_platform.lib.warehouse.resource import WarehouseResource
from b2b_platform.lib.warehouse.schema import scalar
from b2b_platform.lib.warehouse.sql import bind_variables, sql_file
from b2b_platform.lib.warehouse.writes import Accounting, QuarantineSlice, TableSlice

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


UNIQUE_LEAD = checks.UNIQUE_KEY.described("One row per lead_id.")
REJECT_RATE = checks.reject_rate(
    "leads", "Rejected leads stay under the configured share.", blocking=True
)
CHECKS = (UNIQUE_LEAD, checks.ACCOUNTING_IDENTITY, REJECT_RATE)


@dg.asset(
    key=KEY,
    deps=[dg.AssetKey(["raw", "marketing_leads"])],
    kinds={"duckdb"},
    tags={"source": SOURCE},
    pool=WAREHOUSE_POOL,
    check_specs=[check.spec(KEY) for check in CHECKS],
)
def staging_leads(
    context: dg.AssetExecutionContext, duckdb: WarehouseResource, quality: QualityThresholds
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
    context: dg.AssetExecutionContext, duckdb: WarehouseResource, audit: CheckAudit
) -> dict[str, Any]:
    with duckdb.step(context) as step:
        conn = step.conn
        countries = [r[0] for r in conn.execute(
            "SELECT DISTINCT country FROM raw.marketing_leads WHERE country IS NOT NULL"
        ).fetchall()]  # fmt: skip
        conn.execute("CREATE OR REPLACE TEMP TABLE country_codes (country VARCHAR, code VARCHAR)")
        mapping = country_codes(countries)
        if mapping:
            conn.executemany("INSERT INTO country_codes VALUES (?, ?)", list(mapping.items()))
        bind_variables(conn, {
            "email_pattern": EMAIL_PATTERN,
            "channel_patterns": [{"pattern": p, "channel": c} for p, c in CHANNEL_PATTERNS],
        })  # fmt: skip
        conn.execute(sql_file(__file__, "leads_checked"))
        result = step.commit(
            [
                TableSlice(
                    "staging.leads",
                    sql_file(__file__, "leads_staged"),
                )
            ],
            quarantine=[
                QuarantineSlice(
                    SOURCE,
                    "leads",
                    None,
                    sql_file(__file__, "leads_quarantined"),
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
        checks.unique_key(conn, KEY, "staging.leads", ["lead_id"], check=UNIQUE_LEAD),
        checks.accounting_holds(conn, KEY, SOURCE, ["leads"], None),
        checks.reject_rate_below(conn, KEY, SOURCE, "leads", None, threshold, REJECT_RATE),
    ]
