"""Order lines: products by each country's own popularity ranking, the supplier's price
on the order date, quantities and discounts, and the impossible and orphan lines."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from generators import reference as ref
from generators.config import GenerationConfig
from generators.platform.columns import (
    MONEY,
    PERCENT,
    anomaly_mask,
    build_frame,
    count_injected,
    point_past,
)

# Countries whose buyers rank the catalogue their own way (one ranking each).
_RANKED_COUNTRIES: list[str] = sorted(set(ref.COMPANY_COUNTRIES))


@dataclass(frozen=True)
class Offers:
    """Who sells each product, and the price lists by supplier, product and validity."""

    suppliers: pl.DataFrame  # product_id, supplier_id (sorted list)
    prices: pl.DataFrame  # supplier_id, product_id, valid_from, price; sorted by valid_from

    @classmethod
    def of(cls, supplier_products: pl.DataFrame) -> Offers:
        return cls(
            supplier_products.group_by("product_id").agg(pl.col("supplier_id").unique().sort()),
            supplier_products.select("supplier_id", "product_id", "valid_from", "price").sort(
                "valid_from"
            ),
        )


def lines_per_order(rng: np.random.Generator, n_orders: int) -> np.ndarray:
    return np.clip(1 + rng.poisson(1.8, size=n_orders), 1, 8)


def country_rankings(rng: np.random.Generator, n_products: int) -> np.ndarray:
    """Per country, product positions from most to least popular."""
    return np.stack([rng.permutation(n_products) for _ in _RANKED_COUNTRIES])


def draw_order_items(
    config: GenerationConfig,
    rng: np.random.Generator,
    orders: pl.DataFrame,
    profiles: pl.DataFrame,
    products: pl.DataFrame,
    supplier_products: pl.DataFrame,
    injected: dict[str, int],
) -> pl.DataFrame:
    """The lines of every order in one batch (scales up to STREAM_ABOVE_ORDERS)."""
    line_counts = lines_per_order(rng, orders.height)
    rankings = country_rankings(rng, products.height)
    return item_batch(
        config, rng, orders, line_counts, rankings, profiles, products,
        Offers.of(supplier_products), injected, total_orders=orders.height,
        orphan_seed=config.seed + 2,
    )  # fmt: skip


def item_batch(
    config: GenerationConfig,
    rng: np.random.Generator,
    orders: pl.DataFrame,
    line_counts: np.ndarray,
    rankings: np.ndarray,
    profiles: pl.DataFrame,
    products: pl.DataFrame,
    offers: Offers,
    injected: dict[str, int],
    *,
    total_orders: int,
    orphan_seed: int,
) -> pl.DataFrame:
    """The lines of a batch of orders (``line_counts`` each), plus orphan lines whose order
    ids lie past every order (``total_orders`` of them in all batches)."""
    order_idx = np.repeat(np.arange(orders.height), line_counts)
    line_number = (
        np.arange(len(order_idx)) - np.repeat(np.cumsum(line_counts) - line_counts, line_counts) + 1
    )
    product_ids = _popular_products(rng, orders, order_idx, rankings, profiles, products)
    items = _priced_lines(rng, orders, order_idx, line_number, product_ids, offers)
    lines = _line_values(config, rng, items, products.height, injected)
    orphans = _orphans(lines, config.anomalies.unknown_order, total_orders, orphan_seed)
    injected["unknown_order"] = injected.get("unknown_order", 0) + orphans.height
    return pl.concat([lines, orphans]).with_columns(
        pl.col("unit_price").cast(MONEY), pl.col("discount_pct").cast(PERCENT)
    )


def _popular_products(
    rng: np.random.Generator,
    orders: pl.DataFrame,
    order_idx: np.ndarray,
    rankings: np.ndarray,
    profiles: pl.DataFrame,
    products: pl.DataFrame,
) -> np.ndarray:
    """A product per line, Zipf-distributed over the ranking of the buyer's home country."""
    # Popularity differs by country: each country ranks the catalogue its own way.
    order_country = (
        orders.select("user_id")
        .join(profiles.select("user_id", "home_country"), on="user_id", how="left")
        .get_column("home_country")
        .fill_null("AR")
        .to_numpy()
    )
    country_idx = np.searchsorted(_RANKED_COUNTRIES, order_country[order_idx])
    country_idx = np.clip(country_idx, 0, len(_RANKED_COUNTRIES) - 1)
    rank = np.minimum(rng.zipf(1.25, size=len(order_idx)) - 1, products.height - 1)
    return products["product_id"].to_numpy()[rankings[country_idx, rank]]


