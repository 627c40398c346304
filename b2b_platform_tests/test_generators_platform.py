"""The platform simulator: referential story, injected anomalies, determinism."""

import datetime as dt

import numpy as np
import polars as pl
import pytest

import generators.platform.simulator as platform_module  # where STREAM_ABOVE_ORDERS is read
from b2b_common.cuit import is_valid_cuit, normalize_cuit
from generators.config import SCALES, GenerationConfig
from generators.leads import generate_leads
from generators.platform import (
    KEPT_ITEM_COLUMNS,
    KEPT_ORDER_COLUMNS,
    STREAM_ABOVE_ORDERS,
    PlatformData,
    generate_platform,
)
from generators.platform.companies import draw_cuits
from generators.platform.customers import document_numbers
from generators.weblogs import generate_weblogs
from source_db import PLATFORM_TABLES, SourceDatabase

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
    _assert_anomalies_detectable(tiny_platform.tables, tiny_platform.injected, tiny_config)


def _assert_anomalies_detectable(
    t: dict[str, pl.DataFrame], injected: dict[str, int], tiny_config: GenerationConfig
) -> None:
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


# ---------------------------------------------------------------- streamed orders (xlarge)


def test_only_the_scales_above_large_stream_or_change_their_draws():
    # tiny..large keep the one-shot path and their random streams: byte-identical data
    for name in ("tiny", "small", "large"):
        assert SCALES[name].orders <= STREAM_ABOVE_ORDERS and not SCALES[name].distinct_ids
    assert SCALES["xlarge"].orders > STREAM_ABOVE_ORDERS and SCALES["xlarge"].distinct_ids


@pytest.fixture(scope="module")
def streamed(tiny_config, tmp_path_factory) -> tuple[PlatformData, list[dict[str, pl.DataFrame]]]:
    """Tiny data made the xlarge way (orders a month at a time) into a SQLite database,
    with every batch the sink received."""
    database = SourceDatabase(f"sqlite:///{tmp_path_factory.mktemp('streamed') / 'b2b.db'}")
    database.create_schema()
    batches: list[dict[str, pl.DataFrame]] = []
    with pytest.MonkeyPatch.context() as patch, database.loader() as load:
        patch.setattr(platform_module, "STREAM_ABOVE_ORDERS", 0)

        def sink(frames):
            batches.append(dict(frames))
            load(frames)

        data = generate_platform(tiny_config, sink=sink)
    rows = {t: database.read_table(f"SELECT COUNT(*) AS n FROM {t}")["n"][0] for t in load.counts}
    assert rows == load.counts
    return data, batches


def _full_tables(batches: list[dict[str, pl.DataFrame]]) -> dict[str, pl.DataFrame]:
    return {
        **batches[0],
        "orders": pl.concat([b["orders"] for b in batches[1:]]),
        "order_items": pl.concat([b["order_items"] for b in batches[1:]]),
    }


def test_streamed_orders_come_a_month_at_a_time(streamed, tiny_config):
    data, batches = streamed
    assert list(batches[0]) == list(PLATFORM_TABLES[:6])  # the rest first, in load order
    months = batches[1:]
    assert len(months) == tiny_config.scale.months
    assert all(list(b) == ["orders", "order_items"] for b in months)
    tables = _full_tables(batches)
    orders = tables["orders"]
    assert orders["order_id"].to_list() == list(range(1, tiny_config.scale.orders + 1))
    assert not orders["order_number"].is_duplicated().any()
    assert not tables["order_items"].select("order_id", "line_number").is_duplicated().any()
    seen = []  # the one month of each batch's orders (anomalous times aside)
    for batch in months:
        in_range = batch["orders"].filter(
            pl.col("ordered_at").is_between(
                tiny_config.start.replace(tzinfo=None), tiny_config.end.replace(tzinfo=None)
            )
        )
        (month,) = in_range["ordered_at"].dt.strftime("%Y-%m").unique().to_list()
        seen.append(month)
    assert seen == sorted(set(seen)) and seen[0] == tiny_config.first_month
    # What is handed on keeps the columns the log and lead simulators read.
    assert data.tables["orders"].equals(orders.select(KEPT_ORDER_COLUMNS))
    kept_items = tables["order_items"].select(pl.col(KEPT_ITEM_COLUMNS).cast(pl.Int32))
    assert data.tables["order_items"].equals(kept_items)
    assert data.tables["customers"].equals(tables["customers"])


def test_streamed_orders_keep_every_anomaly_detectable(streamed, tiny_config):
    data, batches = streamed
    _assert_anomalies_detectable(_full_tables(batches), data.injected, tiny_config)


def test_streamed_orders_tell_the_logs_and_leads_the_same_story(streamed, tiny_config, tmp_path):
    data, batches = streamed
    full = PlatformData(_full_tables(batches), data.user_profiles, data.injected)
    for name, platform in (("kept", data), ("full", full)):
        generate_weblogs(tiny_config, platform, tmp_path / name / "weblogs")
        generate_leads(tiny_config, platform, tmp_path / name / "leads")
    kept = sorted(p.relative_to(tmp_path / "kept") for p in (tmp_path / "kept").rglob("*.*"))
    assert kept and kept == sorted(
        p.relative_to(tmp_path / "full") for p in (tmp_path / "full").rglob("*.*")
    )
    for path in kept:
        assert (tmp_path / "kept" / path).read_bytes() == (tmp_path / "full" / path).read_bytes()


def test_distinct_ids_are_drawn_again_until_distinct():
    rng = np.random.default_rng(1)
    # 300k numbers from a 43M range repeat ~1,000 times by chance; distinct ones never do
    assert len(np.unique(document_numbers(rng, 300_000))) < 300_000
    assert len(np.unique(document_numbers(rng, 300_000, True))) == 300_000
    cuits = draw_cuits(rng, rng.choice(np.array([30, 33, 20, 27]), 100_000), True)
    assert len(set(cuits)) == len(cuits)
    assert all(is_valid_cuit(c) for c in cuits)
