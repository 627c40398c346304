"""The warehouse on DuckLake, with its catalog in the real PostgreSQL: the same build as
a file, several writers at once, and a writer killed mid-commit.

These run in the lake profile's environment (`make install-lake`), where DuckDB has the
DuckLake and PostgreSQL extensions from their wheels; `make test` runs them there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from b2b_platform.lib.warehouse.connection import warehouse_connection
from b2b_platform.lib.warehouse.lake import lake_summary
from b2b_platform.lib.warehouse.location import WarehouseLocation
from b2b_platform.lib.warehouse.writes import FAULT_ENV, RELEASE_ENV, SLOW_ENV
from b2b_platform_tests.dagster_dev import free_port, wait_for
from b2b_platform_tests.helpers import (
    materialize,
    query,
    snapshot,
    views_planned_as_nested_loops,
    warehouse_env,
)
from b2b_platform_tests.shared_builds import DROP_DATABASES, once_per_run

pytestmark = [pytest.mark.lake, pytest.mark.postgres, pytest.mark.slow]

BUILT_SCHEMAS = ("raw", "staging", "core", "reports", "quarantine", "etl")
# the accounting identity, per entity and month: nothing read vanishes
IDENTITY_BROKEN = """
    SELECT source, entity, partition_key FROM etl.record_accounting
    WHERE rows_read <> rows_loaded + rows_rejected + rows_merged"""


def _admin(postgres_url: str, statement: str) -> None:
    import psycopg2

    conn = psycopg2.connect(postgres_url.replace("/test", "/postgres"))
    conn.autocommit = True
    try:
        conn.cursor().execute(statement)
    finally:
        conn.close()


@pytest.fixture
def lake(postgres_url: str, tmp_path: Path) -> Iterator[WarehouseLocation]:
    """A new, empty lake: its own catalog database and data directory."""
    database = f"b2b_lake_{uuid.uuid4().hex[:10]}"
    _admin(postgres_url, f"CREATE DATABASE {database}")
    try:
        yield WarehouseLocation(target=_lake_target(database), data_path=str(tmp_path / "lake"))
    finally:
        _admin(postgres_url, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def _lake_target(database: str) -> str:
    return f"ducklake:postgres:dbname={database} host=127.0.0.1 user=postgres"


@pytest.fixture(scope="session")
def platform_lake_template(tmp_path_factory, tiny_sources, postgres_url) -> tuple[str, Path, Path]:
    """A lake holding the platform's tables, loaded by `b2b run` (its Dagster home
    beside it), made once per run: its catalog database, data directory and home."""
    data_dir, _ = tiny_sources

    def make(directory: Path) -> tuple[str, Path, Path]:
        database = f"b2b_lake_template_{uuid.uuid4().hex[:10]}"
        _admin(postgres_url, f"CREATE DATABASE {database}")
        # dropped by the session's end (conftest.pytest_sessionfinish), not before: the
        # other worker may still clone it
        with (directory.parent / DROP_DATABASES).open("a") as listed:
            listed.write(database + "\n")
        template = WarehouseLocation(_lake_target(database), str(directory / "lake"))
        _platform_loaded(_lake_env(data_dir, directory, template), directory / "home")
        return database, directory / "lake", directory / "home"

    return once_per_run(tmp_path_factory, "platform-lake", make)


@pytest.fixture
def lake_with_platform(
    platform_lake_template, postgres_url: str, tmp_path: Path
) -> Iterator[WarehouseLocation]:
    """A new lake that already holds the platform's tables (what web requests and leads
    are matched against), its Dagster home in tmp_path/home: a copy of the session's
    template lake, as `_platform_loaded` leaves a new one. The copy's catalog is a
    PostgreSQL database made from the template's, its data directory a copy of the
    template's (the catalog's paths are relative to it: only its root is set anew)."""
    import psycopg2

    template, data, home = platform_lake_template
    database = f"b2b_lake_{uuid.uuid4().hex[:10]}"
    for attempt in range(20):  # the other worker may be copying the template this instant
        try:
            _admin(postgres_url, f"CREATE DATABASE {database} TEMPLATE {template}")
            break
        except psycopg2.errors.ObjectInUse:
            if attempt == 19:
                raise
            time.sleep(0.5)
    try:
        location = WarehouseLocation(_lake_target(database), str(tmp_path / "lake"))
        shutil.copytree(data, location.data_path)
        shutil.copytree(home, tmp_path / "home")
        conn = psycopg2.connect(postgres_url.replace("/test", f"/{database}"))
        try:
            with conn, conn.cursor() as cursor:
                cursor.execute(
                    "UPDATE ducklake_metadata SET value = %s WHERE key = 'data_path'"
                    " AND scope IS NULL RETURNING value",
                    [location.data_path + "/"],
                )
                assert cursor.rowcount == 1
        finally:
            conn.close()
        yield location
    finally:
        _admin(postgres_url, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def _lake_env(data_dir: Path, tmp_path: Path, lake: WarehouseLocation) -> dict[str, str]:
    env = warehouse_env(data_dir, tmp_path / "unused.duckdb")
    env.pop("B2B_WAREHOUSE_PATH")
    return {**env, "B2B_WAREHOUSE": lake.target, "B2B_LAKE_DATA_PATH": lake.data_path}


def _b2b(env: dict[str, str], *args: str, extra: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "b2b_platform.cli", *args],
        env={**os.environ, **env, **(extra or {})},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _finish(child: subprocess.Popen, timeout: float = 600) -> tuple[int, str]:
    out, _ = child.communicate(timeout=timeout)
    return child.returncode, out


def test_full_build_on_a_lake_equals_the_file_build(
    lake, tiny_sources, built_warehouse, tmp_path, monkeypatch
):
    data_dir, _ = tiny_sources
    for key, value in _lake_env(data_dir, tmp_path, lake).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("B2B_WAREHOUSE_PATH", raising=False)
    outcome = materialize()
    assert outcome.ok, outcome.failed_runs
    assert not outcome.failed_checks, outcome.failed_checks

    in_lake, in_file = snapshot(lake, BUILT_SCHEMAS), snapshot(built_warehouse, BUILT_SCHEMAS)
    assert in_lake.keys() == in_file.keys()
    for table in in_file:
        assert in_lake[table] == in_file[table], table
    assert len(in_lake["reports.monthly_sales"]) == 13  # 12 complete months and one to date
    # the data are Parquet files under the data path, the catalog in PostgreSQL
    assert list(Path(lake.data_path).rglob("*.parquet"))
    assert not query(lake, IDENTITY_BROKEN)
    # DuckDB 1.4 plans a LEFT JOIN with a left-side-only condition as a nested loop
    # (staging.web_requests on `large`: 100 s a month where the file took 0.3 s)
    planned = views_planned_as_nested_loops(lake)
    assert "staging.web_requests" in planned
    assert not {view: ops for view, ops in planned.items() if ops}

    status = _b2b(_lake_env(data_dir, tmp_path, lake), "status")
    code, out = _finish(status)
    assert code == 0, out
    assert "Lake snapshot" in out and "Lake size" in out and "data files" in out
    report = _b2b(_lake_env(data_dir, tmp_path, lake), "report", "top_devices")
    code, out = _finish(report)
    assert code == 0, out
    assert "top_devices (5 rows)" in out

    # extensions came from the wheels: DuckDB was never allowed to fetch one
    with warehouse_connection(lake, read_only=True) as conn:
        settings = conn.execute(
            "SELECT current_setting('autoinstall_known_extensions'),"
            " current_setting('autoload_known_extensions')"
        ).fetchall()
    assert settings == [(False, False)]
    _maintenance_merges_and_expires(lake, in_lake)


def _maintenance_merges_and_expires(lake: WarehouseLocation, before: dict) -> None:
    """The nightly lake_maintenance_job: fewer files, old snapshots gone, same tables."""
    import dagster as dg

    from b2b_platform.definitions import defs

    with warehouse_connection(lake, read_only=True) as conn:
        files_before = lake_summary(conn).data_files
    job = defs().resolve_job_def("lake_maintenance_job")
    config = {"ops": {"compact_lake": {"config": {"keep_snapshots_days": 0}}}}
    result = job.execute_in_process(run_config=config, instance=dg.DagsterInstance.ephemeral())
    assert result.success
    with warehouse_connection(lake, read_only=True) as conn:
        after = lake_summary(conn)
    assert after.data_files < files_before and after.snapshots == 1
    assert snapshot(lake, BUILT_SCHEMAS) == before


def _held(child: subprocess.Popen) -> None:
    """Wait until `child` holds its transaction open (the slow fault point says so)."""
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("fault: holding"):
            return
    raise AssertionError(f"the writer ended without reaching its commit: {child.wait()}")


def _hold(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """The environment that holds September's web-log commit open until `release` exists."""
    release = tmp_path / "release"
    return {SLOW_ENV: "raw/weblogs@2026-09-01", RELEASE_ENV: str(release)}, release


