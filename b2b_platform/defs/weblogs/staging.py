"""Staged web requests: each loaded log line with its country, device, bot flag and user."""

import ipaddress
from functools import partial

import dagster as dg
import duckdb
import iptocc
import polars as pl

from b2b_platform.defs.partitions import BY_MONTH
from b2b_platform.defs.weblogs.raw import KEY as RAW_KEY
from b2b_platform.defs.weblogs.raw import SOURCE, add_server_column
from b2b_platform.lib import checks
from b2b_platform.lib.arrow_frames import arrow_for_duckdb
from b2b_platform.lib.asset_step import (
    SINGLE_RUN,
    WAREHOUSE_POOL,
    AssetEvents,
    CheckAudit,
    MonthsOfStep,
    months_markdown,
)
from b2b_platform.lib.checks import Check
from b2b_platform.lib.metadata import schema_metadata
from b2b_platform.lib.warehouse.resource import MonthStep, WarehouseResource
from b2b_platform.lib.warehouse.schema import scalar, table_exists
from b2b_platform.lib.warehouse.sql import (
    integer_literal,
    qualified_name,
    quote_identifier,
    sql_file,
)
from b2b_platform.lib.warehouse.step import AuditFailed, WarehouseStep
from b2b_platform.lib.warehouse.writes import Accounting, CommitResult, TableSlice
from b2b_platform.lib.weblogs.user_agents import describe_user_agents

KEY = dg.AssetKey(["staging", "web_requests"])
REQUESTS_ACCOUNTED = checks.ACCOUNTING_IDENTITY.described(
    "Every raw request of the month is staged."
)
UNIQUE_LINE = checks.UNIQUE_KEY.described("One row per file and line number.")
BOT_SHARE = Check("bot_share", "Bots are under half of the month's requests.", blocking=False)
UNKNOWN_COUNTRY_SHARE = Check(
    "unknown_country_share", "Under 10% of public client IPs have no country.", blocking=False
)
CHECKS = (REQUESTS_ACCOUNTED, UNIQUE_LINE, BOT_SHARE, UNKNOWN_COUNTRY_SHARE)

WEB_REQUESTS_VIEW = sql_file(__file__, "web_requests_view")
PLATFORM_USERS = dg.AssetKey(["staging", "platform_users"])
IP_CACHE = "staging.ip_countries"
AGENT_CACHE = "staging.user_agents"
# a month's user agents (partition_key bound), and those of them not parsed yet
AGENTS_OF_MONTH = "FROM raw.weblogs w WHERE partition_key = ? AND user_agent IS NOT NULL"
NEW_AGENTS_OF_MONTH = (
    f"{AGENTS_OF_MONTH}"
    f" AND NOT EXISTS (SELECT 1 FROM {AGENT_CACHE} c WHERE c.user_agent = w.user_agent)"
)

# New user agents parsed per month step, the most frequent first; the rest show as
# 'Unknown device' until a later run parses them. describe_user_agent measured on this
# 2-core box (ua-parser 1.0, distinct strings so its cache does not help): 0.7-1.0 ms
# for a real browser's agent, 2-6 ms for a hostile 512-character one (the parser's
# cut; 88 ms at 8,192). So a step spends ~20 s here normally and at most ~2 min when a
# scanner sends a new junk agent with every request, instead of hours.
MAX_NEW_USER_AGENTS = 20_000
IP_SCHEMA: dict[str, pl.DataType] = {
    "ip": pl.String(),
    "country_code": pl.String(),
    "is_valid": pl.Boolean(),  # ipaddress accepts it
    "is_public": pl.Boolean(),  # globally routable: the country check counts these
}


