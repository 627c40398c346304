"""Shared fixtures: generated tiny data (once per session) and the PostgreSQL server."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from b2b_platform_tests.helpers import materialize, warehouse_env
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
    """The three simulated sources at tiny scale, generated once per session."""
    data_dir = tmp_path_factory.mktemp("tiny-data")
    return data_dir, generate_sources(tiny_config, data_dir)


@pytest.fixture(scope="session")
def built_warehouse(tmp_path_factory: pytest.TempPathFactory, tiny_sources) -> Path:
    """The whole graph materialized once on tiny data (read-only for the tests using it)."""
    data_dir, _ = tiny_sources
    warehouse = tmp_path_factory.mktemp("built") / "b2b.duckdb"
    with pytest.MonkeyPatch.context() as mp:
        for key, value in warehouse_env(data_dir, warehouse).items():
            mp.setenv(key, value)
        outcome = materialize()
    assert outcome.ok, outcome.failed_runs
    assert not outcome.failed_checks, outcome.failed_checks
    return warehouse


@pytest.fixture
def use_warehouse(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_sources):
    """Point the code location at the tiny sources and a fresh warehouse in tmp_path."""
    data_dir, _ = tiny_sources
    warehouse = tmp_path / "warehouse" / "b2b.duckdb"
    for key, value in warehouse_env(data_dir, warehouse).items():
        monkeypatch.setenv(key, value)
    return warehouse


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """With pytest-xdist (`make test` runs two workers), the tests that load the shared
    PostgreSQL database `test` run on one worker, one after another; a lake test makes a
    database of its own and goes anywhere."""
    for item in items:
        if item.get_closest_marker("postgres") and not item.get_closest_marker("lake"):
            item.add_marker(pytest.mark.xdist_group("postgres_test_database"))
