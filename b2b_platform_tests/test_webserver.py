"""The UI path: `dagster dev` on workspace.yaml, driven through its GraphQL API."""

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster_graphql import DagsterGraphQLClient

from b2b_platform.lib.orchestration.run_queue import find_queue
from b2b_platform.lib.resources import build_resources
from b2b_platform.lib.settings import Settings
from b2b_platform_tests.dagster_dev import (
    GraphQL,
    dagster_dev_process,
    wait_for,
    write_test_instance,
)
from b2b_platform_tests.helpers import materialize, query, warehouse_env


@pytest.fixture
def dagster_dev(tmp_path: Path, tiny_sources) -> Iterator[tuple[GraphQL, Path]]:
    """`dagster dev` (webserver + daemon) on a free port, a temporary instance, tiny data."""
    data_dir, _ = tiny_sources
    warehouse = tmp_path / "warehouse" / "b2b.duckdb"
    home = tmp_path / "dagster_home"
    home.mkdir()
    write_test_instance(home)
    env = {
        **os.environ,
        **warehouse_env(data_dir, warehouse),
        "DAGSTER_HOME": str(home),
        "B2B_AUTOMATION": "off",  # only the runs this test launches
    }
    # the platform users the web-request view joins, built beforehand in process
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        assert materialize('+key:"staging/platform_users"').ok
    finally:
        os.environ.clear()
        os.environ.update(saved)
    with dagster_dev_process(tmp_path, env) as (graphql, process):

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(
                    f"dagster dev exited: {(tmp_path / 'dev.log').read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{graphql.port}/server_info", timeout=5
                ):
                    return True
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                return False

        wait_for("the webserver", ready, timeout=120)
        yield graphql, warehouse


