"""Staged web requests: each loaded log line with its country, device, bot flag and user."""

from collections.abc import Iterator

import dagster as dg
import duckdb
import iptocc
import polars as pl
from dagster_duckdb import DuckDBResource

from b2b_platform.defs.platform_db.raw import MONTHLY
from b2b_platform.defs.weblogs.raw import KEY as RAW_KEY
from b2b_platform.defs.weblogs.raw import OWNERS, SOURCE
from b2b_platform.lib import checks
from b2b_platform.lib.asset_step import (
    SINGLE_RUN,
    WAREHOUSE_POOL,
    asset_step,
    months_markdown,
)
from b2b_platform.lib.metadata import schema_metadata
from b2b_platform.lib.user_agents import describe_user_agents
from b2b_platform.lib.warehouse import Accounting, TableSlice, WarehouseStep, table_exists

KEY = dg.AssetKey(["staging", "web_requests"])

WEB_REQUESTS_VIEW = """
-- the path is not stored in raw (it is the target without its query string); a
-- warehouse loaded before that still has the column, hence COLUMNS(...)
WITH w AS (
    SELECT COLUMNS(lambda c: c <> 'path'), split_part(target, '?', 1) AS path FROM raw.weblogs
)
SELECT w.source_file, w.line_number, w.requested_at, w.utc_offset,
       w.client_ip, w.client_host, i.country_code, w.vhost,
       w.username, u.user_id, u.company_id,
       w.method, w.path, w.target, w.protocol, w.request, w.status, w.bytes, w.referer,
       w.user_agent,
       coalesce(a.device_label, 'Unknown device') AS device_label,
       coalesce(a.device_type, 'other') AS device_type,
       a.os_family, a.browser_family,
       coalesce(a.is_bot, false) AS is_bot,
       coalesce(w.method = 'POST' AND w.path = '/login' AND w.status BETWEEN 200 AND 399
                AND u.user_id IS NOT NULL, false) AS is_login,
       TRY_CAST(regexp_extract(w.path, '^/products/([0-9]+)/?$', 1) AS BIGINT) AS product_id,
       w.partition_key
FROM w
LEFT JOIN staging.user_agents a ON a.user_agent = w.user_agent
LEFT JOIN staging.ip_countries i ON i.ip = w.client_ip
LEFT JOIN staging.platform_users u ON u.username = w.username
"""
PLATFORM_USERS = dg.AssetKey(["staging", "platform_users"])


@dg.asset(
    key=KEY,
    deps=[RAW_KEY, PLATFORM_USERS],
    group_name="staging",
    kinds={"duckdb"},
    owners=OWNERS,
    tags={"source": SOURCE, "layer": "staging"},
    partitions_def=MONTHLY,
    backfill_policy=SINGLE_RUN,
    pool=WAREHOUSE_POOL,
    check_specs=[
        dg.AssetCheckSpec(
            "accounting_identity",
            asset=KEY,
            blocking=True,
            description="Every raw request of the month is staged.",
        ),
        dg.AssetCheckSpec(
            "unique_key", asset=KEY, blocking=True, description="One row per file and line number."
        ),
        dg.AssetCheckSpec(
            "bot_share", asset=KEY, description="Bots are under half of the month's requests."
        ),
        dg.AssetCheckSpec(
            "unknown_country_share",
            asset=KEY,
            description="Under 10% of public client IPs have no country.",
        ),
    ],
)
def staging_web_requests(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource
) -> Iterator[dg.MaterializeResult]:
    """Web requests, enriched for analysis (a view over raw.weblogs; runs add cache values).

    Country from the client IP (iptocc, offline, looked up once per distinct IP and kept
    in staging.ip_countries); device, OS, browser and bot flag from the user agent
    (parsed once per distinct string and kept in staging.user_agents); the platform user
    behind an authenticated request; logins (POST /login with a 2xx/3xx status by a
    known user) and product page views (/products/<id>) marked.
    """
    per_month: dict[str, dict[str, int]] = {}
    results: list[tuple[str, dg.AssetCheckResult]] = []
    for partition_key in context.partition_keys:
        with asset_step(context, duckdb, partition_key) as step:
            per_month[partition_key] = _stage_month(step, partition_key)
            results += [(partition_key, r) for r in _month_checks(step, partition_key)]
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": sum(m["requests"] for m in per_month.values()),
            **schema_metadata(duckdb.database, duckdb.connection_config, "staging.web_requests"),
            "months": months_markdown(per_month),
        },
        check_results=checks.combine_months(results),
    )


def _new_values(
    step: WarehouseStep, partition_key: str, column: str, cache: str, key: str
) -> list[str]:
    """Distinct values of the month not yet in the cache table."""
    unseen = (
        f" AND NOT EXISTS (SELECT 1 FROM {cache} c WHERE c.{key} = w.{column})"
        if table_exists(step.conn, cache) else ""
    )  # fmt: skip
    return [r[0] for r in step.conn.execute(
        f"SELECT DISTINCT {column} FROM raw.weblogs w WHERE partition_key = ?"
        f" AND {column} IS NOT NULL{unseen} ORDER BY 1",
        [partition_key],
    ).fetchall()]  # fmt: skip


