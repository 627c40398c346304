"""Shared fixtures: generated tiny data and its whole-graph build (each made once per
`pytest` run, whatever the number of xdist workers) and the PostgreSQL server."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import pytest

from b2b_platform_tests.helpers import materialize, warehouse_env
from b2b_platform_tests.shared_builds import DROP_DATABASES, once_per_run
from generators.config import SCALES, GenerationConfig
from generators.platform import PlatformData, generate_platform
from generators.sources import GenerationSummary, generate_sources

TEST_AS_OF = dt.date(2026, 11, 25)
# The code location reads its calendar when first imported: fix it for the whole session.
os.environ["B2B_AS_OF"] = TEST_AS_OF.isoformat()
os.environ["B2B_FIRST_MONTH"] = "2026-08"  # tiny scale spans 4 months ending at the as-of month
os.environ["B2B_PSEUDONYM_KEY"] = "test-pseudonym-key, not a secret"  # no key file in data/
POSTGRES_URL = os.environ.get("B2B_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SHARED_FIXTURES = Path(__file__).parent / "fixtures"
# the order tests start in, by marker: the longest first, so that no worker is left
# alone with one at the end; a test that waits on a daemon lets the other worker work
LONG_FIRST = ("soak", "daemon", "calendar", "lake", "slow")


@pytest.fixture(scope="session")
def tiny_config() -> GenerationConfig:
    return GenerationConfig(scale=SCALES["tiny"], seed=7, as_of=TEST_AS_OF)


@pytest.fixture(scope="session")
def tiny_platform(tiny_config: GenerationConfig) -> PlatformData:
    return generate_platform(tiny_config)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The real PostgreSQL server; missing it fails under CI and skips on a laptop."""
    import adbc_driver_postgresql.dbapi as driver

    try:
        driver.connect(POSTGRES_URL).close()
    except Exception as exc:
        message = f"PostgreSQL at {POSTGRES_URL} is not reachable: {str(exc).splitlines()[0]}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return POSTGRES_URL


@pytest.fixture(scope="session")
def tiny_sources(
    tmp_path_factory: pytest.TempPathFactory, tiny_config: GenerationConfig
) -> tuple[Path, GenerationSummary]:
    """The three simulated sources at tiny scale, generated once per run and shared by
    the workers: read-only (a test that changes a source changes a copy of its own)."""

    def generate(directory: Path) -> tuple[Path, GenerationSummary]:
        return directory, generate_sources(tiny_config, directory)

    return once_per_run(tmp_path_factory, "tiny-data", generate)


@pytest.fixture(scope="session")
def built_warehouse(tmp_path_factory: pytest.TempPathFactory, tiny_sources) -> Path:
    """The whole graph materialized on tiny data, once per run; each worker reads its own
    copy of the warehouse directory (the file, its side files and the reports), made
    with their modes kept (read-only for the tests using it)."""
    data_dir, _ = tiny_sources

    def build(directory: Path) -> Path:
        warehouse = directory / "b2b.duckdb"
        with pytest.MonkeyPatch.context() as mp:
            for key, value in warehouse_env(data_dir, warehouse).items():
                mp.setenv(key, value)
            outcome = materialize()
        assert outcome.ok, outcome.failed_runs
        assert not outcome.failed_checks, outcome.failed_checks
        return warehouse

    shared = once_per_run(tmp_path_factory, "built", build)
    copy = tmp_path_factory.mktemp("built") / "warehouse"
    shutil.copytree(shared.parent, copy, ignore=shutil.ignore_patterns(".result.pickle"))
    return copy / shared.name


@pytest.fixture
def use_warehouse(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_sources):
    """Point the code location at the tiny sources and a fresh warehouse in tmp_path."""
    data_dir, _ = tiny_sources
    warehouse = tmp_path / "warehouse" / "b2b.duckdb"
    for key, value in warehouse_env(data_dir, warehouse).items():
        monkeypatch.setenv(key, value)
    return warehouse


# modules whose module-scoped fixture builds a warehouse: their tests keep to one worker,
# which builds it once (spread over two, each worker would build it)
ONE_WORKER_MODULES = {
    "test_checks_bite.py", "test_hostile_inputs.py", "test_reports_known_answers.py",
    "test_quality_rules.py", "test_weblogs_pipeline.py", "test_warehouse_transfer.py",
}  # fmt: skip


# the file of this run's shared root where the workers put each grouped test's group
GROUPS_FILE = "xdist-groups.json"


def _group(item: pytest.Item) -> str | None:
    if item.get_closest_marker("postgres") and not item.get_closest_marker("lake"):
        return "postgres_test_database"
    return item.path.stem if item.path.name in ONE_WORKER_MODULES else None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With pytest-xdist (`make test` runs two workers), the tests that load the shared
    PostgreSQL database `test` run on one worker, one after another; a lake test makes a
    database of its own and goes anywhere; the tests of ONE_WORKER_MODULES keep to one
    worker each (see pytest_xdist_make_scheduler). The longest tests start first
    (LONG_FIRST, by marker)."""
    groups = {}
    for item in items:
        group = _group(item)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
            groups[item.nodeid] = group

    def rank(item: pytest.Item) -> int:
        found = [i for i, mark in enumerate(LONG_FIRST) if item.get_closest_marker(mark)]
        return found[0] if found else len(LONG_FIRST)

    items.sort(key=rank)  # stable: the order within a rank is the collection's
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:  # every worker collects the same tests: whichever writes last, the same
        root = config._tmp_path_factory.getbasetemp().parent  # type: ignore[attr-defined]
        written = root / f"{GROUPS_FILE}.{worker}"
        written.write_text(json.dumps(groups))
        written.replace(root / GROUPS_FILE)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """`--dist loadgroup` that keeps each group to one worker. xdist's own marks a grouped
    test by a suffix on its node id, which pytest 9 ignores (a node id is no longer a
    string xdist can change): every group was spread over the workers. Here the
    controller reads the groups the workers wrote as they collected (GROUPS_FILE)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    path = config._tmp_path_factory.getbasetemp() / GROUPS_FILE  # type: ignore[attr-defined]

    class MarkedGroupScheduling(LoadScopeScheduling):
        groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.groups is None:  # the workers have collected: the file is there
                self.groups = json.loads(path.read_text()) if path.exists() else {}
            return self.groups.get(nodeid, nodeid)

    return MarkedGroupScheduling(config, log)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On the controller (or a run without xdist), once every worker is done: drop the
    databases made once per run."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    factory = getattr(session.config, "_tmp_path_factory", None)
    listed = factory.getbasetemp() / DROP_DATABASES if factory else None
    if listed is None or not listed.exists():
        return
    import psycopg2

    conn = psycopg2.connect(POSTGRES_URL.replace("/test", "/postgres"))
    conn.autocommit = True
    try:
        for database in listed.read_text().split():
            conn.cursor().execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        conn.close()
    listed.unlink()
