"""Lake mode as configured, in the default environment: the setting, what the code
location becomes, the month ranges and conflict retries (the lake itself: test_lake.py)."""

from __future__ import annotations

import os

import dagster as dg
import duckdb
import pytest

from b2b_common.errors import UserError
from b2b_platform.cli import main
from b2b_platform.lib.orchestration.month_fanout import load_entry, month_chunks
from b2b_platform.lib.settings import Settings
from b2b_platform.lib.warehouse.location import (
    DEFAULT_WAREHOUSE,
    WarehouseLocation,
    object_store_secret,
    parse_location,
)
from b2b_platform.lib.warehouse.write_conflicts import is_write_conflict, retry_on_conflict

LAKE = "ducklake:postgres:dbname=b2b_lake host=127.0.0.1 user=postgres"


def test_an_object_store_key_comes_from_aws_variables_and_is_never_shown(monkeypatch) -> None:
    keys = {"AWS_ACCESS_KEY_ID": "b2b", "AWS_SECRET_ACCESS_KEY": "k'3y-s3cret"}
    secret = object_store_secret({**keys, "AWS_ENDPOINT_URL": "https://minio.internal:9000"})
    assert "SECRET 'k''3y-s3cret'" in secret  # quoted, whatever it holds
    assert "ENDPOINT 'minio.internal:9000'" in secret and "USE_SSL true" in secret
    assert "REGION 'us-east-1'" in secret and "URL_STYLE 'path'" in secret
    assert "ENDPOINT" not in object_store_secret(keys)  # AWS S3 itself
    with pytest.raises(UserError, match="AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        object_store_secret({"AWS_ACCESS_KEY_ID": "b2b"})
    with pytest.raises(UserError, match="AWS_ENDPOINT_URL='minio:9000' is not a URL"):
        object_store_secret({**keys, "AWS_ENDPOINT_URL": "minio:9000"})
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "k'3y-s3cret")
    on_s3 = WarehouseLocation(target=LAKE, data_path="s3://b2b-lake/warehouse")
    assert on_s3.on_object_store
    assert "k'3y-s3cret" not in on_s3.mask("HTTP 403 signing with k'3y-s3cret")
    assert not WarehouseLocation(target=LAKE, data_path="/srv/lake").on_object_store


def test_one_setting_names_a_file_or_a_lake() -> None:
    assert Settings.from_env({}).warehouse.target == str(DEFAULT_WAREHOUSE)
    alias = Settings.from_env({"B2B_WAREHOUSE_PATH": "/srv/w.duckdb"}).warehouse
    assert not alias.is_lake and str(alias.file_path) == "/srv/w.duckdb"
    lake = Settings.from_env({"B2B_WAREHOUSE": LAKE, "B2B_LAKE_DATA_PATH": "/srv/lake"})
    assert lake.warehouse.is_lake and lake.warehouse.data_path == "/srv/lake"
    assert lake.warehouse.catalog_conninfo == "dbname=b2b_lake host=127.0.0.1 user=postgres"
    assert Settings.from_env({}).warehouse_writers == 1
    writers = Settings.from_env({"B2B_WAREHOUSE": LAKE, "B2B_LAKE_WRITERS": "2"})
    assert writers.warehouse_writers == 2


