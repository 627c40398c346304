"""The Dagster run queue, reached through the webserver's GraphQL API.

When a daemon serves the Dagster instance, every writer should wait in one queue:
`b2b run` then submits its runs there (they wait for the `duckdb_warehouse` pool like
any sensor or UI run, and run under the daemon, so the Runs page and the timeline show
them) instead of executing in its own process. The queue is used only when it can be
trusted to run our runs against our warehouse: a daemon heartbeat in this instance,
and a webserver at B2B_DAGSTER_URL whose code location writes the same warehouse.

Runs are submitted and stopped with Dagster's GraphQL client. It has no method to list
the code locations with their resources' configuration, nor to cancel a run without
asking its launcher first, so those two requests are written here and sent through gql,
the GraphQL library the client itself is built on.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportError, TransportQueryError
from gql.transport.requests import RequestsHTTPTransport

from b2b_common.errors import UserError
from b2b_platform.lib.resources import SETTING_FIELDS
from b2b_platform.lib.warehouse.location import WarehouseLocation

HEARTBEAT_FRESH_SECONDS = 90
TIMEOUT_SECONDS = 30

# every code location with its jobs and the configuration of its resources
LOCATIONS = """
{ workspaceOrError { ... on Workspace { locationEntries { name
    locationOrLoadError { ... on RepositoryLocation { repositories { name pipelines { name }
      allTopLevelResourceDetails { name configuredValues { key value type } } } } } } } } }
"""
# a queued run is canceled on the spot, even when the daemon has just dequeued it: the
# client's terminate_run asks the launcher, which refuses a run that is still starting
CANCEL_QUEUED_RUN = """
mutation($runId: String!) {
  terminateRun(runId: $runId, terminatePolicy: MARK_AS_CANCELED_IMMEDIATELY) { __typename }
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

    @cached_property
    def _client(self) -> DagsterGraphQLClient:
        # the hostname only names the server in the client's own errors, never shown
        return DagsterGraphQLClient(self.url, transport=_transport(self.url))

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

    def launch(self, job: str, keys: list[dg.AssetKey], tags: dict[str, str]) -> str:
        """Queue a run of `job` over these assets; returns its run id."""
        try:
            return self._client.submit_job_execution(
                job, self.location, self.repository, tags=tags, asset_selection=keys
            )
        except DagsterGraphQLClientError as exc:
            if exc.__cause__ is not None:  # the exchange failed, not the launch
                raise _unavailable(self.url, exc.__cause__) from None
            # (answer type, its message or errors), or the type and a body
            kind = exc.args[0] if exc.args else "error"
            detail = exc.args[1] if len(exc.args) > 1 else exc.body
            text = detail if isinstance(detail, str) else json.dumps(detail, default=str)[:300]
            raise QueueUnavailable(f"the webserver refused the run ({kind}: {text})") from None
        except KeyError:  # an answer type whose message the client's query does not ask for
            raise QueueUnavailable(
                "the webserver refused the run (an answer Dagster's GraphQL client cannot"
                " read, such as InvalidSubsetError: an asset its code location lacks)"
            ) from None

    def terminate(self, run_id: str, *, queued: bool) -> None:
        """Stop a run: a queued one is canceled at once, a started one is interrupted.
        A refusal (the run ended meanwhile) is not an error: the caller waits for the
        run's end and reports it."""
        if queued:
            _query(self.url, CANCEL_QUEUED_RUN, {"runId": run_id})
            return
        try:
            self._client.terminate_run(run_id)
        except DagsterGraphQLClientError as exc:
            if exc.__cause__ is not None:
                raise _unavailable(self.url, exc.__cause__) from None


def _transport(url: str) -> RequestsHTTPTransport:
    return RequestsHTTPTransport(url=url.rstrip("/") + "/graphql", timeout=TIMEOUT_SECONDS)


def _query(url: str, text: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """A request the client has no method for (see the module's docstring)."""
    try:
        request = GraphQLRequest(text, variable_values=variables)
        return Client(transport=_transport(url)).execute(request)
    except (TransportError, OSError, ValueError) as exc:  # requests' errors are OSErrors
        raise _unavailable(url, exc) from None


def _unavailable(url: str, exc: BaseException) -> QueueUnavailable:
    """Why the webserver at `url` cannot be used, from what its exchange raised (never
    the client's own message, which repeats the whole query)."""
    if isinstance(exc, TransportQueryError) and exc.errors:
        return QueueUnavailable(f"the webserver at {url} answered {exc.errors[0]}")
    return QueueUnavailable(f"no Dagster webserver answers at {url} ({exc})")


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
    entries = _query(url, LOCATIONS)["workspaceOrError"].get("locationEntries") or []
    for entry in entries:
        location = entry["locationOrLoadError"] or {}
        for repository in location.get("repositories") or []:
            if job not in {p["name"] for p in repository["pipelines"]}:
                continue
            configured = {
                (r["name"], v["key"]): _configured_value(v.get("type", "VALUE"), v["value"])
                for r in repository["allTopLevelResourceDetails"]
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
