"""How marketing leads turn into client companies that buy."""

import datetime as dt

import dagster as dg
from dagster_duckdb import DuckDBResource

from b2b_platform.lib.asset_step import AssetEvents
from b2b_platform.lib.report_step import (
    materialize_report,
    report_asset,
    report_check_specs,
    report_key,
)
from b2b_platform.lib.resources import CalendarResource

NAME = "lead_conversion"
KEY = report_key(NAME)


def lead_conversion_query(window_start: dt.date, window_end: dt.date) -> str:
    """Per campaign and channel.

    leads: leads after duplicates were merged. companies_matched: distinct client
    companies whose normalized CUIT a lead carried. companies_converted: matched
    companies with a valid order after their earliest lead of the campaign and channel.
    conversion_rate = converted / matched (NULL when nothing matched). revenue: what
    the converted companies bought in the report window.
    """
    return f"""
        WITH matched AS (
            SELECT campaign, channel, company_id, min(captured_at) AS first_captured_at
            FROM core.fct_leads WHERE company_id IS NOT NULL
            GROUP BY ALL
        ),
        converted AS (
            SELECT m.campaign, m.channel, m.company_id
            FROM matched m
            WHERE EXISTS (SELECT 1 FROM core.fct_order_lines f
                          WHERE f.company_id = m.company_id
                            AND f.ordered_at > m.first_captured_at)
        ),
        revenue AS (
            SELECT c.campaign, c.channel, sum(f.revenue) AS revenue
            FROM converted c
            JOIN core.fct_order_lines f ON f.company_id = c.company_id
            WHERE f.ordered_at >= TIMESTAMP '{window_start}'
              AND f.ordered_at < TIMESTAMP '{window_end}'
            GROUP BY ALL
        ),
        per_group AS (
            SELECT l.campaign, l.channel, count(*) AS leads,
                   (SELECT count(*) FROM matched m WHERE m.campaign IS NOT DISTINCT FROM l.campaign
                      AND m.channel IS NOT DISTINCT FROM l.channel) AS companies_matched,
                   (SELECT count(*) FROM converted c WHERE c.campaign IS NOT DISTINCT FROM l.campaign
                      AND c.channel IS NOT DISTINCT FROM l.channel) AS companies_converted
            FROM core.fct_leads l GROUP BY ALL
        )
        SELECT coalesce(g.campaign, '(no campaign)') AS campaign,
               coalesce(g.channel, '(no channel)') AS channel,
               g.leads, g.companies_matched, g.companies_converted,
               CASE WHEN g.companies_matched > 0
                    THEN round(g.companies_converted / g.companies_matched, 4)
               END::DECIMAL(6, 4) AS conversion_rate,
               coalesce(r.revenue, 0)::DECIMAL(18, 2) AS revenue
        FROM per_group g
        LEFT JOIN revenue r ON r.campaign IS NOT DISTINCT FROM g.campaign
                           AND r.channel IS NOT DISTINCT FROM g.channel
    """


@dg.asset(
    key=KEY,
    deps=[dg.AssetKey(["core", "fct_leads"]), dg.AssetKey(["core", "fct_order_lines"])],
    **report_asset(),
    check_specs=report_check_specs(NAME, {}),
)
def lead_conversion(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, calendar: CalendarResource
) -> AssetEvents:
    """Lead conversion per marketing campaign and channel: how many leads came in, how
    many client companies they matched (by CUIT), how many of those bought after the
    lead was captured, and what the converted companies bought in the past 12 months."""
    yield from materialize_report(
        context, duckdb, NAME, lead_conversion_query(*calendar.report_window)
    )