def _platform_loaded(env: dict[str, str], home: Path) -> None:
    """The platform's tables, which web requests and leads are matched against."""
    code, out = _finish(
        _b2b(env, "run", "--select", "tag:source=platform_db", extra={"DAGSTER_HOME": str(home)})
    )
    assert code == 0, out


def test_two_writers_on_different_sources_at_once(lake_with_platform, tiny_sources, tmp_path):
    """While one `b2b run` holds a web-log commit open, another loads the leads to the
    end: nothing the two do waits for the other."""
    data_dir, _ = tiny_sources
    lake = lake_with_platform
    env = _lake_env(data_dir, tmp_path, lake)
    hold, release = _hold(tmp_path)
    weblogs = _b2b(env, "run", "--select", "tag:source=weblogs",
                   extra={"DAGSTER_HOME": str(tmp_path / "home-a"), **hold})  # fmt: skip
    _held(weblogs)
    leads = _b2b(env, "run", "--select", "tag:source=leads", extra={"DAGSTER_HOME": str(tmp_path / "home-b")})  # fmt: skip
    code, out = _finish(leads, timeout=50)
    assert code == 0, out
    assert weblogs.poll() is None, "the web-log writer should still hold its commit"
    # a reader meanwhile sees the committed leads, not the held month
    assert query(lake, "SELECT count(*) FROM staging.leads")[0][0] > 0
    held_month = "SELECT count(*) FROM raw.weblogs WHERE partition_key = '2026-09-01'"
    assert query(lake, held_month) == [(0,)]
    release.touch()
    code, out = _finish(weblogs)
    assert code == 0, out
    assert not query(lake, IDENTITY_BROKEN)
    sources = {r[0] for r in query(lake, "SELECT DISTINCT source FROM etl.record_accounting")}
    assert sources == {"weblogs", "platform_db", "leads"}