def _priced_lines(
    rng: np.random.Generator,
    orders: pl.DataFrame,
    order_idx: np.ndarray,
    line_number: np.ndarray,
    product_ids: np.ndarray,
    offers: Offers,
) -> pl.DataFrame:
    """order_id, line_number, product_id, one of the product's suppliers and its price."""
    items = build_frame(
        {
            "order_id": orders["order_id"].to_numpy()[order_idx],
            "line_number": line_number.astype(np.int64),
            "product_id": product_ids.astype(np.int64),
            "pick": rng.random(len(order_idx)),
            "ordered_on": orders["ordered_at"].to_numpy()[order_idx].astype("datetime64[D]"),
        }
    ).with_columns(pl.col("ordered_on").cast(pl.Date))
    items = items.join(offers.suppliers, on="product_id", how="left").with_columns(
        supplier_id=pl.col("supplier_id").list.get(
            (pl.col("pick") * pl.col("supplier_id").list.len()).cast(pl.Int64)
        )
    )
    # The price in force on the order date for that supplier and product.
    return (
        items.sort("ordered_on")
        .join_asof(
            offers.prices,
            left_on="ordered_on",
            right_on="valid_from",
            by=["supplier_id", "product_id"],
            strategy="backward",
            check_sortedness=False,
        )
        .sort("order_id", "line_number")
    )


def _line_values(
    config: GenerationConfig,
    rng: np.random.Generator,
    items: pl.DataFrame,
    n_products: int,
    injected: dict[str, int],
) -> pl.DataFrame:
    """The order_items columns; some lines with a quantity or price of zero or less, or an
    unknown product (one defect a line at most)."""
    rates = config.anomalies
    count = items.height
    unit_price = (
        items["price"]
        .cast(pl.Float64)
        .fill_null(strategy="forward")
        .fill_null(1000.0)
        .to_numpy()
        .copy()
    )
    quantity = np.clip(rng.geometric(0.12, size=count), 1, 200)
    discount = np.where(
        rng.random(count) < 0.2, rng.choice([5.0, 10.0, 15.0, 20.0], size=count), 0.0
    )
    bad_quantity = anomaly_mask(rng, count, rates.non_positive_quantity)
    quantity[bad_quantity] = -rng.integers(0, 5, size=int(bad_quantity.sum()))
    bad_price = anomaly_mask(rng, count, rates.non_positive_price) & ~bad_quantity
    unit_price[bad_price] = np.where(
        rng.random(int(bad_price.sum())) < 0.5, 0.0, -unit_price[bad_price]
    )
    product_ids = items["product_id"].to_numpy().copy()
    unknown = point_past(
        rng, product_ids, n_products, rates.unknown_product, ~(bad_quantity | bad_price)
    )
    count_injected(injected, "non_positive_quantity", bad_quantity)
    count_injected(injected, "non_positive_price", bad_price)
    count_injected(injected, "unknown_product", unknown)
    return build_frame(
        {
            "order_id": items["order_id"],
            "line_number": items["line_number"],
            "product_id": product_ids,
            "supplier_id": items["supplier_id"].fill_null(1),
            "quantity": quantity.astype(np.int64),
            "unit_price": np.round(unit_price, 2),
            "discount_pct": discount,
        }
    )


def _orphans(lines: pl.DataFrame, rate: float, total_orders: int, seed: int) -> pl.DataFrame:
    """Orphans: lines whose order the legacy service never wrote."""
    return (
        lines.sample(n=max(1, round(lines.height * rate)), seed=seed)
        .with_columns(
            order_id=pl.col("order_id") + total_orders + 10_000,
            line_number=pl.lit(1, dtype=pl.Int64),
        )
        .unique("order_id", keep="first", maintain_order=True)
    )