def _stage_month(step: WarehouseStep, partition_key: str) -> dict[str, int]:
    conn = step.conn
    if not table_exists(conn, "raw.weblogs"):
        return {"requests": 0, "new_user_agents": 0, "new_ips": 0}
    # Python runs once per distinct value never seen before, never once per line.
    new_agents = _new_values(step, partition_key, "user_agent", "staging.user_agents", "user_agent")
    new_ips = _new_values(step, partition_key, "client_ip", "staging.ip_countries", "ip")
    conn.register("new_agents", describe_user_agents(new_agents).to_arrow())
    conn.register("new_ips", pl.DataFrame(
        {"ip": new_ips, "country_code": iptocc.country_code(new_ips) if new_ips else []},
        schema={"ip": pl.String, "country_code": pl.String},
    ).to_arrow())  # fmt: skip
    read = conn.execute(
        "SELECT count(*) FROM raw.weblogs WHERE partition_key = ?", [partition_key]
    ).fetchall()[0][0]
    result = step.commit(
        [
            # append-only caches: the view below sees the new values in the same transaction
            TableSlice(
                "staging.user_agents",
                "SELECT *, current_timestamp::TIMESTAMP AS parsed_at FROM new_agents",
                where="false",
            ),
            TableSlice(
                "staging.ip_countries",
                "SELECT *, current_timestamp::TIMESTAMP AS looked_up_at FROM new_ips",
                where="false",
            ),
        ],
        # A view: enriching is a join against two small caches and the user table, so
        # copying every request again would double the volume and go stale when users
        # change. It covers every month; each month's run adds its new cache values.
        views={"staging.web_requests": WEB_REQUESTS_VIEW},
        accounting=[
            Accounting(
                SOURCE,
                "web_requests",
                partition_key,
                int(read),
                f"SELECT count(*) FROM staging.web_requests WHERE partition_key = '{partition_key}'",
            )
        ],
    )
    return {
        "requests": result.by_entity["web_requests"]["rows_loaded"],
        "new_user_agents": len(new_agents),
        "new_ips": len(new_ips),
    }


# the tables staging.web_requests looks values up in, with their keys
LOOKUPS = {
    "staging.user_agents": "user_agent",
    "staging.ip_countries": "ip",
    "staging.platform_users": "username",
}


def one_row_per_line(conn: duckdb.DuckDBPyConnection, partition_key: str) -> dg.AssetCheckResult:
    """The unique_key check: one staged request per file and line number.

    The view is raw.weblogs left-joined to LOOKUPS, so it has one row per file and line
    exactly when raw has and every lookup key is unique. Proven that way because it is
    cheap: a bitmap of line numbers per file takes 0.1 s for a 10M-line month, where
    grouping the view's 10M (file, line) pairs takes 1.5 s.
    """
    low, high, null_keys = conn.execute(
        "SELECT min(line_number), max(line_number),"
        " count(*) FILTER (WHERE source_file IS NULL OR line_number IS NULL)"
        " FROM raw.weblogs WHERE partition_key = ?",
        [partition_key],
    ).fetchall()[0]
    repeated_lines = 0
    if high is not None:  # bitstring_agg takes its range as constants
        repeated_lines = conn.execute(
            "SELECT coalesce(sum(lines - bit_count(seen)), 0) FROM ("
            f" SELECT count(*) AS lines, bitstring_agg(line_number, {int(low)}, {int(high)}) AS seen"
            " FROM raw.weblogs WHERE partition_key = ? AND line_number IS NOT NULL"
            " GROUP BY source_file)",
            [partition_key],
        ).fetchall()[0][0]
    repeated_lookups = sum(
        conn.execute(f"SELECT count({key}) - count(DISTINCT {key}) FROM {table}").fetchall()[0][0]
        for table, key in LOOKUPS.items()
        if table_exists(conn, table)
    )
    return dg.AssetCheckResult(
        asset_key=KEY,
        check_name="unique_key",
        passed=repeated_lines == 0 and null_keys == 0 and repeated_lookups == 0,
        metadata={
            "key": "source_file, line_number",
            "duplicate_keys": int(repeated_lines),
            "null_keys": int(null_keys),
            "lookup_keys_repeated": int(repeated_lookups),
        },
    )


def _month_checks(step: WarehouseStep, partition_key: str) -> list[dg.AssetCheckResult]:
    conn = step.conn
    if not table_exists(conn, "staging.web_requests"):
        return []
    # public or private is decided once per distinct address (the cache), not per request
    total, bots, public, unknown = conn.execute(
        """WITH ips AS (
               SELECT ip, NOT regexp_matches(ip, '^(10\\.|127\\.|192\\.168\\.|172\\.(1[6-9]|2[0-9]|3[01])\\.|::1$)') AS public
               FROM staging.ip_countries)
           SELECT count(*), count(*) FILTER (WHERE w.is_bot), count(*) FILTER (WHERE ips.public),
                  count(*) FILTER (WHERE ips.public AND w.country_code IS NULL)
           FROM staging.web_requests w LEFT JOIN ips ON ips.ip = w.client_ip
           WHERE w.partition_key = ?""",
        [partition_key],
    ).fetchall()[0]
    bot_share = bots / total if total else 0.0
    unknown_share = unknown / public if public else 0.0
    return [
        checks.accounting_holds(conn, KEY, SOURCE, ["web_requests"], partition_key),
        one_row_per_line(conn, partition_key),
        dg.AssetCheckResult(asset_key=KEY, check_name="bot_share", passed=bot_share < 0.5,
                            metadata={"bot_share": round(bot_share, 4), "requests": int(total)}),
        dg.AssetCheckResult(asset_key=KEY, check_name="unknown_country_share",
                            passed=unknown_share < 0.1,
                            metadata={"unknown_country_share": round(unknown_share, 4)}),
    ]  # fmt: skip
