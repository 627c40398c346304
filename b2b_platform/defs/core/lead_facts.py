"""Lead facts: marketing leads matched to client companies."""

import dagster as dg

from b2b_platform.defs.core.common import (
    core_asset,
    core_checks,
    core_key,
    core_table_checks,
    staging_key,
)
from b2b_platform.lib.asset_step import AssetEvents, materialize_table
from b2b_platform.lib.warehouse.resource import WarehouseResource

KEY = core_key("fct_leads")


@dg.asset(
    key=KEY,
    deps=[staging_key("leads"), staging_key("companies")],
    **core_asset(),
    check_specs=core_checks("fct_leads"),
)
def fct_leads(context: dg.AssetExecutionContext, duckdb: WarehouseResource) -> AssetEvents:
    """Marketing leads (duplicates across workbooks merged), each matched to a client
    company by its normalized CUIT when one exists.

    Contact names, emails and phones stay in staging; here only whether the lead had
    an email or a phone. A lead with a person's CUIT (a sole proprietor) has that
    person's name as its company name: both are masked.
    """
    table = "core.fct_leads"
    yield from materialize_table(
        context,
        duckdb,
        table,
        """
        SELECT l.lead_id, l.captured_at, l.campaign, l.channel,
               CASE WHEN is_personal_cuit(l.cuit) THEN mask_text(l.company_name)
                    ELSE l.company_name END AS company_name,
               mask_personal(l.cuit) AS cuit, c.company_id, l.country_code, l.province, l.industry,
               l.email IS NOT NULL AS has_email, l.phone IS NOT NULL AS has_phone,
               l.email_flagged, l.cuit_flagged, l.source_file
        FROM staging.leads l
        -- matched on the full CUIT in staging: core shows a person's CUIT masked
        LEFT JOIN staging.companies c ON c.cuit = l.cuit
        """,
        table_checks=core_table_checks("fct_leads", ["lead_id"]),
    )
