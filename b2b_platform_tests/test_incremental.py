"""A refresh costs what changed: `b2b run` builds only the slices whose sources, inputs,
code or settings moved, and what it builds equals a clean build."""

from __future__ import annotations

import gzip
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from b2b_platform.defs.platform_db.fingerprints import table_fingerprint
from b2b_platform.lib.resources import SourceDatabaseResource
from b2b_platform_tests.helpers import query, snapshot, warehouse_env


@pytest.fixture
def own_sources(tiny_sources, tmp_path: Path) -> Path:
    """A private copy of the tiny sources, free to change."""
    data_dir, _ = tiny_sources
    copy = tmp_path / "data"
    shutil.copytree(data_dir, copy)
    return copy


def b2b_run(
    data_dir: Path, warehouse: Path, *args: str, **settings: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **warehouse_env(data_dir, warehouse),
           "DAGSTER_HOME": str(warehouse.parent / "dagster_home"), "B2B_AUTOMATION": "off",
           **settings}  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "b2b_platform.cli", "run", "--in-process", *args],
                            env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result


def steps(warehouse: Path) -> int:
    return query(warehouse, "SELECT count(*) FROM etl.run_log")[0][0]


def latest_step(warehouse: Path) -> object:
    return query(warehouse, "SELECT max(started_at) FROM etl.run_log")[0][0]


def built_since(warehouse: Path, mark: object) -> dict[str, set[str | None]]:
    """asset key (as the step names it) -> the months its steps built after `mark`."""
    built: dict[str, set[str | None]] = {}
    for asset, month in query(warehouse, "SELECT asset_key, partition_key FROM etl.run_log"
                              " WHERE started_at > ?", [mark]):  # fmt: skip
        for key in asset.split(","):
            built.setdefault(key, set()).add(month)
    return built


REPORTS = ("reports", "core")


def test_refresh_builds_only_what_changed_and_equals_a_clean_build(own_sources, tmp_path):
    warehouse = tmp_path / "wh" / "b2b.duckdb"
    b2b_run(own_sources, warehouse)
    before = steps(warehouse)

    nothing = b2b_run(own_sources, warehouse)
    assert "up to date: nothing changed" in nothing.stdout
    assert steps(warehouse) == before  # not one step ran
    # a setting that shapes data changed: the plan names it
    plan = b2b_run(own_sources, warehouse, "--plan", B2B_MAX_REJECT_RATE="0.12").stdout
    assert "staging/leads: changed: B2B_MAX_REJECT_RATE" in plan, plan

    # a late status change on an old order: its month and what reads it, nothing else
    with sqlite3.connect(own_sources / "source" / "b2b_platform.db") as db:
        db.execute(
            "UPDATE orders SET status = 'cancelled', updated_at = '2026-11-24 10:00:00'"
            " WHERE order_id = (SELECT min(order_id) FROM orders WHERE status = 'delivered'"
            " AND ordered_at >= '2026-09-05' AND ordered_at < '2026-09-25')"
        )
    plan = b2b_run(own_sources, warehouse, "--plan").stdout
    assert "raw/orders [2026-09..2026-09, 1 months]: changed: its source" in plan, plan
    assert "staging/orders [2026-09..2026-09, 1 months]: changed: raw/orders" in plan, plan
    assert "reports/monthly_sales: changed: core/fct_order_lines" in plan, plan
    assert "raw/weblogs" not in plan
    mark = latest_step(warehouse)
    late = b2b_run(own_sources, warehouse)
    assert "Sep 2026" in late.stdout, late.stdout  # one short line per run, months as read
    built = built_since(warehouse, mark)
    assert built["raw/orders"] == {"2026-09-01"} and built["core/fct_order_lines"] == {"2026-09-01"}
    assert "raw/weblogs" not in built and "raw/companies" not in built
    assert built["reports/monthly_sales"] == {None}

    # a new day of logs in the last month: the as-of day's lines again, one dropped
    logs = own_sources / "weblogs"
    last = sorted(logs.glob("access.log-202611*.gz"))[-1]
    lines = gzip.decompress(last.read_bytes()).splitlines(keepends=True)
    (logs / "access.log-20261126.gz").write_bytes(gzip.compress(b"".join(lines[1:])))
    mark = latest_step(warehouse)
    b2b_run(own_sources, warehouse)
    built = built_since(warehouse, mark)
    assert built["raw/weblogs"] == {"2026-11-01"} and "raw/orders" not in built
    # the view over every month of requests checked the month that changed, not all
    import dagster as dg

    instance = dg.DagsterInstance.from_config(str(warehouse.parent / "dagster_home"))
    (latest,) = instance.fetch_materializations(
        dg.AssetKey(["core", "fct_web_requests"]), limit=1
    ).records
    assert latest.asset_materialization.metadata["months_checked"].value == "2026-11"  # type: ignore[union-attr]

    # the as-of day moves, nothing new: what reads the day is built again; a snapshot
    # built again with the same rows keeps its version, so the months that read it are
    # planned again after it, and no month before the last is built
    mark = latest_step(warehouse)
    moved = b2b_run(own_sources, warehouse, B2B_AS_OF="2026-11-26")
    built = built_since(warehouse, mark)
    assert built["staging/customers"] == {None}, moved.stdout
    months = set().union(*built.values()) - {None}
    assert months <= {"2026-11-01"}, (built, moved.stdout)

    # what the refreshes left equals a clean build of the same sources
    clean = tmp_path / "clean" / "b2b.duckdb"
    b2b_run(own_sources, clean, B2B_AS_OF="2026-11-26")
    assert snapshot(warehouse, REPORTS) == snapshot(clean, REPORTS)


