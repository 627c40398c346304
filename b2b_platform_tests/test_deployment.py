"""The production instance (deploy/dagster.yaml) against the real PostgreSQL server."""

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import adbc_driver_postgresql.dbapi as driver
import dagster as dg
import pytest

from b2b_platform_tests.helpers import materialize

DEPLOY_CONFIG = Path(__file__).parents[1] / "deploy" / "dagster.yaml"


@pytest.fixture
def production_instance(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dg.DagsterInstance]:
    """A Dagster instance configured by deploy/dagster.yaml, in a database of its own."""
    database = f"b2b_dagster_{uuid.uuid4().hex[:10]}"
    with driver.connect(postgres_url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {database}")
    parts = urlsplit(postgres_url)
    monkeypatch.setenv("DAGSTER_PG_HOST", parts.hostname or "127.0.0.1")
    monkeypatch.setenv("DAGSTER_PG_PORT", str(parts.port or 5432))
    monkeypatch.setenv("DAGSTER_PG_DB", database)
    monkeypatch.setenv("DAGSTER_PG_USERNAME", parts.username or "postgres")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", parts.password or "")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(DEPLOY_CONFIG, home / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        yield instance
    finally:
        instance.dispose()
        admin = urlunsplit(parts._replace(path="/postgres"))
        with driver.connect(admin, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def test_production_config_materializes_into_postgres(
    production_instance: dg.DagsterInstance, use_warehouse: Path
) -> None:
    instance = production_instance
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert instance.run_retries_enabled and instance.run_retries_max_retries == 2

    outcome = materialize("key:raw/orders or key:core/dim_date", instance=instance)
    assert outcome.ok, outcome.failed_runs

    # read the run back from PostgreSQL: core/dim_date and every month of raw/orders
    records = instance.get_run_records()
    assert len(records) == 1
    assert all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in records)
    months = instance.get_materialized_partitions(dg.AssetKey(["raw", "orders"]))
    assert months == {"2026-08-01", "2026-09-01", "2026-10-01", "2026-11-01"}
    event = instance.get_latest_materialization_event(dg.AssetKey(["core", "dim_date"]))
    assert event is not None and event.asset_materialization.metadata["dagster/row_count"]
    # the warehouse writers' pool took its limit of 1 from the configuration
    pool = instance.event_log_storage.get_concurrency_info("duckdb_warehouse")
    assert pool.slot_count == 1
