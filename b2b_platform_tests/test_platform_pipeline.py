"""The platform-database and leads sources end to end on tiny generated data."""

import os
import subprocess
import sys

import dagster as dg
import polars as pl
import pytest

from b2b_platform_tests.helpers import materialize, query, snapshot, warehouse_env
from source_db import SourceDatabase

ORDER_REASONS = {
    "future_order": "future_order", "out_of_range": "out_of_range_order",
    "invalid_status": "invalid_status", "unknown_company": "unknown_company",
    "unknown_customer": "unknown_customer",
}  # fmt: skip


def _quarantine_counts(warehouse, entity):
    return dict(query(warehouse, "SELECT reason_code, count(*) FROM quarantine.rejected_records"
                                 " WHERE entity = ? GROUP BY 1", [entity]))  # fmt: skip


def test_every_injected_platform_anomaly_is_found(built_warehouse, tiny_platform):
    injected = tiny_platform.injected
    orders = _quarantine_counts(built_warehouse, "orders")
    assert orders == {reason: injected[kind] for reason, kind in ORDER_REASONS.items()}
    companies = _quarantine_counts(built_warehouse, "companies")
    assert companies == {
        "invalid_cuit": injected["invalid_cuit"],
        "duplicate_cuit": injected["duplicate_cuit"],
    }
    customers = _quarantine_counts(built_warehouse, "customers")
    assert customers == {
        k: injected[k] for k in ("duplicate_customer", "implausible_birth_date", "invalid_document")
    }


def test_line_anomalies_are_found_unless_their_order_went_first(built_warehouse, tiny_platform):
    items = tiny_platform.tables["order_items"]
    rejected_orders = {
        int(r[0])
        for r in query(
            built_warehouse,
            "SELECT record_key FROM quarantine.rejected_records WHERE entity = 'orders'",
        )
    }
    products = tiny_platform.tables["products"]["product_id"].implode()
    order_ids = tiny_platform.tables["orders"]["order_id"].implode()
    rules = {
        "unknown_order": ~pl.col("order_id").is_in(order_ids),
        "unknown_product": ~pl.col("product_id").is_in(products),
        "non_positive_quantity": pl.col("quantity") <= 0,
        "non_positive_price": pl.col("unit_price").cast(pl.Float64) <= 0,
    }  # fmt: skip
    found = _quarantine_counts(built_warehouse, "order_items")
    for reason, rule in rules.items():
        own = items.filter(rule & ~pl.col("order_id").is_in(list(rejected_orders)))
        assert found.get(reason, 0) == own.height, reason
    lines_of_rejected = items.filter(pl.col("order_id").is_in(list(rejected_orders))).height
    assert sum(found.get(r, 0) for r in ORDER_REASONS) == lines_of_rejected


def test_every_injected_lead_anomaly_is_found(built_warehouse, tiny_sources):
    _, summary = tiny_sources
    found = _quarantine_counts(built_warehouse, "leads")
    assert found == summary.leads.anomalies
    actions = dict(query(built_warehouse, "SELECT reason_code, any_value(action) FROM"
                         " quarantine.rejected_records WHERE entity = 'leads' GROUP BY 1"))  # fmt: skip
    assert actions == {"duplicate_lead": "merged", "missing_contact": "rejected",
                       "invalid_email": "flagged", "invalid_cuit": "flagged"}  # fmt: skip


def test_accounting_identity_holds_everywhere(built_warehouse):
    broken = query(built_warehouse, "SELECT source, entity, partition_key FROM etl.record_accounting"
                   " WHERE rows_read <> rows_loaded + rows_rejected + rows_merged")  # fmt: skip
    assert broken == []
    entities = {
        r[0] for r in query(built_warehouse, "SELECT DISTINCT entity FROM etl.record_accounting")
    }
    assert {"orders", "order_items", "companies", "customers", "leads"} <= entities


def test_merged_company_orders_follow_the_survivor(built_warehouse):
    rows = query(
        built_warehouse,
        """
        SELECT count(*) FROM staging.orders o JOIN staging.company_merges m
        ON m.merged_company_id = o.source_company_id WHERE o.company_id <> m.surviving_company_id""",
    )
    assert rows == [(0,)]
    assert query(built_warehouse, "SELECT count(*) FROM staging.companies c JOIN staging.company_merges m"
                 " ON m.merged_company_id = c.company_id") == [(0,)]  # fmt: skip