def test_an_export_edited_by_hand_is_written_again(own_sources, tmp_path):
    warehouse = tmp_path / "wh" / "b2b.duckdb"
    b2b_run(own_sources, warehouse)
    csv = warehouse.parent / "reports" / "monthly_sales.csv"
    original = csv.read_bytes()
    csv.write_text("edited\n")
    mark = latest_step(warehouse)
    b2b_run(own_sources, warehouse)
    assert set(built_since(warehouse, mark)) == {"reports/report_files"}  # only the export ran
    assert csv.read_bytes() == original


def test_force_builds_everything(own_sources, tmp_path):
    warehouse = tmp_path / "wh" / "b2b.duckdb"
    b2b_run(own_sources, warehouse, "--select", "key:raw/companies")
    before = steps(warehouse)
    assert "up to date" in b2b_run(own_sources, warehouse, "--select", "key:raw/companies").stdout
    b2b_run(own_sources, warehouse, "--select", "key:raw/companies", "--force")
    assert steps(warehouse) == before + 1


def test_snapshot_fingerprint_moves_with_any_column(own_sources):
    source = own_sources / "source" / "b2b_platform.db"
    db = SourceDatabaseResource(url=f"sqlite:///{source}")
    first = table_fingerprint(db, "supplier_products")
    with sqlite3.connect(source) as conn:  # no updated_at here: the checksum must see it
        conn.execute("UPDATE supplier_products SET valid_from = date(valid_from, '+1 day')"
                     " WHERE rowid = (SELECT min(rowid) FROM supplier_products)")  # fmt: skip
    second = table_fingerprint(db, "supplier_products")
    assert second[0] == first[0] and second[1] != first[1]
    with sqlite3.connect(source) as conn:
        conn.execute("UPDATE customers SET full_name = full_name || 'x'"
                     " WHERE rowid = (SELECT min(rowid) FROM customers)")  # fmt: skip
    assert table_fingerprint(db, "customers") != first


ORPHAN_LINES = "FROM order_items WHERE order_id NOT IN (SELECT order_id FROM orders)"


