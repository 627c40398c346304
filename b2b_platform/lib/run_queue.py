"""The Dagster run queue, reached through the webserver's GraphQL API.

When a daemon serves the Dagster instance, every writer should wait in one queue:
`b2b run` then submits its runs there (they wait for the `duckdb_warehouse` pool like
any sensor or UI run, and run under the daemon, so the Runs page and the timeline show
them) instead of executing in its own process. The queue is used only when it can be
trusted to run our runs against our warehouse: a daemon heartbeat in this instance,
and a webserver at B2B_DAGSTER_URL whose code location writes the same warehouse.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from b2b_common.errors import UserError
from b2b_platform.lib.resources import SETTING_FIELDS
from b2b_platform.lib.warehouse_location import WarehouseLocation

HEARTBEAT_FRESH_SECONDS = 90
TIMEOUT_SECONDS = 30

LOCATION = """
{ workspaceOrError { ... on Workspace { locationEntries { name
    locationOrLoadError { __typename ... on RepositoryLocation {
      repositories { name pipelines { name } } } } } } } }
"""
RESOURCES = """
query($selector: RepositorySelector!) {
  allTopLevelResourceDetailsOrError(repositorySelector: $selector) {
    ... on ResourceDetailsList { results { name configuredValues { key value type } } } } }
"""
LAUNCH_RUN = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}
"""
TERMINATE_RUN = """
mutation($runId: String!) {
  terminateRun(runId: $runId, terminatePolicy: MARK_AS_CANCELED_IMMEDIATELY) { __typename }
}
"""
SAFE_TERMINATE_RUN = """
mutation($runId: String!) {
  terminateRun(runId: $runId, terminatePolicy: SAFE_TERMINATE) { __typename }
}
"""


class QueueUnavailable(UserError):
    """The run queue cannot take our runs (the reason is the message). Before `b2b run`
    chose the queue it means "run in process"; once it follows runs there (the webserver
    went away), it ends `b2b run` with that one line, the runs it launched going on."""


# a code location's resource configuration: (resource, field) -> its value as this
# process sees it (a field set from an environment variable is read here)
Configured = dict[tuple[str, str], Any]


@dataclass(frozen=True)
class RunQueue:
    url: str
    location: str
    repository: str
    configured: Configured = field(default_factory=dict)

    def settings_differing(self, resources: Mapping[str, Any]) -> list[str]:
        """The variables whose values the daemon's code location does not share with
        `resources` (what this process would build with): its runs would not use ours."""
        differing = set()
        for (resource, name), variable in SETTING_FIELDS.items():
            ours = _field_value(resources.get(resource), name)
            theirs = self.configured.get((resource, name))
            if _comparable(ours) != _comparable(theirs):
                differing.add(variable)
        return sorted(differing)

    def _call(self, text: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return graphql(self.url, text, variables)

    def launch(self, job: str, keys: list[dg.AssetKey], tags: dict[str, str]) -> str:
        """Queue a run of `job` over these assets; returns its run id."""
        answer = self._call(LAUNCH_RUN, {"params": {
            "selector": {"repositoryLocationName": self.location,
                         "repositoryName": self.repository, "jobName": job,
                         "assetSelection": [{"path": list(k.path)} for k in keys]},
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
        }})["launchRun"]  # fmt: skip
        if answer["__typename"] != "LaunchRunSuccess":
            detail = answer.get("message") or json.dumps(answer.get("errors"))[:300]
            raise QueueUnavailable(
                f"the webserver refused the run ({answer['__typename']}: {detail})"
            )
        return answer["run"]["runId"]

    def terminate(self, run_id: str, *, queued: bool) -> None:
        """Stop a run: a queued one is canceled at once, a started one is interrupted."""
        self._call(TERMINATE_RUN if queued else SAFE_TERMINATE_RUN, {"runId": run_id})


def graphql(url: str, text: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    body = json.dumps({"query": text, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        url.rstrip("/") + "/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            payload = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise QueueUnavailable(f"no Dagster webserver answers at {url} ({exc})") from None
    if payload.get("errors"):
        raise QueueUnavailable(f"the webserver at {url} answered {payload['errors'][0]}")
    return payload["data"]


def daemon_serves(instance: dg.DagsterInstance) -> bool:
    """Whether a dagster-daemon has sent this instance a heartbeat lately."""
    now = dt.datetime.now(dt.UTC).timestamp()
    beats = instance.get_daemon_heartbeats()
    return any(now - beat.timestamp < HEARTBEAT_FRESH_SECONDS for beat in beats.values())


def _field_value(resource: Any, name: str) -> Any:
    """A resource field's value in this process (a variable read here)."""
    value = getattr(resource, name, None)
    return value.get_value() if isinstance(value, dg.EnvVar) else value


def _comparable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))  # tuples as lists, dates as text


def _configured_value(kind: str, text: str) -> Any:
    """A configured value as this process sees it: a variable's name is read here."""
    if kind == "ENV_VAR":
        return os.environ.get(text)
    try:
        return json.loads(text)
    except ValueError:
        return text


def _writes(database: Any, warehouse: WarehouseLocation) -> bool:
    """Whether a webserver's configured `database` is this warehouse (a file compared by
    its resolved path, a lake by its catalog)."""
    if database is None:
        return False
    if warehouse.is_lake:
        return str(database) == warehouse.target
    return Path(str(database)).resolve() == warehouse.file_path.resolve()


def find_queue(url: str, job: str, warehouse: WarehouseLocation) -> RunQueue:
    """The code location at `url` that has `job` and writes `warehouse`."""
    entries = graphql(url, LOCATION)["workspaceOrError"].get("locationEntries") or []
    for entry in entries:
        location = entry["locationOrLoadError"] or {}
        for repository in location.get("repositories") or []:
            if job not in {p["name"] for p in repository["pipelines"]}:
                continue
            selector = {"repositoryLocationName": entry["name"],
                        "repositoryName": repository["name"]}  # fmt: skip
            details = graphql(url, RESOURCES, {"selector": selector})
            resources = details["allTopLevelResourceDetailsOrError"].get("results") or []
            configured = {
                (r["name"], v["key"]): _configured_value(v.get("type", "VALUE"), v["value"])
                for r in resources
                for v in r["configuredValues"]
            }
            database = configured.get(("duckdb", "database"))
            if not _writes(database, warehouse):
                raise QueueUnavailable(
                    f"the webserver at {url} writes warehouse"
                    f" {WarehouseLocation(str(database)).describe()}, not {warehouse.describe()}"
                )
            return RunQueue(url, entry["name"], repository["name"], configured)
    raise QueueUnavailable(f"the webserver at {url} has no code location with job {job}")
