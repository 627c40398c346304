"""generate_platform: every platform table in load order, built in one go or, above
STREAM_ABOVE_ORDERS orders, with orders and their lines handed to the sink a month at a time."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import polars as pl

from generators.config import GenerationConfig
from generators.draws import largest_remainder, seeded_faker
from generators.platform.catalogue import draw_products, draw_supplier_products
from generators.platform.companies import draw_companies, draw_suppliers
from generators.platform.customers import draw_customers
from generators.platform.order_items import (
    Offers,
    country_rankings,
    draw_order_items,
    item_batch,
    lines_per_order,
)
from generators.platform.orders import Buyers, draw_orders, order_batch, order_days
from generators.platform.users import draw_users

# Above this many orders, orders and order lines are generated and handed to the sink a
# month at a time: built in one go they peak at ~1.1 GiB per million orders (large), so
# ~11 GiB for xlarge's 10M orders and 28M lines.
STREAM_ABOVE_ORDERS = 2_000_000
# What PlatformData keeps of streamed orders and lines: the columns the web log and lead
# simulators read (the full rows are in the source database). Line ids are kept as Int32:
# there are ~28M of them.
KEPT_ORDER_COLUMNS: tuple[str, ...] = ("order_id", "company_id", "user_id", "ordered_at", "status")
KEPT_ITEM_COLUMNS: tuple[str, ...] = ("order_id", "line_number", "product_id")

# Receives batches of platform tables in load order (SourceDatabase.loader() is one).
TableSink = Callable[[Mapping[str, pl.DataFrame]], None]


@dataclass(frozen=True)
class PlatformData:
    """The platform tables as loaded into the source database, plus the story behind them.

    When orders were streamed (see generate_platform), ``orders`` and ``order_items`` hold
    only KEPT_ORDER_COLUMNS and KEPT_ITEM_COLUMNS.
    """

    tables: dict[str, pl.DataFrame]
    # user_id, username, company_id, home_country, travel_country (null unless a traveller)
    user_profiles: pl.DataFrame
    # what was injected, by anomaly kind, so tests can compare with what the warehouse finds
    injected: dict[str, int]


def generate_platform(config: GenerationConfig, sink: TableSink | None = None) -> PlatformData:
    """Build every platform table for the configured scale, seed and date range.

    With a sink, the tables are also handed to it in load order. Above STREAM_ABOVE_ORDERS
    orders the sink gets the other tables first, then orders and order lines a month at a
    time, and the returned data keeps only the order columns the other simulators read.
    """
    rng = np.random.default_rng(config.seed)
    fake = seeded_faker(config.seed)
    injected: dict[str, int] = {}

    companies = draw_companies(config, rng, fake, injected)
    suppliers = draw_suppliers(config, rng, companies)
    products = draw_products(config, rng)
    supplier_products = draw_supplier_products(config, rng, suppliers, products)
    customers = draw_customers(config, rng, fake, injected)
    users, profiles = draw_users(config, rng, fake, companies)
    tables = {
        "companies": companies,
        "suppliers": suppliers,
        "products": products,
        "supplier_products": supplier_products,
        "customers": customers,
        "platform_users": users,
    }
    if sink is not None and config.scale.orders > STREAM_ABOVE_ORDERS:
        sink(tables)
        tables["orders"], tables["order_items"] = _stream_orders(
            config, rng, tables, profiles, injected, sink
        )
        return PlatformData(tables=tables, user_profiles=profiles, injected=injected)

    orders = draw_orders(config, rng, companies, customers, users, injected)
    tables["orders"] = orders
    tables["order_items"] = draw_order_items(
        config, rng, orders, profiles, products, supplier_products, injected
    )
    if sink is not None:
        sink(tables)
    return PlatformData(tables=tables, user_profiles=profiles, injected=injected)


def _stream_orders(
    config: GenerationConfig,
    rng: np.random.Generator,
    tables: dict[str, pl.DataFrame],
    profiles: pl.DataFrame,
    injected: dict[str, int],
    sink: TableSink,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Orders and their lines one calendar month at a time, each month handed to ``sink``.

    Orders are shared out over the months by their day weights and numbered on across
    months, so together they follow the same story as one big batch (anomaly counts
    agree to rounding). Returns the KEPT_* columns of all of them.
    """
    products = tables["products"]
    buyers = Buyers.of(rng, tables["platform_users"])
    rankings = country_rankings(rng, products.height)
    offers = Offers.of(tables["supplier_products"])
    kept_orders: list[pl.DataFrame] = []
    kept_items: list[pl.DataFrame] = []
    first_id = 1
    for month, (window, count) in enumerate(_month_windows(config)):
        if count == 0:
            continue
        orders = order_batch(
            config, rng, buyers, tables["companies"], tables["customers"], injected,
            count=count, first_id=first_id, window=window,
        )  # fmt: skip
        items = item_batch(
            config, rng, orders, lines_per_order(rng, count), rankings, profiles, products,
            offers, injected, total_orders=config.scale.orders,
            orphan_seed=config.seed + 2 + month,
        )  # fmt: skip
        sink({"orders": orders, "order_items": items})
        kept_orders.append(orders.select(KEPT_ORDER_COLUMNS))
        kept_items.append(items.select(pl.col(KEPT_ITEM_COLUMNS).cast(pl.Int32)))
        first_id += count
    return pl.concat(kept_orders, rechunk=False), pl.concat(kept_items, rechunk=False)


def _month_windows(config: GenerationConfig) -> list[tuple[tuple[int, int], int]]:
    """Each calendar month's day indices (start, stop) and its share of the orders."""
    days, weight = order_days(config)
    month = days.astype("datetime64[M]")
    bounds = np.flatnonzero(np.r_[True, month[1:] != month[:-1], True]).tolist()
    windows = list(pairwise(bounds))
    month_weights = np.array([weight[start:stop].sum() for start, stop in windows])
    total = config.scale.orders
    counts = largest_remainder(total * month_weights / month_weights.sum(), total)
    return list(zip(windows, counts.tolist(), strict=True))