def build_staging_web_requests(months: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """staging/web_requests over the code location's months (see partitions)."""
    return dg.asset(
        key=KEY,
        deps=[RAW_KEY, PLATFORM_USERS],
        kinds={"duckdb"},
        tags={"source": SOURCE, **BY_MONTH},
        partitions_def=months,
        backfill_policy=SINGLE_RUN,
        pool=WAREHOUSE_POOL,
        check_specs=[check.spec(KEY) for check in CHECKS],
    )(staging_web_requests)


def staging_web_requests(
    context: dg.AssetExecutionContext, duckdb: WarehouseResource
) -> AssetEvents:
    """Web requests, enriched for analysis (a view over raw.weblogs; runs add cache values).

    Country from the client IP (iptocc, offline, looked up once per distinct IP and kept
    in staging.ip_countries); device, OS, browser and bot flag from the user agent
    (parsed once per distinct string and kept in staging.user_agents); the platform user
    behind an authenticated request; logins (POST /login with a 2xx/3xx status by a
    known user) and product page views (/products/<id>) marked.
    """
    per_month: dict[str, dict[str, int]] = {}
    months = MonthsOfStep(context)

    def month(month_step: MonthStep, partition_key: str) -> None:
        audit = CheckAudit(context, partial(_month_checks, partition_key=partition_key))
        try:
            with month_step(partition_key) as step:
                per_month[partition_key] = staged = _stage_month(step, partition_key, audit)
        except AuditFailed as error:
            months.hold(partition_key, audit, error)
            return
        months.checked(partition_key, audit)
        if staged["user_agents_deferred"]:
            context.log.warning(
                f"{partition_key[:7]}: {staged['user_agents_deferred']:,} new user agents left"
                f" unparsed (at most {MAX_NEW_USER_AGENTS:,} a month per run, the most frequent"
                " first); they show as 'Unknown device' until later runs parse them"
            )

    # in turn: the months add to the same user-agent and IP caches, and a month's
    # queries already keep both cores busy (two at once measured no faster)
    duckdb.each_month(context, month, lanes=1)
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": sum(m["requests"] for m in per_month.values()),
            "user_agents_deferred": sum(m["user_agents_deferred"] for m in per_month.values()),
            **schema_metadata(duckdb, "staging.web_requests"),
            "months": months_markdown(per_month),
            **months.metadata(),
        },
        check_results=months.check_results(),
    )


def _new_user_agents(
    conn: duckdb.DuckDBPyConnection, partition_key: str, limit: int
) -> tuple[list[str], int]:
    """The month's most frequent user agents not parsed yet (at most `limit`), and how
    many more are waiting."""
    in_month = NEW_AGENTS_OF_MONTH if table_exists(conn, AGENT_CACHE) else AGENTS_OF_MONTH
    # the usual case, few new agents: a DISTINCT is 5x cheaper than counting them
    distinct = [r[0] for r in conn.execute(
        f"SELECT DISTINCT user_agent {in_month} ORDER BY 1 LIMIT ?", [partition_key, limit + 1]
    ).fetchall()]  # fmt: skip
    if len(distinct) <= limit:
        return distinct, 0
    rows = conn.execute(
        f"SELECT user_agent, count(*) OVER () AS unseen {in_month}"
        " GROUP BY user_agent ORDER BY count(*) DESC, user_agent LIMIT ?",
        [partition_key, limit],
    ).fetchall()
    return [r[0] for r in rows], int(rows[0][1]) - len(rows)


def _ips_to_look_up(conn: duckdb.DuckDBPyConnection, partition_key: str) -> list[str]:
    """The month's distinct client IPs with no cache row, or with one written before IPs
    were validated (is_valid NULL, or no such column yet): those are looked up again."""
    query = (
        "SELECT DISTINCT client_ip FROM raw.weblogs w WHERE partition_key = ?"
        " AND client_ip IS NOT NULL ORDER BY 1"
    )
    if table_exists(conn, IP_CACHE) and _has_column(conn, IP_CACHE, "is_valid"):
        query = (
            "SELECT DISTINCT client_ip FROM raw.weblogs w WHERE partition_key = ?"
            f" AND client_ip IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {IP_CACHE} c"
            " WHERE c.ip = w.client_ip AND c.is_valid IS NOT NULL) ORDER BY 1"
        )
    return [r[0] for r in conn.execute(query, [partition_key]).fetchall()]


def _has_column(conn: duckdb.DuckDBPyConnection, table: str, column: str) -> bool:
    schema, name = table.split(".")
    return bool(scalar(conn,
        "SELECT count(*) FROM information_schema.columns"
        " WHERE table_schema = ? AND table_name = ? AND column_name = ?",
        [schema, name, column],
    ))  # fmt: skip