def test_run_records_for_every_step(built_warehouse):
    statuses = dict(query(built_warehouse, "SELECT status, count(*) FROM etl.run_log GROUP BY 1"))
    assert set(statuses) == {"succeeded"}
    months = query(built_warehouse, "SELECT DISTINCT partition_key FROM etl.run_log"
                   " WHERE asset_key LIKE 'staging/order_lines%' ORDER BY 1")  # fmt: skip
    assert [m[0][:7] for m in months] == ["2026-08", "2026-09", "2026-10", "2026-11"]


def test_rebuild_is_idempotent_and_one_month_rerun_changes_nothing(use_warehouse):
    assert materialize("tag:source=platform_db or tag:source=leads").ok
    first = snapshot(use_warehouse)
    assert materialize("tag:source=platform_db or tag:source=leads").ok
    assert snapshot(use_warehouse) == first
    from b2b_platform.definitions import defs

    definitions = defs()
    result = dg.materialize(
        list(definitions.assets), resources=definitions.resources, partition_key="2026-09-01",
        selection=[dg.AssetKey(["raw", "orders"]), dg.AssetKey(["raw", "order_items"]),
                   dg.AssetKey(["staging", "orders"]), dg.AssetKey(["staging", "order_lines"])],
    )  # fmt: skip
    assert result.success
    assert snapshot(use_warehouse) == first


def test_unchanged_months_are_not_extracted_and_late_changes_are(
    use_warehouse, tiny_sources, tmp_path, monkeypatch
):
    """A refresh re-extracts only the months whose source fingerprint moved: a late status
    update on an old order (updated_at bumped), a corrected line quantity (lines have no
    updated_at, the checksum catches it)."""
    import shutil
    import sqlite3

    data_dir, _ = tiny_sources
    source = tmp_path / "source.db"
    shutil.copyfile(data_dir / "source" / "b2b_platform.db", source)
    monkeypatch.setenv("B2B_SOURCE_DB_URL", f"sqlite:///{source}")

    def extracted_months() -> list[str]:
        return [r[0] for r in query(use_warehouse, "SELECT partition_key FROM etl.run_log"
                                    " WHERE asset_key LIKE '%raw/orders%' ORDER BY started_at")]  # fmt: skip

    assert materialize("key:raw/orders").ok
    first = extracted_months()
    assert len(first) == 4
    assert materialize("key:raw/orders").ok
    assert extracted_months() == first  # nothing changed: nothing extracted

    with sqlite3.connect(source) as db:
        (order_id,) = db.execute(
            "SELECT order_id FROM orders WHERE ordered_at >= '2026-08-10' AND ordered_at < '2026-08-20'"
            " ORDER BY order_id LIMIT 1"
        ).fetchone()
        db.execute("UPDATE orders SET status = 'returned', updated_at = '2026-11-24 10:00:00'"
                   " WHERE order_id = ?", [order_id])  # fmt: skip
        (line_order,) = db.execute(
            "SELECT i.order_id FROM order_items i JOIN orders o USING (order_id)"
            " WHERE o.ordered_at >= '2026-10-05' AND o.ordered_at < '2026-10-25' LIMIT 1"
        ).fetchone()
        db.execute("UPDATE order_items SET quantity = quantity + 5 WHERE order_id = ?"
                   " AND line_number = 1", [line_order])  # fmt: skip
    assert materialize("key:raw/orders").ok
    assert sorted(extracted_months()[len(first) :]) == ["2026-08-01", "2026-10-01"]
    assert query(use_warehouse, "SELECT status FROM raw.orders WHERE order_id = ?",
                 [order_id]) == [("returned",)]  # fmt: skip


