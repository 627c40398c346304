"""`dagster dev` (webserver and daemon) on a temporary instance, for tests that drive it
as an operator would: through its GraphQL API."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg

ROOT = Path(__file__).parents[1]
DEV_CONFIG = ROOT / "b2b_platform" / "dagster.dev.yaml"
# the tests' instance: the development one, its run queue looked at every second instead of
# every five (the same coordinator, pools and limits; a run waits less for its turn)
QUICK_QUEUE = """
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
"""


def write_test_instance(home: Path) -> None:
    """`dagster.yaml` in `home`: DEV_CONFIG with QUICK_QUEUE."""
    (home / "dagster.yaml").write_text(DEV_CONFIG.read_text() + QUICK_QUEUE)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class GraphQL:
    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/graphql"

    def __call__(self, text: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": text, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = json.loads(response.read())
        assert "errors" not in payload, payload["errors"]
        return payload["data"]


def wait_for(
    what: str, check: Callable[[], Any], timeout: float = 240.0, every: float = 1.0
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def dagster_dev_process(
    tmp_path: Path, env: dict[str, str]
) -> Iterator[tuple[GraphQL, subprocess.Popen]]:
    """`dagster dev` on a free port with this environment, its log in tmp_path/dev.log,
    stopped (its whole process group) on the way out."""
    port = free_port()
    if env.get("DAGSTER_HOME"):
        # its storage created (and migrated) before the webserver and the daemon start:
        # both migrating a new SQLite storage at once can fail ("table alembic_version
        # already exists"); a deployment's home exists from its first `b2b run`
        dg.DagsterInstance.from_config(env["DAGSTER_HOME"]).dispose()
    with (tmp_path / "dev.log").open("w") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("dagster")), "dev", "-w", "workspace.yaml",
             "-h", "127.0.0.1", "-p", str(port)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
        )  # fmt: skip
        try:
            yield GraphQL(port), process
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
