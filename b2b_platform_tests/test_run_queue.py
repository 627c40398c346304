"""The run queue's requests and what each answer means to `b2b run`, against a GraphQL
transport that answers like the webserver (test_webserver.py and the soak drive a real
one): the code location found by job and warehouse, a run launched over its assets,
refusals and failed exchanges as one line, a queued run canceled on the spot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from gql import GraphQLRequest
from gql.transport import Transport
from graphql import ExecutionResult, GraphQLError

from b2b_platform.lib.orchestration import run_queue
from b2b_platform.lib.orchestration.run_queue import QueueUnavailable, RunQueue, find_queue
from b2b_platform.lib.warehouse.location import WarehouseLocation
from b2b_platform_tests.dagster_dev import free_port

URL = "http://127.0.0.1:3000"
Answer = Callable[[str, dict[str, Any]], ExecutionResult]


class FakeWebserver(Transport):
    """Answers each request with `answer(query text, variables)`; keeps what was sent."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def execute(self, request: GraphQLRequest, *args: Any, **kwargs: Any) -> ExecutionResult:
        text = request.document.loc.source.body if request.document.loc else ""
        variables = dict(request.variable_values or {})
        self.sent.append((text, variables))
        return self.answer(text, variables)


@pytest.fixture
def webserver(monkeypatch: pytest.MonkeyPatch) -> Callable[[Answer], FakeWebserver]:
    def serve(answer: Answer) -> FakeWebserver:
        fake = FakeWebserver(answer)
        monkeypatch.setattr(run_queue, "_transport", lambda url: fake)
        return fake

    return serve


def _locations(database: str) -> ExecutionResult:
    repository = {
        "name": "__repository__",
        "pipelines": [{"name": "b2b_refresh"}, {"name": "__ASSET_JOB"}],
        "allTopLevelResourceDetails": [
            {"name": "duckdb", "configuredValues": [
                {"key": "database", "value": f'"{database}"', "type": "VALUE"}]},
            {"name": "quality", "configuredValues": [
                {"key": "max_reject_rate", "value": "B2B_TEST_RATE", "type": "ENV_VAR"}]},
        ],
    }  # fmt: skip
    entries = [
        {"name": "broken", "locationOrLoadError": {}},  # a location that failed to load
        {"name": "b2b_platform", "locationOrLoadError": {"repositories": [repository]}},
    ]
    return ExecutionResult({"workspaceOrError": {"locationEntries": entries}})


def test_the_code_location_with_the_job_and_this_warehouse_is_the_queue(
    webserver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = tmp_path / "b2b.duckdb"
    webserver(lambda text, variables: _locations(str(warehouse)))
    monkeypatch.setenv("B2B_TEST_RATE", "0.2")
    queue = find_queue(URL, "b2b_refresh", WarehouseLocation(str(warehouse)))
    assert (queue.location, queue.repository) == ("b2b_platform", "__repository__")
    # a value set from a variable is read here, as this process would see it
    assert queue.configured[("quality", "max_reject_rate")] == "0.2"

    with pytest.raises(
        QueueUnavailable, match=r"writes warehouse .*b2b.duckdb, not .*other.duckdb"
    ):
        find_queue(URL, "b2b_refresh", WarehouseLocation(str(tmp_path / "other.duckdb")))
    with pytest.raises(QueueUnavailable, match="has no code location with job nightly"):
        find_queue(URL, "nightly", WarehouseLocation(str(warehouse)))


def test_a_run_is_launched_over_its_assets_with_its_tags(webserver) -> None:
    def answer(text: str, variables: dict[str, Any]) -> ExecutionResult:
        launched = {"__typename": "LaunchRunSuccess", "run": {"runId": "run-1"}}
        return ExecutionResult({"launchPipelineExecution": launched})

    fake = webserver(answer)
    keys = [dg.AssetKey(["raw", "orders"]), dg.AssetKey(["staging", "orders"])]
    queue = RunQueue(URL, "b2b_platform", "__repository__")
    assert queue.launch("b2b_refresh", keys, {"b2b/launched_by": "b2b run"}) == "run-1"
    [(_, variables)] = fake.sent
    params = variables["executionParams"]
    assert params["selector"]["repositoryLocationName"] == "b2b_platform"
    assert params["selector"]["assetSelection"] == [
        {"path": ["raw", "orders"]},
        {"path": ["staging", "orders"]},
    ]
    assert {"key": "b2b/launched_by", "value": "b2b run"} in params["executionMetadata"]["tags"]


@pytest.mark.parametrize(
    ("refusal", "message"),
    [
        ({"__typename": "PythonError", "message": "boom"}, "(PythonError: boom)"),
        (
            {"__typename": "RunConfigValidationInvalid", "errors": [{"message": "bad field"}]},
            '(RunConfigValidationInvalid: [{"message": "bad field"}])',
        ),
        # the client asks for no message of this type: still one readable line
        ({"__typename": "InvalidSubsetError"}, "InvalidSubsetError: an asset its code"),
    ],
)
def test_a_refused_launch_is_one_line(webserver, refusal: dict, message: str) -> None:
    webserver(lambda text, variables: ExecutionResult({"launchPipelineExecution": refusal}))
    queue = RunQueue(URL, "b2b_platform", "__repository__")
    with pytest.raises(QueueUnavailable, match="the webserver refused the run") as raised:
        queue.launch("b2b_refresh", [dg.AssetKey("orders")], {})
    assert message in str(raised.value)
    assert "mutation" not in str(raised.value)  # never the query the client sent


def test_an_error_in_the_answer_is_named_not_the_query(webserver) -> None:
    webserver(lambda text, variables: ExecutionResult(None, [GraphQLError("no such field")]))
    queue = RunQueue(URL, "b2b_platform", "__repository__")
    for call in (
        lambda: queue.launch("b2b_refresh", [dg.AssetKey("orders")], {}),
        lambda: find_queue(URL, "b2b_refresh", WarehouseLocation("w.duckdb")),
    ):
        with pytest.raises(QueueUnavailable, match=f"the webserver at {URL} answered .*no such"):
            call()


def test_a_queued_run_is_canceled_at_once_a_started_one_interrupted(webserver) -> None:
    def answer(text: str, variables: dict[str, Any]) -> ExecutionResult:
        # the run ended meanwhile: a refusal the caller does not need to hear of
        return ExecutionResult(
            {"terminateRun": {"__typename": "TerminateRunFailure", "message": "finished"}}
        )

    fake = webserver(answer)
    queue = RunQueue(URL, "b2b_platform", "__repository__")
    queue.terminate("run-1", queued=True)
    queue.terminate("run-2", queued=False)
    (queued_text, queued_vars), (started_text, started_vars) = fake.sent
    assert "MARK_AS_CANCELED_IMMEDIATELY" in queued_text and queued_vars == {"runId": "run-1"}
    # the client's terminate_run: the launcher interrupts the run (SAFE_TERMINATE)
    assert "terminatePolicy" not in started_text and started_vars == {"runId": "run-2"}


def test_no_webserver_means_run_here() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(QueueUnavailable, match=f"no Dagster webserver answers at {url}"):
        find_queue(url, "b2b_refresh", WarehouseLocation("w.duckdb"))
    queue = RunQueue(url, "b2b_platform", "__repository__")
    with pytest.raises(QueueUnavailable, match=f"no Dagster webserver answers at {url}"):
        queue.launch("b2b_refresh", [dg.AssetKey("orders")], {})
    with pytest.raises(QueueUnavailable, match=f"no Dagster webserver answers at {url}"):
        queue.terminate("run-1", queued=False)
