"""The plan of a run, decided before the first month is generated: who places which order
when, who browses when, and how many lines each kind of traffic gets per month."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import NamedTuple, Protocol

import numpy as np
import polars as pl

from generators.config import GenerationConfig
from generators.draws import largest_remainder
from generators.weblogs.calendar import BUSINESS_HOURS, SERVER_UTC_OFFSET_S, Calendar
from generators.weblogs.edge_cases import MALFORMED_KINDS
from generators.weblogs.pages import Products, build_products
from generators.weblogs.population import AddressPools, Users, build_address_pools, build_users
from generators.weblogs.streams import BROWSE_STREAM, ORDERS_STREAM, random_stream
from generators.weblogs.tables import StringTables


class PlatformLike(Protocol):
    """What the simulator needs of ``generators.platform.PlatformData``."""

    @property
    def tables(self) -> Mapping[str, pl.DataFrame]: ...

    @property
    def user_profiles(self) -> pl.DataFrame: ...


@dataclass(frozen=True)
class Orders:
    """One checkout session per order a user placed in the range, sorted by login time."""

    login_at: np.ndarray  # server-local epoch seconds
    checkout_at: np.ndarray  # = ordered_at
    user: np.ndarray  # uidx
    item_session: np.ndarray  # items with an existing product, one per product: session ...
    item_product: np.ndarray  # ... and product position
    item_count: np.ndarray
    failed_login: np.ndarray  # a failed login attempt first
    extra_views: np.ndarray  # products browsed but not bought (set by the budget)

    @property
    def count(self) -> int:
        return len(self.login_at)

    def fixed_lines(self) -> int:
        return int((2 + 2 * self.item_count + self.failed_login).sum())


def _naive_utc(column: str, dtype: pl.DataType) -> pl.Expr:
    expr = pl.col(column)
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        expr = expr.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return expr


def _orders_in_range(config: GenerationConfig, orders: pl.DataFrame, users: Users) -> pl.DataFrame:
    """order_id, uidx and checkout time of the users' orders in the range, by checkout."""
    start = config.start.replace(tzinfo=None)
    end = config.end.replace(tzinfo=None)
    # Lazy, and only the columns that are used: at the xlarge scale (10M orders, 28M lines)
    # eager steps would hold several copies of the lines at once.
    return (
        orders.lazy()
        .select(
            pl.col("order_id").cast(pl.Int64),
            pl.col("user_id").cast(pl.Int64),
            _naive_utc("ordered_at", orders.schema["ordered_at"]).alias("ordered_at"),
        )
        .filter(
            pl.col("user_id").is_not_null()
            & (pl.col("ordered_at") >= start)
            & (pl.col("ordered_at") < end)
        )
        .unique("order_id", keep="first", maintain_order=True)
        .join(users.user_rows.lazy(), on="user_id", how="inner")
        .select(
            "order_id", "uidx", checkout_at=pl.col("ordered_at").dt.epoch("s") + SERVER_UTC_OFFSET_S
        )
        .sort("checkout_at", "order_id")
        .collect()
    )


def _order_items(items: pl.DataFrame, sessions: pl.DataFrame, products: Products) -> pl.DataFrame:
    """Session and product of the orders' items with a known product, once per product."""
    return (
        items.lazy()
        .select(
            pl.col("order_id").cast(pl.Int64),
            pl.col("line_number").cast(pl.Int64),
            pl.col("product_id").cast(pl.Int64),
        )
        .filter(pl.col("product_id").is_in(pl.Series(products.ids).implode()))
        .join(sessions.lazy().select("order_id", "session"), on="order_id", how="inner")
        .select("session", "line_number", "product_id")
        .sort("session", "line_number")
        .unique(["session", "product_id"], keep="first", maintain_order=True)
        .collect()
    )


def _plan_orders(
    config: GenerationConfig, platform: PlatformLike, users: Users, products: Products
) -> Orders:
    """A checkout session per order: its login time, user, failed login and items."""
    sessions = _orders_in_range(config, platform.tables["orders"], users)
    rng = random_stream(config, ORDERS_STREAM)
    n = sessions.height
    # Log in minutes to a couple of hours before checking out (median ~20 minutes).
    delta = np.clip(np.exp(rng.normal(np.log(1200), 0.9, n)), 60, 9000).astype(np.int64)
    login_at = pl.col("checkout_at") - pl.Series(delta)
    sessions = sessions.with_columns(login_at=login_at).sort("login_at", "order_id")
    sessions = sessions.with_columns(session=pl.int_range(pl.len(), dtype=pl.Int64))
    items = _order_items(platform.tables["order_items"], sessions, products)
    item_session = items["session"].to_numpy()
    return Orders(
        login_at=sessions["login_at"].to_numpy(),
        checkout_at=sessions["checkout_at"].to_numpy(),
        user=sessions["uidx"].to_numpy(),
        item_session=item_session,
        item_product=np.searchsorted(products.ids, items["product_id"].to_numpy()),
        item_count=np.bincount(item_session, minlength=n).astype(np.int64),
        failed_login=rng.random(n) < 0.04,
        extra_views=np.zeros(n, dtype=np.int64),
    )


@dataclass(frozen=True)
class Browse:
    """Sessions of users who log in and look around without ordering, sorted by start."""

    start_at: np.ndarray
    user: np.ndarray  # uidx
    page_count: np.ndarray
    failed_login: np.ndarray

    def lines(self) -> int:
        return int((1 + self.page_count + self.failed_login).sum())


