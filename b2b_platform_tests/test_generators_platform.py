"""The platform simulator: referential story, injected anomalies, determinism."""

import datetime as dt

import polars as pl
import pytest

from b2b_platform.lib.cuit import is_valid_cuit, normalize_cuit
from generators.config import SCALES, GenerationConfig
from generators.platform import generate_platform
from source_db import PLATFORM_TABLES

VALID_STATUSES = {"placed", "paid", "shipped", "delivered", "cancelled", "returned"}


def test_every_table_is_produced_with_contract_columns(tiny_platform):
    expected = {
        "companies": ["company_id", "cuit", "legal_name", "industry", "country_code", "province",
                      "city", "created_at", "updated_at"],
        "orders": ["order_id", "order_number", "company_id", "customer_id", "user_id",
                   "ordered_at", "status", "currency", "shipping_province", "shipping_city",
                   "updated_at"],
        "order_items": ["order_id", "line_number", "product_id", "supplier_id", "quantity",
                        "unit_price", "discount_pct"],
    }  # fmt: skip
    assert set(tiny_platform.tables) == set(PLATFORM_TABLES)
    for table, columns in expected.items():
        assert tiny_platform.tables[table].columns == columns


def test_keys_are_unique(tiny_platform):
    t = tiny_platform.tables
    for table, key in [("companies", ["company_id"]), ("products", ["product_id"]),
                       ("products", ["sku"]), ("customers", ["customer_id"]),
                       ("platform_users", ["username"]), ("orders", ["order_number"]),
                       ("order_items", ["order_id", "line_number"]),
                       ("supplier_products", ["supplier_id", "product_id", "valid_from"])]:  # fmt: skip
        assert not t[table].select(key).is_duplicated().any(), (table, key)


def test_order_users_belong_to_the_order_company(tiny_platform):
    t = tiny_platform.tables
    placed = (
        t["orders"]
        .filter(pl.col("user_id").is_not_null())
        .join(
            t["platform_users"].select("user_id", pl.col("company_id").alias("user_company")),
            on="user_id",
        )
    )
    known = placed.filter(pl.col("company_id").is_in(t["companies"]["company_id"].implode()))
    assert known.height > 0
    assert (known["company_id"] == known["user_company"]).all()
    assert t["orders"]["user_id"].null_count() > 0  # some orders come through the API


def test_every_anomaly_is_injected_and_detectable(tiny_platform, tiny_config):
    t, injected = tiny_platform.tables, tiny_platform.injected
    assert all(count > 0 for count in injected.values()), injected

    companies = t["companies"]
    invalid = [c for c in companies["cuit"] if not is_valid_cuit(c)]
    assert len(invalid) == injected["invalid_cuit"]
    normalized = companies["cuit"].map_elements(normalize_cuit, return_dtype=pl.String)
    assert normalized.is_duplicated().sum() == 2 * injected["duplicate_cuit"]
    assert (
        companies["cuit"].str.contains("-").any() and (~companies["cuit"].str.contains("-")).any()
    )

    customers = t["customers"].with_columns(
        doc=pl.col("document_number").str.replace_all(r"[.\s]", "")
    )
    assert (
        customers.select("document_type", "doc").is_duplicated().sum()
        == 2 * injected["duplicate_customer"]
    )
    bad_docs = customers.filter(~pl.col("doc").str.contains(r"^\d{7,8}$"))
    assert bad_docs.height == injected["invalid_document"]
    as_of = tiny_config.as_of
    implausible = customers.filter(
        (pl.col("date_of_birth") > as_of)
        | (pl.col("date_of_birth") < dt.date(as_of.year - 120, as_of.month, as_of.day))
    )
    assert implausible.height == injected["implausible_birth_date"]

    orders = t["orders"]
    end = tiny_config.end.replace(tzinfo=None)
    start = tiny_config.start.replace(tzinfo=None)
    assert orders.filter(pl.col("ordered_at") >= end).height == injected["future_order"]
    assert orders.filter(pl.col("ordered_at") < start).height == injected["out_of_range_order"]
    status = orders["status"].str.strip_chars().str.to_lowercase()
    assert (~status.is_in(list(VALID_STATUSES))).sum() == injected["invalid_status"]
    assert (orders["status"] != status).sum() > injected["invalid_status"]  # messy but valid
    assert (~orders["company_id"].is_in(companies["company_id"].implode())).sum() == injected[
        "unknown_company"
    ]
    assert (
        ~orders["customer_id"].is_in(t["customers"]["customer_id"].implode())
    ).sum() == injected["unknown_customer"]

    items = t["order_items"]
    assert (items["quantity"] <= 0).sum() == injected["non_positive_quantity"]
    assert (items["unit_price"].cast(pl.Float64) <= 0).sum() == injected["non_positive_price"]
    assert (~items["product_id"].is_in(t["products"]["product_id"].implode())).sum() == injected[
        "unknown_product"
    ]
    assert (~items["order_id"].is_in(orders["order_id"].implode())).sum() == injected[
        "unknown_order"
    ]


def test_prices_follow_the_price_list(tiny_platform):
    t = tiny_platform.tables
    sp = t["supplier_products"]
    assert (sp["price"].cast(pl.Float64) > 0).all()
    assert sp["valid_to"].null_count() > 0 and sp["valid_to"].null_count() < sp.height
    items = t["order_items"].filter(pl.col("unit_price").cast(pl.Float64) > 0)
    offered = items.join(
        sp.select("supplier_id", "product_id").unique(), on=["supplier_id", "product_id"]
    )
    assert (
        offered.height
        == items.filter(pl.col("product_id").is_in(t["products"]["product_id"].implode())).height
    )


def test_orders_span_the_simulated_months(tiny_platform, tiny_config):
    orders = tiny_platform.tables["orders"].filter(
        pl.col("ordered_at").is_between(
            tiny_config.start.replace(tzinfo=None),
            tiny_config.end.replace(tzinfo=None),
            closed="left",
        )
    )
    months = orders["ordered_at"].dt.strftime("%Y-%m").unique().sort().to_list()
    assert len(months) == tiny_config.scale.months
    assert months[0] == tiny_config.first_month


def test_same_seed_same_content_other_seed_other_content(tiny_config):
    a = generate_platform(tiny_config)
    b = generate_platform(tiny_config)
    c = generate_platform(GenerationConfig(scale=SCALES["tiny"], seed=8, as_of=tiny_config.as_of))
    for table in a.tables:
        assert a.tables[table].equals(b.tables[table]), table
    assert not a.tables["orders"].equals(c.tables["orders"])


@pytest.mark.parametrize("rate_field", ["invalid_cuit", "future_order"])
def test_rates_are_configurable(tiny_config, rate_field):
    from dataclasses import replace

    off = replace(tiny_config, anomalies=replace(tiny_config.anomalies, **{rate_field: 0.0}))
    assert generate_platform(off).injected[rate_field] == 0


@pytest.mark.parametrize("seed", range(10))
def test_any_seed_generates(seed, tiny_config):
    data = generate_platform(
        GenerationConfig(scale=SCALES["tiny"], seed=seed, as_of=tiny_config.as_of)
    )
    assert data.tables["orders"].height == SCALES["tiny"].orders