# IPv4 ranges that are not globally routable (ipaddress's is_global is False for them):
# a client there is behind a proxy or on a private network, so it has no country
NON_GLOBAL_IPV4 = (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4",
)  # fmt: skip
_IPV4 = r"^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}$"


def describe_ips(ips: list[str]) -> pl.DataFrame:
    """Validity, public reach and country of distinct client IPs.

    IPv4 addresses, nearly all of them, are checked with vectorized expressions (a strict
    dotted quad; public unless inside NON_GLOBAL_IPV4); the others go through ipaddress,
    once per value (IPv6, IPv4-mapped IPv6, anything odd). An invalid address gets no
    country. 49,000 distinct addresses took 0.38 s through ipaddress alone.
    """
    frame = pl.DataFrame({"ip": ips}, schema={"ip": pl.String}).with_columns(
        dotted=pl.col("ip").str.contains(_IPV4)
    )
    octets = pl.col("ip").str.split(".").list
    v4 = frame.filter("dotted").with_columns(
        number=pl.sum_horizontal(
            octets.get(i).cast(pl.Int64) * (1 << (8 * (3 - i))) for i in range(4)
        )
    )
    non_global = pl.any_horizontal(
        pl.col("number").is_between(int(net.network_address), int(net.broadcast_address))
        for net in map(ipaddress.IPv4Network, NON_GLOBAL_IPV4)
    )
    v4 = v4.select("ip", is_valid=pl.lit(True), is_public=~non_global, lookup="ip")
    # IPv6 and anything odd: ipaddress, once per value (an IPv4-mapped address is looked
    # up as its IPv4 address)
    addresses = {ip: _ip_address(ip) for ip in frame.filter(~pl.col("dotted"))["ip"]}
    others = pl.DataFrame(
        {
            "ip": list(addresses),
            "is_valid": [a is not None for a in addresses.values()],
            "is_public": [a is not None and a.is_global for a in addresses.values()],
            "lookup": [None if a is None else str(a) for a in addresses.values()],
        },
        schema={
            "ip": pl.String,
            "is_valid": pl.Boolean,
            "is_public": pl.Boolean,
            "lookup": pl.String,
        },
    )
    described = pl.concat([v4, others])
    valid = described.filter("is_valid")
    codes = iptocc.country_code(valid["lookup"].to_list()) if valid.height else []
    countries = valid.select("ip", country_code=pl.Series(codes, dtype=pl.String))
    return (
        frame.select("ip")
        .join(described, on="ip", how="left", maintain_order="left")
        .join(countries, on="ip", how="left", maintain_order="left")
        .select(list(IP_SCHEMA))
        .cast(IP_SCHEMA)  # type: ignore[arg-type]
    )


def _ip_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # ::ffff:a.b.c.d is an IPv4 client seen through a dual-stack socket: look that up
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _add_to_caches_and_stage(
    step: WarehouseStep, partition_key: str, audit: CheckAudit
) -> tuple[CommitResult, list[str], int, list[str]]:
    conn = step.conn
    # Python runs once per distinct value never seen before, never once per line.
    new_agents, deferred = _new_user_agents(conn, partition_key, MAX_NEW_USER_AGENTS)
    new_ips = _ips_to_look_up(conn, partition_key)
    conn.register("new_agents", arrow_for_duckdb(describe_user_agents(new_agents)))
    conn.register("new_ips", arrow_for_duckdb(describe_ips(new_ips)))
    read = scalar(conn, "SELECT count(*) FROM raw.weblogs WHERE partition_key = ?", [partition_key])
    add_server_column(conn)  # the view names each request's server
    result = step.commit(
        [
            # the caches grow as months add values; the view below sees the new ones in
            # the same transaction (user agents are only ever added)
            TableSlice(
                AGENT_CACHE,
                "SELECT *, current_timestamp::TIMESTAMP AS parsed_at FROM new_agents",
                where="false",
            ),
            # new IPs are added; rows from before validation are replaced (and the
            # table gains the new columns, NULL in rows of other months until rerun)
            TableSlice(
                IP_CACHE,
                "SELECT *, current_timestamp::TIMESTAMP AS looked_up_at FROM new_ips",
                where="ip IN (SELECT ip FROM new_ips)",
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
                "SELECT count(*) FROM staging.web_requests WHERE partition_key = getvariable('partition_key')",
            )
        ],
        audit=audit,
    )
    return result, new_agents, deferred, new_ips