def _plan_browse(config: GenerationConfig, users: Users, calendar: Calendar, target: int) -> Browse:
    """Browse sessions adding up to about ``target`` lines, spread over users and days."""
    rng = random_stream(config, BROWSE_STREAM)
    estimate = int(target / 6.5 * 1.2) + 8 if users.count and target > 0 else 0
    page_count = 1 + rng.poisson(4.5, estimate)
    failed = rng.random(estimate) < 0.03
    count = int(np.searchsorted(np.cumsum(1 + page_count + failed), target, side="right"))
    page_count, failed = page_count[:count], failed[:count]
    # Nearly every user gets a session before the more active ones get more.
    covered = min(count, int(0.97 * users.count))
    activity = np.exp(rng.normal(0, 1, users.count))
    more = (
        rng.choice(users.count, count - covered, p=activity / activity.sum())
        if count > covered
        else np.zeros(0, dtype=np.int64)
    )
    user = np.concatenate([rng.permutation(users.count)[:covered], more]).astype(np.int64)
    by_day = calendar.day_weights((0.25, 0.12), 0.3)
    start_at = calendar.sample_times(rng, count, by_day, BUSINESS_HOURS)
    order = np.argsort(start_at, kind="stable")
    return Browse(start_at[order], user[order], page_count[order], failed[order])


class _LineBudget(NamedTuple):
    extra_views_per_order: float  # mean of the Poisson draw per order
    browse_lines: int
    crawler_lines: int
    health_check_lines: int


def _plan_budget(config: GenerationConfig, orders: Orders, users: Users) -> _LineBudget:
    """Extra product views per order, browse lines, crawler lines and health check lines.

    Order sessions are fixed by the database; the rest is sized to reach ~log_lines, and
    anonymous traffic takes whatever is left (see make_plan).
    """
    total = config.scale.log_lines
    health = round(0.01 * total)
    room = max(total - orders.fixed_lines() - health, 0)
    crawlers, anonymous = 0.15 * total, 0.20 * total
    if room < 1.5 * (crawlers + anonymous):  # many orders for few lines: shrink the rest alike
        scale = room / (1.5 * (crawlers + anonymous))
        crawlers, anonymous = crawlers * scale, anonymous * scale
    for_users = room - crawlers - anonymous if users.count else 0.0
    extra = 0.3 * for_users if orders.count else 0.0
    per_order = extra / orders.count if orders.count else 0.0
    return _LineBudget(per_order, int(for_users - extra), round(crawlers), health)


def _split_by_weight(total: int, weights: np.ndarray) -> np.ndarray:
    """Integer shares of ``total`` proportional to ``weights`` (largest remainder)."""
    if total <= 0 or weights.sum() <= 0:
        return np.zeros(len(weights), dtype=np.int64)
    return largest_remainder(total * weights / weights.sum(), total)


@dataclass(frozen=True)
class Plan:
    """Everything decided before the first month is generated."""

    config: GenerationConfig
    calendar: Calendar
    users: Users
    products: Products
    orders: Orders
    browse: Browse
    pools: AddressPools
    tables: StringTables
    # Per month: first session of orders/browse (then the end of the last month), and lines
    # of anonymous/crawler/health check traffic and edge cases to inject.
    first_order: np.ndarray
    first_browse: np.ndarray
    anonymous_lines: np.ndarray
    crawler_lines: np.ndarray
    health_check_lines: np.ndarray
    edge_cases: np.ndarray


def make_plan(config: GenerationConfig, platform: PlatformLike) -> Plan:
    """Users, products and sessions from the platform, and the month-by-month line budget."""
    calendar = Calendar.for_config(config)
    products = build_products(config, platform.tables["products"])
    users = build_users(config, platform.user_profiles)
    orders = _plan_orders(config, platform, users, products)
    budget = _plan_budget(config, orders, users)
    extra_views = random_stream(config, ORDERS_STREAM, 1).poisson(
        budget.extra_views_per_order, orders.count
    )
    orders = replace(orders, extra_views=extra_views)
    browse = _plan_browse(config, users, calendar, budget.browse_lines)
    fixed = orders.fixed_lines() + int(orders.extra_views.sum()) + browse.lines()
    # Anonymous visitors take up the slack, so the total lands on log_lines.
    others = budget.crawler_lines + budget.health_check_lines
    anonymous_lines = max(config.scale.log_lines - fixed - others, 0)
    pools = build_address_pools(config, anonymous_lines)
    by_day = calendar.day_weights((0.7, 0.6), 0.3)
    by_month = np.array(
        [by_day[slice(*calendar.month_days(month))].sum() for month in range(calendar.n_months)]
    )
    rate = config.anomalies.malformed_line
    edge_cases = max(round(rate * config.scale.log_lines), len(MALFORMED_KINDS)) if rate > 0 else 0
    months = np.arange(calendar.n_months + 1)
    return Plan(
        config=config,
        calendar=calendar,
        users=users,
        products=products,
        orders=orders,
        browse=browse,
        pools=pools,
        tables=StringTables.build(users, pools, products),
        first_order=np.searchsorted(calendar.month_of(orders.login_at), months),
        first_browse=np.searchsorted(calendar.month_of(browse.start_at), months),
        anonymous_lines=_split_by_weight(anonymous_lines, by_month),
        crawler_lines=_split_by_weight(budget.crawler_lines, by_month),
        health_check_lines=_split_by_weight(budget.health_check_lines, by_month),
        edge_cases=_split_by_weight(edge_cases, by_month),
    )