RUN_ENDED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
ASSET_NODES = """
{ assetNodes { assetKey { path } groupName isPartitioned
               dependencyKeys { path } } }
"""
LOCATION = """
{ workspaceOrError { ... on Workspace { locationEntries { name
    locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""
LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}
"""
BACKFILL_STATUS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { status runs(limit: 10) { runId status } }
  }
}
"""


@pytest.mark.daemon
@pytest.mark.slow
def test_graph_partition_run_and_backfill_through_graphql(
    dagster_dev, tmp_path: Path, tiny_sources, monkeypatch: pytest.MonkeyPatch
) -> None:
    graphql, warehouse = dagster_dev

    [entry] = graphql(LOCATION)["workspaceOrError"]["locationEntries"]
    assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry
    assert entry["name"] == "b2b_platform"  # as `dg dev` (make ui) names the project
    started = (tmp_path / "dev.log").read_text()
    assert "does not match" not in started  # no warning repeated for every component
    nodes = {"/".join(n["assetKey"]["path"]): n for n in graphql(ASSET_NODES)["assetNodes"]}
    assert nodes["reports/monthly_sales"]["groupName"] == "reports"
    assert nodes["raw/weblogs"]["isPartitioned"]
    assert ["core", "fct_order_lines"] in [
        d["path"] for d in nodes["reports/monthly_sales"]["dependencyKeys"]
    ]

    # one month of raw web logs, as the UI's "Materialize" on a partition does (through
    # Dagster's GraphQL client, as `b2b run` queues its runs)
    client = DagsterGraphQLClient("127.0.0.1", port_number=graphql.port)
    run_id = client.submit_job_execution(
        "__ASSET_JOB", entry["name"], "__repository__",
        tags={"dagster/partition": "2026-09-01"}, asset_selection=[["raw", "weblogs"]],
    )  # fmt: skip

    def run_finished() -> dg.DagsterRunStatus | None:
        status = client.get_run_status(run_id)
        return status if status in RUN_ENDED else None

    assert wait_for("the partition run", run_finished) == dg.DagsterRunStatus.SUCCESS
    months = query(warehouse, "SELECT DISTINCT partition_key FROM etl.file_manifest"
                   " WHERE source = 'weblogs'")  # fmt: skip
    assert months == [("2026-09-01",)]

    # a backfill over three months of raw and staged web requests (run by the daemon)
    backfill = graphql(LAUNCH_BACKFILL, {"params": {
        "partitionNames": ["2026-08-01", "2026-09-01", "2026-10-01"],
        "assetSelection": [{"path": ["raw", "weblogs"]}, {"path": ["staging", "web_requests"]}],
        "fromFailure": False,
    }})["launchPartitionBackfill"]  # fmt: skip
    assert backfill["__typename"] == "LaunchBackfillSuccess", backfill

    def backfill_finished() -> dict | None:
        state = graphql(BACKFILL_STATUS, {"id": backfill["backfillId"]})["partitionBackfillOrError"]
        done = state["status"] not in {"REQUESTED", "CANCELING", "FAILING"}
        return state if done and all(r["status"] in {"SUCCESS", "FAILURE", "CANCELED"}
                                     for r in state["runs"]) else None  # fmt: skip

    state = wait_for("the backfill", backfill_finished)
    assert state["status"] in {"COMPLETED", "COMPLETED_SUCCESS"}, state
    assert state["runs"] and all(r["status"] == "SUCCESS" for r in state["runs"])
    staged = query(warehouse, "SELECT DISTINCT partition_key FROM staging.web_requests ORDER BY 1")
    assert staged == [("2026-08-01",), ("2026-09-01",), ("2026-10-01",)]

    # a run handed to this daemon is built with the daemon's settings: the queue says
    # which of the caller's differ, and `b2b run` refuses, naming them
    data_dir, _ = tiny_sources
    for key, value in {**warehouse_env(data_dir, warehouse),
                       "DAGSTER_HOME": str(tmp_path / "dagster_home")}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    url = f"http://127.0.0.1:{graphql.port}"
    queue = find_queue(url, "b2b_refresh", Settings.from_env().warehouse)
    assert queue.settings_differing(build_resources(Settings.from_env())) == []
    monkeypatch.setenv("B2B_MAX_REJECT_RATE", "0.12")
    assert queue.settings_differing(build_resources(Settings.from_env())) == ["B2B_MAX_REJECT_RATE"]
    refused = subprocess.run(
        [sys.executable, "-m", "b2b_platform.cli", "run"],
        env={**os.environ, "B2B_DAGSTER_URL": url}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "runs with other values of B2B_MAX_REJECT_RATE" in refused.stderr

    # the queue's own calls: a run of b2b_refresh over one asset, canceled while queued
    # (on the spot, even if the daemon has just taken it), as a signal to `b2b run` does
    run_id = queue.launch("b2b_refresh", [dg.AssetKey(["core", "dim_date"])], {"b2b/test": "1"})
    queue.terminate(run_id, queued=True)
    assert client.get_run_status(run_id) == dg.DagsterRunStatus.CANCELED


PSEUDONYM_KEY = "webserver-test-pseudonym-key-5f2c9e"
DB_PASSWORD = "hunter2secret"
RESOURCES = """
query($selector: RepositorySelector!) {
  allTopLevelResourceDetailsOrError(repositorySelector: $selector) {
    __typename
    ... on ResourceDetailsList { results { name
        configFields { name configType { key } }
        configuredValues { key value type } } }
    ... on PythonError { message }
  }
}
"""


@pytest.fixture
def dagster_dev_with_secrets(tmp_path: Path) -> Iterator[tuple[GraphQL, str]]:
    """`dagster dev` with a pseudonym key and a database password in its environment.

    `dagster_dev` takes its database URL from warehouse_env and first loads from it, so
    this one starts the webserver alone: showing resources needs no database.
    """
    home = tmp_path / "dagster_home"
    home.mkdir()
    write_test_instance(home)
    source_db_url = f"postgresql://postgres:{DB_PASSWORD}@127.0.0.1:9/test"
    env = {
        **os.environ,
        **warehouse_env(tmp_path / "data", tmp_path / "warehouse" / "b2b.duckdb", source_db_url),
        "B2B_PSEUDONYM_KEY": PSEUDONYM_KEY,
        "DAGSTER_HOME": str(home),
        "B2B_AUTOMATION": "off",
    }
    with dagster_dev_process(tmp_path, env) as (graphql, process):

        def location_loaded() -> str | None:
            assert process.poll() is None, (tmp_path / "dev.log").read_text()[-2000:]
            try:
                [entry] = graphql(LOCATION)["workspaceOrError"]["locationEntries"]
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                return None
            loaded = entry["locationOrLoadError"] or {}
            return entry["name"] if loaded.get("__typename") == "RepositoryLocation" else None

        yield graphql, wait_for("the code location", location_loaded, timeout=180)


def test_resource_page_shows_secret_variables_by_name_only(dagster_dev_with_secrets) -> None:
    graphql, location = dagster_dev_with_secrets
    selector = {"repositoryLocationName": location, "repositoryName": "__repository__"}
    answer = graphql(RESOURCES, {"selector": selector})["allTopLevelResourceDetailsOrError"]
    assert answer["__typename"] == "ResourceDetailsList", answer
    text = json.dumps(answer)
    assert PSEUDONYM_KEY not in text and DB_PASSWORD not in text
    values = {
        (resource["name"], value["key"]): (value["type"], value["value"])
        for resource in answer["results"]
        for value in resource["configuredValues"]
    }
    assert values[("pseudonymizer", "key")] == ("ENV_VAR", "B2B_PSEUDONYM_KEY")
    assert values[("source_db", "url")] == ("ENV_VAR", "B2B_SOURCE_DB_URL")