@pytest.mark.parametrize(("cores", "writers"), [({0}, 1), ({0, 1, 2}, 3), (set(range(100)), 4)])
def test_a_lakes_writers_default_to_the_cores_it_may_use(
    monkeypatch: pytest.MonkeyPatch, cores: set[int], writers: int
) -> None:
    """More writers than cores only add each run's fixed work (docs/lake.md); past 4,
    only when B2B_LAKE_WRITERS says so."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: cores)
    lake = Settings.from_env({"B2B_WAREHOUSE": LAKE, "B2B_LAKE_DATA_PATH": "/srv/lake"})
    assert lake.warehouse_writers == writers
    assert (
        Settings.from_env({"B2B_WAREHOUSE": LAKE, "B2B_LAKE_WRITERS": "8"}).warehouse_writers == 8
    )


def test_a_lake_password_never_shows() -> None:
    location = parse_location(LAKE + " password=s3cret")
    assert "s3cret" not in location.describe() and "password=***" in location.describe()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"B2B_WAREHOUSE": "ducklake:sqlite:x.db"}, "only a PostgreSQL catalog is supported"),
        ({"B2B_WAREHOUSE": LAKE, "B2B_LAKE_WRITERS": "0"}, "use 1 to 64"),
        ({"B2B_WAREHOUSE": LAKE, "B2B_LAKE_WRITERS": "many"}, "use 1 to 64"),
    ],
)
def test_bad_lake_settings_are_one_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(UserError, match=message):
        Settings.from_env(env)


def test_a_lake_without_the_lake_profile_says_how_to_get_it(monkeypatch, capsys) -> None:
    if duckdb.__version__.startswith("1.4"):
        pytest.skip("this environment is the lake profile")
    monkeypatch.setenv("B2B_WAREHOUSE", LAKE)
    assert main(["status"]) == 2
    assert "make install-lake" in capsys.readouterr().err


def test_a_lake_code_location_runs_backfill_months_apart_and_keeps_the_lake(monkeypatch) -> None:
    from b2b_platform.definitions import defs

    weblogs = dg.AssetKey(["raw", "weblogs"])
    graph = defs().resolve_asset_graph()
    assert graph.get(weblogs).backfill_policy == dg.BackfillPolicy.single_run()
    monkeypatch.setenv("B2B_WAREHOUSE", LAKE)
    lake_defs = defs()
    graph = lake_defs.resolve_asset_graph()
    assert graph.get(weblogs).backfill_policy == dg.BackfillPolicy.multi_run(1)
    assert graph.get(dg.AssetKey(["core", "dim_date"])).backfill_policy is None
    assert lake_defs.resolve_job_def("lake_maintenance_job")
    assert "lake_maintenance" in {s.name for s in lake_defs.schedules}


def test_months_split_into_contiguous_ranges() -> None:
    months = [f"2026-{m:02d}-01" for m in range(1, 13)]
    assert month_chunks(months, 2) == [months[:6], months[6:]]
    assert [len(c) for c in month_chunks(months, 5)] == [3, 3, 2, 2, 2]
    assert month_chunks(months[:2], 4) == [[months[0]], [months[1]]]
    assert month_chunks(months, 1) == [months]


def test_a_child_running_months_finds_the_definitions_the_cli_names() -> None:
    """lib never imports the code location: `b2b run` names it for the child processes."""
    from b2b_platform import cli
    from b2b_platform.definitions import defs

    assert load_entry(cli.DEFS_ENTRY) is defs


def test_a_commit_that_lost_a_conflict_is_done_again() -> None:
    attempts: list[int] = []

    def commit() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise duckdb.TransactionException("Transaction conflict - attempting to delete")
        return "committed"

    assert retry_on_conflict(commit, on_retry=lambda _: None) == "committed"
    assert len(attempts) == 3
    for message in ("Exceeded the maximum retry count of 30", "Failed to parse catalog entry"):
        failed = f"Failed to commit: Failed to commit DuckLake transaction.\n{message}"
        assert is_write_conflict(duckdb.TransactionException(failed))
    assert not is_write_conflict(duckdb.TransactionException("Current transaction is aborted"))
    with pytest.raises(duckdb.TransactionException, match="aborted"):
        retry_on_conflict(lambda: (_ for _ in ()).throw(duckdb.TransactionException("aborted")))


def test_the_last_conflict_is_raised_once_the_attempts_run_out() -> None:
    said: list[str] = []

    def conflicted() -> None:
        raise duckdb.TransactionException("Transaction conflict - attempting to delete")

    with pytest.raises(duckdb.TransactionException, match="conflict"):
        retry_on_conflict(conflicted, attempts=3, on_retry=said.append)
    assert said == [f"write conflict with another writer, attempt {n} of 3" for n in (1, 2)]