def test_the_last_month_reads_every_line_for_orphans_only_when_its_fingerprint_counts_some(
    own_sources, tmp_path
):
    """The months' fingerprint counts the lines whose order exists nowhere, in the last
    month; with none, the last month is extracted without reading every line of the
    source, and still holds every line of its orders."""
    import datetime as dt

    from b2b_platform.defs.platform_db.fingerprints import source_fingerprints

    source = own_sources / "source" / "b2b_platform.db"
    db = SourceDatabaseResource(url=f"sqlite:///{source}")
    months = ["2026-08-01", "2026-09-01", "2026-10-01", "2026-11-01"]
    with sqlite3.connect(source) as conn:
        (orphans,) = conn.execute(f"SELECT count(*) {ORPHAN_LINES}").fetchone()
    assert orphans > 0  # tiny's injected unknown_order lines
    fingerprints = source_fingerprints(db, months, dt.datetime(2026, 11, 26))
    assert [fingerprints[m].orphan_items for m in months] == [0, 0, 0, orphans]

    with sqlite3.connect(source) as conn:
        conn.execute(f"DELETE {ORPHAN_LINES}")
        (last_month_lines,) = conn.execute(
            "SELECT count(*) FROM order_items i JOIN orders o USING (order_id)"
            " WHERE o.ordered_at >= '2026-11-01'"
        ).fetchone()
    assert source_fingerprints(db, months, dt.datetime(2026, 11, 26))[months[-1]].orphan_items == 0
    warehouse = tmp_path / "wh" / "b2b.duckdb"
    b2b_run(own_sources, warehouse, "--select", "key:raw/order_items")
    extracted = query(warehouse, "SELECT count(*) FROM raw.order_items"
                      " WHERE _partition_key = '2026-11-01'")  # fmt: skip
    assert extracted == [(last_month_lines,)]


@pytest.mark.postgres
def test_fingerprints_run_on_postgresql(postgres_url, tiny_platform):
    from b2b_platform.defs.platform_db.fingerprints import source_fingerprints
    from source_db import SourceDatabase

    database = SourceDatabase(postgres_url)
    database.create_schema(drop_existing=True)
    database.load_tables(tiny_platform.tables)
    db = SourceDatabaseResource(url=postgres_url)
    for table in ("companies", "suppliers", "products", "supplier_products", "customers",
                  "platform_users"):  # fmt: skip
        rows, version = table_fingerprint(db, table)
        assert rows == tiny_platform.tables[table].height and version
    import datetime as dt

    months = ["2026-08-01", "2026-09-01", "2026-10-01", "2026-11-01"]
    fingerprints = source_fingerprints(db, months, dt.datetime(2026, 11, 26))
    assert sum(f.orders for f in fingerprints.values()) == tiny_platform.tables["orders"].height
    orders, items = tiny_platform.tables["orders"], tiny_platform.tables["order_items"]
    orphans = (~items["order_id"].is_in(orders["order_id"].implode())).sum()
    assert [fingerprints[m].orphan_items for m in months] == [0, 0, 0, orphans]


