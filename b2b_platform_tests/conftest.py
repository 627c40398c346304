"""Shared fixtures: generated tiny data (once per session) and the PostgreSQL server."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from generators.config import SCALES, GenerationConfig
from generators.platform import PlatformData, generate_platform

TEST_AS_OF = dt.date(2026, 11, 25)
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
