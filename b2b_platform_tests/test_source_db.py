"""The platform schema in both dialects, loaded with the tiny simulated data."""

import pytest

from source_db import PLATFORM_TABLES, SourceDatabase, SourceDatabaseError


def _round_trip(database: SourceDatabase, platform) -> None:
    database.create_schema(drop_existing=True)
    counts = database.load_tables(platform.tables)
    assert counts == {t: platform.tables[t].height for t in PLATFORM_TABLES}
    for table in PLATFORM_TABLES:
        frame = database.read_table(f"SELECT COUNT(*) AS n FROM {database.qualified(table)}")
        assert frame["n"][0] == platform.tables[table].height, table
    orders = database.read_table(
        f"SELECT order_id, ordered_at, user_id FROM {database.qualified('orders')} ORDER BY order_id"
    )
    assert orders["user_id"].null_count() == platform.tables["orders"]["user_id"].null_count()
    # loading again after drop_existing replaces, never duplicates
    database.create_schema(drop_existing=True)
    database.load_tables(platform.tables)
    again = database.read_table(f"SELECT COUNT(*) AS n FROM {database.qualified('orders')}")
    assert again["n"][0] == platform.tables["orders"].height


def test_sqlite_schema_and_load(tmp_path, tiny_platform):
    _round_trip(SourceDatabase(f"sqlite:///{tmp_path / 'src' / 'b2b.db'}"), tiny_platform)


@pytest.mark.postgres
def test_postgresql_schema_and_load(postgres_url, tiny_platform):
    database = SourceDatabase(postgres_url)
    assert database.qualified("orders") == "b2b.orders"
    _round_trip(database, tiny_platform)
    money = database.read_table(
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_schema = 'b2b' AND table_name = 'order_items' AND column_name = 'unit_price'"
    )
    assert money["data_type"][0] == "numeric"


def test_orders_have_no_enforced_foreign_keys(tmp_path, tiny_platform):
    database = SourceDatabase(f"sqlite:///{tmp_path / 'b2b.db'}")
    database.create_schema()
    # an order for a company that does not exist is accepted: the warehouse must catch it
    orphan = tiny_platform.tables["orders"].head(1).with_columns(company_id=999_999)
    database.load_tables({"orders": orphan})


@pytest.mark.parametrize(
    "url", ["mysql://localhost/x", "sqlite:///", "not a url", "postgresql://nobody@127.0.0.1:1/x"]
)
def test_bad_urls_raise_one_line_errors(url):
    with pytest.raises(SourceDatabaseError) as err:
        SourceDatabase(url).create_schema()
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("dialect", "prefix"), [("sqlite", ""), ("postgresql", "b2b.")])
def test_the_drop_file_drops_every_table_referencing_ones_first(dialect, prefix):
    from source_db.database import DDL_DIR

    text = (DDL_DIR / f"{dialect}_drop.sql").read_text()
    dropped = [line.removeprefix("DROP TABLE IF EXISTS ").rstrip(";")
               for line in text.splitlines() if line.startswith("DROP")]  # fmt: skip
    assert dropped == [f"{prefix}{table}" for table in reversed(PLATFORM_TABLES)]