def _stage_month(step: WarehouseStep, partition_key: str, audit: CheckAudit) -> dict[str, int]:
    conn = step.conn
    if not table_exists(conn, "raw.weblogs"):
        raise dg.Failure(
            description="raw/weblogs was never loaded: run it first (b2b run does)",
            allow_retries=False,
        )
    # Months staged at once on a lake would each find a value new and both add it to
    # the shared caches: finding the new values and adding them is one writer's at a time.
    with step.exclusive("weblog lookup caches"):
        result, new_agents, deferred, new_ips = _add_to_caches_and_stage(step, partition_key, audit)
    return {
        "requests": result.by_entity["web_requests"]["rows_loaded"],
        "new_user_agents": len(new_agents),
        "user_agents_deferred": deferred,
        "new_ips": len(new_ips),
    }


# the tables staging.web_requests looks values up in, with their keys
LOOKUPS = {
    AGENT_CACHE: "user_agent",
    IP_CACHE: "ip",
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
        repeated_lines = scalar(
            conn,
            "SELECT coalesce(sum(lines - bit_count(seen)), 0) FROM ("
            f" SELECT count(*) AS lines, bitstring_agg(line_number, {integer_literal(low)}, {integer_literal(high)})"
            " AS seen"
            " FROM raw.weblogs WHERE partition_key = ? AND line_number IS NOT NULL"
            " GROUP BY source_file)",
            [partition_key],
        )
    repeated_lookups = sum(
        scalar(
            conn,
            f"SELECT count({quote_identifier(key)}) - count(DISTINCT {quote_identifier(key)})"
            f" FROM {qualified_name(table)}",
        )
        for table, key in LOOKUPS.items()
        if table_exists(conn, table)
    )
    return UNIQUE_LINE.result(
        KEY,
        passed=repeated_lines == 0 and null_keys == 0 and repeated_lookups == 0,
        metadata={
            "key": "source_file, line_number",
            "duplicate_keys": int(repeated_lines),
            "null_keys": int(null_keys),
            "lookup_keys_repeated": int(repeated_lookups),
        },
    )


def _month_checks(conn: duckdb.DuckDBPyConnection, partition_key: str) -> list[dg.AssetCheckResult]:
    if not table_exists(conn, "staging.web_requests"):
        return []
    # public or not was decided once per distinct address, by ipaddress (the cache's flag)
    total, bots, public, unknown, invalid = conn.execute(
        f"""SELECT count(*), count(*) FILTER (WHERE w.is_bot), count(*) FILTER (WHERE i.is_public),
                  count(*) FILTER (WHERE i.is_public AND w.country_code IS NULL),
                  count(*) FILTER (WHERE NOT i.is_valid)
           FROM staging.web_requests w LEFT JOIN {IP_CACHE} i ON i.ip = w.client_ip
           WHERE w.partition_key = ?""",
        [partition_key],
    ).fetchall()[0]
    bot_share = bots / total if total else 0.0
    unknown_share = unknown / public if public else 0.0
    return [
        checks.accounting_holds(conn, KEY, SOURCE, ["web_requests"], partition_key,
                                REQUESTS_ACCOUNTED),
        one_row_per_line(conn, partition_key),
        BOT_SHARE.result(KEY, passed=bot_share < 0.5,
                         metadata={"bot_share": round(bot_share, 4), "requests": int(total)}),
        UNKNOWN_COUNTRY_SHARE.result(KEY, passed=unknown_share < 0.1,
                                     metadata={"unknown_country_share": round(unknown_share, 4),
                                               "requests_with_invalid_ip": int(invalid)}),
    ]  # fmt: skip