def test_plan_follows_a_change_down_the_graph_and_no_further():
    import dagster as dg

    from b2b_platform.lib.orchestration.stale_slices import plan_stale_slices
    from b2b_platform.lib.warehouse.slice_versions import RecordedVersion, VersionBasis

    months = dg.MonthlyPartitionsDefinition(start_date="2026-09-01", end_date="2026-11-01")

    @dg.asset(key=["raw", "a"], partitions_def=months)
    def raw_a() -> None: ...

    @dg.asset(key=["core", "b"], deps=[raw_a], partitions_def=months)
    def core_b() -> None: ...

    @dg.asset(key=["reports", "c"], deps=[core_b])
    def report_c() -> None: ...

    defs = dg.Definitions(assets=[raw_a, core_b, report_c])
    keys = {raw_a.key, core_b.key, report_c.key}
    basis = VersionBasis(code="code", settings={"B2B_LOG_DIR": "logs"}, as_of="2026-10-20")
    sources = {("raw/a", "2026-09-01"): "s9", ("raw/a", "2026-10-01"): "s10"}
    first = plan_stale_slices(defs, keys, {}, sources, basis)
    assert first.slices == {raw_a.key: {"2026-09-01", "2026-10-01"},
                            core_b.key: {"2026-09-01", "2026-10-01"}, report_c.key: {None}}  # fmt: skip

    # record what that build would have recorded, by replaying the plan's versions
    from b2b_platform.lib.warehouse.slice_versions import (
        SliceShape,
        data_version,
        slice_inputs,
        version_of,
    )

    recorded: dict = {}
    for key in (raw_a.key, core_b.key, report_c.key):
        shape = SliceShape.of(defs.resolve_assets_def(key), key,
                              lambda k: defs.resolve_assets_def(k).partitions_def)  # fmt: skip
        for month in [None] if key == report_c.key else ["2026-09-01", "2026-10-01"]:
            inputs = slice_inputs(
                basis, shape, month,
                lambda k, m: recorded[(k.to_user_string(), m)].data_version,
                sources.get((key.to_user_string(), month), ""),
            )  # fmt: skip
            assert inputs is not None
            version = version_of(key, month, inputs)
            recorded[(key.to_user_string(), month)] = RecordedVersion(
                version, data_version(version)
            )
    assert not plan_stale_slices(defs, keys, recorded, sources, basis).slices

    # October's source moved: October down the chain, and the report reading every month
    changed = {**sources, ("raw/a", "2026-10-01"): "s10 with a late change"}
    plan = plan_stale_slices(defs, keys, recorded, changed, basis)
    assert plan.slices == {raw_a.key: {"2026-10-01"}, core_b.key: {"2026-10-01"},
                           report_c.key: {None}}  # fmt: skip
    # a source that cannot be read is read again
    assert plan_stale_slices(defs, keys, recorded, {**sources, ("raw/a", "2026-09-01"): None},
                             basis).slices[raw_a.key] == {"2026-09-01"}  # fmt: skip
    # a month Dagster never saw materialized is built again, and nothing below it
    # (its data version comes out the same)
    in_dagster = {raw_a.key: {"2026-10-01"}, core_b.key: {"2026-09-01", "2026-10-01"},
                  report_c.key: {None}}  # fmt: skip
    plan = plan_stale_slices(defs, keys, recorded, sources, basis, in_dagster)
    assert plan.slices == {raw_a.key: {"2026-09-01"}}
    assert "no materialization in Dagster" in plan.reasons[raw_a.key]
    # the as-of day alone moves nothing that does not read the calendar
    later = VersionBasis(code="code", settings={"B2B_LOG_DIR": "logs"}, as_of="2026-10-21")
    assert not plan_stale_slices(defs, keys, recorded, sources, later).slices


def test_a_table_s_data_version_is_what_it_holds():
    """A whole table rebuilt with the same rows keeps its data version, whatever order they
    come in and whenever they were loaded; any value changed moves it; a view has none."""
    import duckdb

    from b2b_platform.lib.warehouse.slice_versions import content_version, record_versions

    conn = duckdb.connect()
    conn.execute("CREATE SCHEMA staging")
    conn.execute("CREATE TABLE staging.customers AS SELECT * FROM (VALUES"
                 " (1, 'DNI', DATE '1980-01-01', TIMESTAMP '2026-11-01 10:00'),"
                 " (2, 'LE', NULL, TIMESTAMP '2026-11-01 10:00'))"
                 " t(customer_id, document_type, date_of_birth, _loaded_at)")  # fmt: skip
    first = content_version(conn, "staging/customers")
    conn.execute("CREATE OR REPLACE TABLE staging.customers AS SELECT * REPLACE"
                 " (TIMESTAMP '2026-11-02 09:00' AS _loaded_at) FROM staging.customers"
                 " ORDER BY customer_id DESC")  # fmt: skip
    assert content_version(conn, "staging/customers") == first  # reloaded, same rows
    conn.execute("UPDATE staging.customers SET date_of_birth = DATE '1980-01-02'"
                 " WHERE customer_id = 1")  # fmt: skip
    assert content_version(conn, "staging/customers") not in (None, first)
    conn.execute("CREATE VIEW staging.viewed AS SELECT * FROM staging.customers")
    assert content_version(conn, "staging/viewed") is None
    assert content_version(conn, "raw/orders") is None  # no such table
    # recorded: a whole table by its content, a month by its input version
    from b2b_platform.lib.warehouse.schema import ensure_warehouse_schema

    ensure_warehouse_schema(conn)
    recorded = record_versions(conn, [("staging/customers", None, "v1", "{}"),
                                      ("staging/customers", "2026-11-01", "v1", "{}")])  # fmt: skip
    assert recorded[("staging/customers", None)] == content_version(conn, "staging/customers")
    assert recorded[("staging/customers", "2026-11-01")] != recorded[("staging/customers", None)]
