"""The catalogue: products, and which suppliers offer each one at what price over time."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from generators import reference as ref
from generators.config import GenerationConfig
from generators.platform.columns import MONEY, build_frame, timestamps


def draw_products(config: GenerationConfig, rng: np.random.Generator) -> pl.DataFrame:
    """Products named after their category's nouns and a brand, numbered in their SKU."""
    count = config.scale.products
    categories = list(ref.PRODUCT_CATEGORIES)
    category_idx = rng.integers(0, len(categories), size=count)
    noun_pick = rng.random(count)
    brands = np.array(ref.BRANDS, dtype=object)[rng.integers(0, len(ref.BRANDS), size=count)]
    ids = np.arange(1, count + 1, dtype=np.int64)
    codes = [ref.PRODUCT_CATEGORIES[categories[c]][0] for c in category_idx]
    nouns = [
        ref.PRODUCT_CATEGORIES[categories[c]][1][
            int(u * len(ref.PRODUCT_CATEGORIES[categories[c]][1]))
        ]
        for c, u in zip(category_idx, noun_pick, strict=True)
    ]
    created = timestamps(rng, config.start - dt.timedelta(days=2 * 365), config.start, count)
    return build_frame(
        {
            "product_id": ids,
            "sku": [f"{code}-{i:06d}" for code, i in zip(codes, ids, strict=True)],
            "name": [
                f"{noun} {brand} #{i}" for noun, brand, i in zip(nouns, brands, ids, strict=True)
            ],
            "category": np.array(categories, dtype=object)[category_idx],
            "brand": brands,
            "unit": np.array(ref.UNITS, dtype=object)[rng.integers(0, len(ref.UNITS), size=count)],
            "created_at": created,
        },
        schema_overrides={"category": pl.String, "brand": pl.String, "unit": pl.String},
    ).with_columns(updated_at=pl.col("created_at") + pl.duration(days=10))


def draw_supplier_products(
    config: GenerationConfig,
    rng: np.random.Generator,
    suppliers: pl.DataFrame,
    products: pl.DataFrame,
) -> pl.DataFrame:
    """1-3 suppliers per product; a third of the offers get a mid-range price increase."""
    offers = _offers(rng, suppliers, products)
    count = offers.height
    valid_from = np.datetime64(config.first_day - dt.timedelta(days=90)) - rng.integers(
        0, 365, size=count
    ).astype("timedelta64[D]")
    range_days = (config.as_of - config.first_day).days + 1
    change = rng.random(count) < 1 / 3
    change_day = np.datetime64(config.first_day) + rng.integers(
        1, max(range_days, 2), size=count
    ).astype("timedelta64[D]")
    first = offers.with_columns(
        valid_from=pl.Series(valid_from),
        valid_to=pl.Series(
            np.where(change, change_day - np.timedelta64(1, "D"), np.datetime64("NaT"))
        ),
    )
    raised = offers.filter(pl.Series(change)).with_columns(
        price=pl.col("price") * pl.Series(rng.uniform(1.1, 1.6, size=int(change.sum()))),
        valid_from=pl.Series(change_day[change]),
        valid_to=pl.lit(None, dtype=pl.Date),
    )
    return (
        pl.concat([first, raised])
        .with_columns(
            pl.col("price").round(2).cast(MONEY),
            pl.col("valid_from").cast(pl.Date),
            pl.col("valid_to").cast(pl.Date),
            currency=pl.lit("ARS"),
        )
        .select("supplier_id", "product_id", "price", "currency", "valid_from", "valid_to")
        .sort("supplier_id", "product_id", "valid_from")
    )


def _offers(
    rng: np.random.Generator, suppliers: pl.DataFrame, products: pl.DataFrame
) -> pl.DataFrame:
    """supplier_id, product_id and a first price near the category's median, once per pair."""
    offers_per_product = rng.integers(1, 4, size=products.height)
    product_ids = np.repeat(products["product_id"].to_numpy(), offers_per_product)
    supplier_ids = rng.integers(1, suppliers.height + 1, size=len(product_ids))
    medians = np.array([ref.PRODUCT_CATEGORIES[c][2] for c in products["category"].to_list()])
    price = np.repeat(medians * rng.lognormal(0, 0.35, size=products.height), offers_per_product)
    price = price * rng.uniform(0.9, 1.1, size=len(price))
    return build_frame(
        {"supplier_id": supplier_ids, "product_id": product_ids, "price": price}
    ).unique(["supplier_id", "product_id"], keep="first", maintain_order=True)
