"""Events as text: Apache/NGINX combined log format lines, a day of them in one polars
expression."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import polars as pl

from generators.weblogs.calendar import DAY_S, SERVER_TZ, Calendar
from generators.weblogs.pages import METHODS, PROTOCOLS
from generators.weblogs.tables import StringTables
from generators.weblogs.user_agents import USER_AGENTS


@cache
def _clock_times() -> pl.Series:
    """``HH:MM:SS`` of every second of a day."""
    second = pl.int_range(DAY_S, eager=True)
    parts = (second // 3600, second // 60 % 60, second % 60)
    two_digits = [part.cast(pl.String).str.zfill(2) for part in parts]
    return pl.select(
        pl.concat_str([pl.lit(part) for part in two_digits], separator=":")
    ).to_series()


def stamp_parts(time: pl.Expr, calendar: Calendar) -> tuple[pl.Expr, pl.Expr]:
    """``dd/Mon/YYYY:`` and ``HH:MM:SS`` by lookup: far faster than strftime per line."""
    day = pl.lit(calendar.day_stamps).gather((time - calendar.start) // DAY_S)
    return day, pl.lit(_clock_times()).gather(time % DAY_S)


def field_texts(tables: StringTables) -> list[pl.Expr]:
    """Event codes → the text of each field (the time, status and size stay numbers)."""

    def look_up(table: pl.Series | Sequence[str], column: str) -> pl.Expr:
        return pl.lit(pl.Series(table, dtype=pl.String)).gather(pl.col(column)).alias(column)

    return [
        pl.col("time"),
        look_up(tables.hosts, "host"),
        look_up(tables.usernames, "user"),
        look_up(METHODS, "method"),
        look_up(tables.paths, "path"),
        look_up(PROTOCOLS, "protocol"),
        pl.col("status"),
        pl.col("size"),
        look_up(tables.referers, "referer"),
        look_up(USER_AGENTS, "user_agent"),
    ]


def combined_line(
    host: pl.Expr, user: pl.Expr, stamp: pl.Expr, request: pl.Expr, status: pl.Expr,
    size: pl.Expr, referer: pl.Expr, user_agent: pl.Expr, prefix: pl.Expr | None = None,
    suffix: pl.Expr | None = None,
) -> pl.Expr:  # fmt: skip
    """%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" and the newline."""
    parts = [] if prefix is None else [prefix]
    parts += [
        host, pl.lit(" - "), user, pl.lit(" ["), stamp, pl.lit(f' {SERVER_TZ}] "'), request,
        pl.lit('" '), status.cast(pl.String), pl.lit(" "), size.cast(pl.String), pl.lit(' "'),
        referer, pl.lit('" "'), user_agent, pl.lit('"'),
    ]  # fmt: skip
    if suffix is not None:
        parts.append(suffix)
    parts.append(pl.lit("\n"))
    return pl.concat_str(parts)


def request_line(path: pl.Expr) -> pl.Expr:
    """%r: method, path and protocol."""
    return pl.concat_str([pl.col("method"), path, pl.col("protocol")], separator=" ")


def format_lines(codes: pl.DataFrame, calendar: Calendar, tables: StringTables) -> pl.Series:
    """One line per event of ``codes`` (event columns)."""
    day, clock = stamp_parts(pl.col("time"), calendar)
    line = combined_line(
        pl.col("host"), pl.col("user"), pl.concat_str([day, clock]), request_line(pl.col("path")),
        pl.col("status"), pl.col("size"), pl.col("referer"), pl.col("user_agent"),
    )  # fmt: skip
    return (
        codes.lazy()
        .select(field_texts(tables))
        .select(line=line)
        .collect(engine="streaming")
        .to_series()
    )
