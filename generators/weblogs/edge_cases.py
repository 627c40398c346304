"""Edge-case lines: every kind of odd line the log contract lists, written over chosen
anonymous and crawler events. Most are valid real-world lines a robust parser loads;
REJECTED_KINDS can only be quarantined."""

from __future__ import annotations

import polars as pl

from generators.weblogs.calendar import Calendar
from generators.weblogs.lines import combined_line, request_line, stamp_parts
from generators.weblogs.user_agents import CRAWLERS

VHOST = "www.example.com:443"

# Injected in turn, in this order.
MALFORMED_KINDS: tuple[str, ...] = (
    "ipv6_client",
    "escaped_quote",
    "request_dash",
    "request_empty",
    "size_dash",
    "hostname_client",
    "extra_field",
    "vhost_prefix",
    "truncated",
    "blank",
    "non_utf8",
    "invalid_timestamp",
)
REJECTED_KINDS: frozenset[str] = frozenset({"truncated", "blank", "invalid_timestamp"})

# Private-use characters stand in for raw non-UTF-8 bytes inside polars strings; they are
# swapped for the bytes when a file is written.
_LATIN1_O_ACUTE = "\ue000"  # latin-1 "ó" typed into a search box
_UTF16_BOM = "\ue001"  # a UTF-16 BOM pasted into a user agent
NON_UTF8_PLACEHOLDERS: tuple[tuple[str, bytes], ...] = (
    (_LATIN1_O_ACUTE, b"\xf3"),
    (_UTF16_BOM, b"\xff\xfe"),
)


def _client(kind: pl.Expr, ipv6: pl.Series) -> pl.Expr:
    """%h: an IPv6 client, or a reverse-DNS name (HostnameLookups On), or the address."""
    dashed = pl.col("host").str.replace_all(".", "-", literal=True)
    reverse_dns = pl.concat_str([pl.lit("host-"), dashed, pl.lit(".dynamic.example.net")])
    for crawler in CRAWLERS:  # crawlers resolve to their operator's domain
        if crawler.reverse_dns:
            name = pl.concat_str([pl.lit("crawl-"), dashed, pl.lit(f".{crawler.reverse_dns}")])
            is_crawler = pl.col("user_agent") == crawler.user_agent
            reverse_dns = pl.when(is_crawler).then(name).otherwise(reverse_dns)
    return (
        pl.when(kind == "ipv6_client").then(pl.lit(ipv6).gather(pl.col("time") % ipv6.len()))
        .when(kind == "hostname_client").then(reverse_dns)
        .otherwise(pl.col("host"))
    )  # fmt: skip


def _request(kind: pl.Expr, variant: pl.Expr) -> pl.Expr:
    """%r: none at all, an escaped quote or a raw latin-1 byte in the path, or as it was."""
    path = (
        pl.when((kind == "escaped_quote") & (variant == 0)).then(pl.lit(r"/search?q=\"taladro\""))
        .when((kind == "non_utf8") & (variant == 0)).then(pl.lit(f"/search?q=cami{_LATIN1_O_ACUTE}n"))
        .otherwise(pl.col("path"))
    )  # fmt: skip
    return (
        pl.when(kind == "request_dash").then(pl.lit("-"))  # client closed before sending one
        .when(kind == "request_empty").then(pl.lit(""))
        .otherwise(request_line(path))
    )  # fmt: skip


def _status_and_size(kind: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """%>s and %b of requests that never came or had no body."""
    status = (
        pl.when(kind == "request_dash").then(408)
        .when(kind == "request_empty").then(400)
        .when(kind == "size_dash").then(304)  # Apache writes "-" for an empty body
        .otherwise(pl.col("status"))
    )  # fmt: skip
    size = (
        pl.when((kind == "request_dash") | (kind == "size_dash")).then(pl.lit("-"))
        .when(kind == "request_empty").then(pl.lit("0"))
        .otherwise(pl.col("size").cast(pl.String))
    )  # fmt: skip
    return status, size


def _referer_and_agent(kind: pl.Expr, variant: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """The quoted headers: none without a request; escaped quotes or a BOM in the agent."""
    no_request = (kind == "request_dash") | (kind == "request_empty")
    referer = pl.when(no_request).then(pl.lit("-")).otherwise(pl.col("referer"))
    agent = pl.col("user_agent")
    user_agent = (
        pl.when(no_request).then(pl.lit("-"))
        .when((kind == "escaped_quote") & (variant == 1))
        .then(pl.concat_str([pl.lit('\\"'), agent, pl.lit('\\"')]))
        .when((kind == "non_utf8") & (variant == 1))
        .then(pl.concat_str([agent, pl.lit(f" {_UTF16_BOM}")]))
        .otherwise(agent)
    )  # fmt: skip
    return referer, user_agent


def _stamp(kind: pl.Expr, variant: pl.Expr, calendar: Calendar) -> pl.Expr:
    """%t: a day that does not exist, or hour 25, or the event's time."""
    day, clock = stamp_parts(pl.col("time"), calendar)
    return (
        pl.when((kind == "invalid_timestamp") & (variant == 0))
        .then(pl.concat_str([pl.lit("31/Feb/"), day.str.slice(7), clock]))
        .when(kind == "invalid_timestamp")
        .then(pl.concat_str([day, pl.lit("25"), clock.str.slice(2)]))
        .otherwise(pl.concat_str([day, clock]))
    )


def _prefix_and_suffix(kind: pl.Expr, variant: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """A virtual host before the line (vhost_combined), or one more field after it."""
    prefix = pl.when(kind == "vhost_prefix").then(pl.lit(f"{VHOST} ")).otherwise(pl.lit(""))
    time_taken = pl.format(" 0.{}", pl.col("time") % 900 + 100)
    suffix = (
        pl.when((kind == "extra_field") & (variant == 0)).then(pl.lit(' "-"'))
        .when(kind == "extra_field").then(time_taken)
        .otherwise(pl.lit(""))
    )  # fmt: skip
    return prefix, suffix


def edge_case_lines(picked: pl.DataFrame, calendar: Calendar, ipv6: pl.Series) -> pl.Series:
    """Rewrite the chosen events (text columns plus ``kind``, ``variant``) as edge-case lines."""
    kind, variant = pl.col("kind"), pl.col("variant")
    status, size = _status_and_size(kind)
    referer, user_agent = _referer_and_agent(kind, variant)
    prefix, suffix = _prefix_and_suffix(kind, variant)
    line = combined_line(
        _client(kind, ipv6), pl.col("user"), _stamp(kind, variant, calendar),
        _request(kind, variant), status, size, referer, user_agent, prefix, suffix,
    )  # fmt: skip
    # A writer that died mid-line: cut inside the user agent, so no closing quote.
    keep = line.str.len_chars() - 2 - pl.col("user_agent").str.len_chars() // 2
    cut = pl.concat_str([line.str.slice(0, keep), pl.lit("\n")])
    blank = pl.lit("\n")
    return picked.select(
        pl.when(kind == "truncated").then(cut).when(kind == "blank").then(blank).otherwise(line)
    ).to_series()