def test_killed_run_is_marked_interrupted_and_rerun_matches_a_clean_run(
    use_warehouse, built_warehouse, tiny_sources
):
    data_dir, _ = tiny_sources
    env = {**os.environ, **warehouse_env(data_dir, use_warehouse),
           "DAGSTER_HOME": str(use_warehouse.parent / "dagster_home"),
           "B2B_FAULT_KILL_BEFORE_COMMIT": "staging/order_lines,staging/orders@2026-10-01"}  # fmt: skip
    killed = subprocess.run([sys.executable, "-m", "b2b_platform.cli", "run"],
                            env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert killed.returncode == -9, killed.stderr[-2000:]
    env.pop("B2B_FAULT_KILL_BEFORE_COMMIT")
    rerun = subprocess.run([sys.executable, "-m", "b2b_platform.cli", "run"],
                           env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "marked 1 run(s) of a killed `b2b run` as failed" in rerun.stdout
    interrupted = query(use_warehouse, "SELECT asset_key, partition_key, broken_at >= started_at"
                        " FROM etl.run_log WHERE status = 'interrupted'")  # fmt: skip
    # the months in flight: October, and September beside it unless it had committed
    step = "staging/order_lines,staging/orders"
    assert (step, "2026-10-01", True) in interrupted
    assert set(interrupted) <= {(step, m, True) for m in ("2026-09-01", "2026-10-01")}
    clean = snapshot(built_warehouse, ("raw", "staging", "quarantine"))
    assert snapshot(use_warehouse, ("raw", "staging", "quarantine")) == clean


@pytest.mark.postgres
def test_postgresql_source_gives_the_same_staging(
    monkeypatch, use_warehouse, built_warehouse, postgres_url, tiny_platform
):
    database = SourceDatabase(postgres_url)
    database.create_schema(drop_existing=True)
    database.load_tables(tiny_platform.tables)
    monkeypatch.setenv("B2B_SOURCE_DB_URL", postgres_url)
    assert materialize("tag:source=platform_db").ok
    from_pg = snapshot(use_warehouse, ("staging",))
    from_sqlite = snapshot(built_warehouse, ("staging",))
    for table in (
        "staging.companies",
        "staging.customers",
        "staging.orders",
        "staging.order_lines",
    ):
        assert from_pg[table] == from_sqlite[table], table
    assert _quarantine_counts(use_warehouse, "orders") == _quarantine_counts(
        built_warehouse, "orders"
    )


def test_every_materialization_reports_rows_schema_and_quality(use_warehouse):
    instance = dg.DagsterInstance.ephemeral()
    assert materialize(instance=instance).ok
    from b2b_platform.definitions import defs

    graph = defs().resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        event = instance.get_latest_materialization_event(key)
        assert event is not None, key
        metadata = event.asset_materialization.metadata
        if "duckdb" not in graph.get(key).kinds:  # the exported report files
            assert {"files", "workbook", "html_report"} <= set(metadata), key
            assert metadata["html_report"].value.endswith("/reports/b2b_reports.html")
            continue
        assert "dagster/row_count" in metadata, key
        assert "dagster/column_schema" in metadata, key
    staged = instance.get_latest_materialization_event(dg.AssetKey(["staging", "companies"]))
    quality = staged.asset_materialization.metadata
    assert {"rows_rejected", "rows_flagged", "rows_merged"} <= set(quality)
    report = instance.get_latest_materialization_event(dg.AssetKey(["reports", "monthly_sales"]))
    shown = report.asset_materialization.metadata
    assert shown["rows_read"].value > 0 and "rows_rejected" not in shown  # no empty zeros
    assert len(shown["preview"].value) < 1000  # the asset page shows it without a click
    rows_of = lambda markdown: markdown.count("\n|")  # noqa: E731 - table lines
    assert rows_of(shown["all_rows"].value) > rows_of(shown["preview"].value)
    # a month's materialization counts that month's rows, not the run's
    for key, table in (
        (dg.AssetKey(["staging", "orders"]), "staging.orders"),
        (dg.AssetKey(["raw", "weblogs"]), "raw.weblogs"),
        (dg.AssetKey(["core", "fct_order_lines"]), "core.fct_order_lines"),
    ):
        per_month = dict(
            query(use_warehouse, f"SELECT partition_key, count(*) FROM {table} GROUP BY 1")
        )
        assert len(per_month) >= 4, table
        for month, rows in per_month.items():
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, asset_partitions=[month]), limit=1
            ).records
            counted = records[0].asset_materialization.metadata["dagster/row_count"].value
            assert counted == rows, (table, month)