def _month_run(
    env: dict[str, str], home: Path, month: str, extra: dict[str, str]
) -> subprocess.Popen:
    home.mkdir()
    return subprocess.Popen(
        [sys.executable, "-c", MONTH_RUN, month],
        env={**os.environ, **env, "DAGSTER_HOME": str(home), **extra},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def test_two_writers_on_different_months_of_one_source(lake_with_platform, tiny_sources, tmp_path):
    """Two runs of the web-log job, September and October, as a backfill's runs: October
    is written whole while September's commit is held open."""
    data_dir, _ = tiny_sources
    lake = lake_with_platform
    env = _lake_env(data_dir, tmp_path, lake)
    hold, release = _hold(tmp_path)
    september = _month_run(env, tmp_path / "home-sep", "2026-09-01", hold)
    _held(september)
    october = _month_run(env, tmp_path / "home-oct", "2026-10-01", {})
    code, out = _finish(october, timeout=50)
    assert code == 0, out
    assert september.poll() is None, "September's writer should still hold its commit"
    release.touch()
    code, out = _finish(september)
    assert code == 0, out
    loaded = query(lake, "SELECT partition_key, count(*) FROM raw.weblogs GROUP BY 1 ORDER BY 1")
    assert [m for m, _ in loaded] == ["2026-09-01", "2026-10-01"]
    assert all(count > 0 for _, count in loaded)
    assert not query(lake, IDENTITY_BROKEN)


# one month of the web-log job, as the daemon launches a partition of a backfill
MONTH_RUN = """
import sys
import dagster as dg
from b2b_platform.definitions import defs
job = defs().resolve_job_def("weblogs_month_job")
result = job.execute_in_process(partition_key=sys.argv[1], instance=dg.DagsterInstance.get())
sys.exit(0 if result.success else 1)
"""


LAKE_DEPLOY = Path(__file__).parents[1] / "deploy" / "lake"


def test_production_lake_instance_runs_months_side_by_side(
    lake_with_platform, tiny_sources, tmp_path, postgres_url, monkeypatch
):
    """deploy/lake/dagster.yaml on the real PostgreSQL: `b2b run` on a lake with 2 writers
    records the web logs' months as two runs, both in PostgreSQL (the lake holds the
    platform's tables already, loaded through another home)."""
    import dagster as dg

    lake = lake_with_platform

    database = f"b2b_dagster_{uuid.uuid4().hex[:10]}"
    _admin(postgres_url, f"CREATE DATABASE {database}")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((LAKE_DEPLOY / "dagster.yaml").read_text())
    pg = {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": "5432", "DAGSTER_PG_DB": database,
          "DAGSTER_PG_USERNAME": "postgres", "DAGSTER_PG_PASSWORD": ""}  # fmt: skip
    for key, value in pg.items():
        monkeypatch.setenv(key, value)
    data_dir, _ = tiny_sources
    env = {**_lake_env(data_dir, tmp_path, lake), **pg, "DAGSTER_HOME": str(home),
           "B2B_LAKE_WRITERS": "2"}  # fmt: skip
    try:
        instance = dg.DagsterInstance.from_config(str(home))
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 4
        code, out = _finish(_b2b(env, "run", "--select", "tag:source=weblogs"))
        assert code == 0, out
        assert "Aug 2026 to Sep 2026" in out and "Oct 2026 to Nov 2026" in out
        runs = [r.dagster_run for r in instance.get_run_records()]
        ranges = {(r.tags.get("dagster/asset_partition_range_start"),
                   r.tags.get("dagster/asset_partition_range_end")) for r in runs}  # fmt: skip
        assert {("2026-08-01", "2026-09-01"), ("2026-10-01", "2026-11-01")} <= ranges
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
        # `b2b run` set the writers' pool to B2B_LAKE_WRITERS
        assert instance.event_log_storage.get_concurrency_info("duckdb_warehouse").slot_count == 2
        instance.dispose()
    finally:
        _admin(postgres_url, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def test_run_launcher_examples_name_what_a_worker_needs():
    import yaml

    for name in ("run_launcher.docker.yaml", "run_launcher.k8s.yaml"):
        launcher = yaml.safe_load((LAKE_DEPLOY / name).read_text())["run_launcher"]
        assert launcher["module"] in {"dagster_docker", "dagster_k8s"}
        text = (LAKE_DEPLOY / name).read_text()
        assert "B2B_WAREHOUSE" in text and "B2B_LAKE_DATA_PATH" in text


def test_a_file_warehouse_moves_into_a_lake(lake, tiny_sources, tmp_path):
    """The README's move: export the file, import into the lake, and `b2b run` against
    the lake (same Dagster home) finds everything up to date; the tables are equal."""
    data_dir, _ = tiny_sources
    file = tmp_path / "b2b.duckdb"  # its reports where the lake's go: the same settings
    home = {"DAGSTER_HOME": str(tmp_path / "home")}
    file_env = {**warehouse_env(data_dir, file), **home}
    code, out = _finish(_b2b(file_env, "run"))
    assert code == 0, out
    code, out = _finish(_b2b(file_env, "export-warehouse", str(tmp_path / "export")))
    assert code == 0, out
    lake_env = {**_lake_env(data_dir, tmp_path, lake), **home}
    code, out = _finish(_b2b(lake_env, "import-warehouse", str(tmp_path / "export")))
    assert code == 0, out
    assert "imported 43 tables" in out
    code, out = _finish(_b2b(lake_env, "run"))
    assert code == 0, out
    assert "up to date: nothing changed" in out, out
    assert snapshot(lake, BUILT_SCHEMAS) == snapshot(file, BUILT_SCHEMAS)
    # a second import would overwrite what is there: refused
    code, out = _finish(_b2b(lake_env, "import-warehouse", str(tmp_path / "export")))
    assert code == 2 and "already holds" in out


OBJECT_STORE_KEY = "b2b-test-secret-key-4d1f0a"  # never to be shown


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).close()
    except urllib.error.HTTPError:
        return True  # an answer, if not a welcome one
    except OSError:
        return False
    return True


@pytest.fixture
def object_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """An S3-compatible server (moto in server mode) with a bucket `lake`: its endpoint
    and key as the AWS_* variables, set here and returned for child processes."""
    server = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    assert server, "moto_server is missing: the lake profile installs it (make install-lake)"
    endpoint = f"http://127.0.0.1:{free_port()}"
    with open(tmp_path / "moto.log", "w") as log:
        process = subprocess.Popen(
            [server, "-H", "127.0.0.1", "-p", endpoint.rsplit(":", 1)[1]],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for("the S3 server", lambda: _answers(endpoint), 60, every=0.2)
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/lake", method="PUT")).close()
        env = {"AWS_ACCESS_KEY_ID": "b2b-test", "AWS_SECRET_ACCESS_KEY": OBJECT_STORE_KEY,
               "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint}  # fmt: skip
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        yield env
    finally:
        process.terminate()
        process.wait(10)


def _object_keys(endpoint: str, prefix: str) -> list[str]:
    listing = f"{endpoint}/lake?list-type=2&max-keys=1000&prefix={prefix}"
    with urllib.request.urlopen(listing) as response:
        return re.findall(r"<Key>([^<]+)</Key>", response.read().decode())


def test_a_lake_on_object_storage_with_a_writer_killed_equals_the_file_build(
    lake, object_store, tiny_sources, built_warehouse, tmp_path
):
    """The lake's data on an S3-compatible server: two writers build the months side by
    side, October's is killed as it commits; the lake opens, the rerun finishes, and the
    whole graph equals the file build."""
    data_dir, _ = tiny_sources
    lake = WarehouseLocation(target=lake.target, data_path="s3://lake/warehouse")
    env = {**_lake_env(data_dir, tmp_path, lake), **object_store,
           "DAGSTER_HOME": str(tmp_path / "home"), "B2B_LAKE_WRITERS": "2"}  # fmt: skip
    code, out = _finish(_b2b(env, "run", extra={FAULT_ENV: "raw/weblogs@2026-10-01"}))
    assert code == 1, out
    assert "Oct 2026 to Nov 2026" in out and "died (exit code -9)" in out, out
    months = {r[0] for r in query(lake, "SELECT DISTINCT partition_key FROM raw.weblogs")}
    assert {"2026-08-01", "2026-09-01"} <= months and "2026-10-01" not in months
    assert not query(lake, IDENTITY_BROKEN)  # nothing half-committed counts

    code, out = _finish(_b2b(env, "run"))
    assert code == 0, out
    interrupted = query(
        lake, "SELECT asset_key, partition_key FROM etl.run_log WHERE status = 'interrupted'"
    )
    assert ("raw/weblogs", "2026-10-01") in interrupted
    schemas = tuple(schema for schema in BUILT_SCHEMAS if schema != "etl")  # + the break
    in_lake, in_file = snapshot(lake, schemas), snapshot(built_warehouse, schemas)
    assert in_lake.keys() == in_file.keys()
    for table in in_file:
        assert in_lake[table] == in_file[table], table
    assert not query(lake, IDENTITY_BROKEN)
    # the data are objects in the bucket, nothing is written to a local directory
    keys = _object_keys(object_store["AWS_ENDPOINT_URL"], "warehouse/")
    assert sum(key.endswith(".parquet") for key in keys) > 20, keys
    assert not list(tmp_path.rglob("*.parquet"))

    # the key is read from AWS_SECRET_ACCESS_KEY and never shown
    code, out = _finish(_b2b(env, "status"))
    assert code == 0 and "Lake size" in out, out
    assert OBJECT_STORE_KEY not in out
    code, out = _finish(_b2b({**env, "AWS_SECRET_ACCESS_KEY": ""}, "status"))
    assert code != 0 and "AWS_SECRET_ACCESS_KEY" in out, out
