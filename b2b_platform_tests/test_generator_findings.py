"""The simulator tells the truth: what `b2b generate` says the warehouse will find is
what the quarantine holds after `b2b run`, record for record, on tiny and small."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from b2b_platform_tests.helpers import query, warehouse_env
from generators.config import SCALES, GenerationConfig
from generators.sources import generate_sources

FOUND = """SELECT source, entity, reason_code, action, count(*)
           FROM quarantine.rejected_records GROUP BY ALL"""


def _found(warehouse: Path) -> dict[tuple[str, str, str, str], int]:
    return {tuple(row[:4]): row[4] for row in query(warehouse, FOUND)}  # type: ignore[misc]


def test_announced_findings_are_the_quarantine_on_tiny(built_warehouse: Path, tiny_sources) -> None:
    _, summary = tiny_sources
    assert summary.findings and _found(built_warehouse) == summary.findings


@pytest.mark.slow
def test_announced_findings_are_the_quarantine_on_small(tmp_path: Path) -> None:
    """A different size, 13 months and chance collisions: the announcement still holds."""
    config = GenerationConfig(scale=SCALES["small"], seed=42, as_of=dt.date(2026, 11, 25))
    data = tmp_path / "data"
    summary = generate_sources(config, data)
    warehouse = tmp_path / "warehouse" / "b2b.duckdb"
    env = {
        **os.environ,
        **warehouse_env(data, warehouse),
        "B2B_AS_OF": str(config.as_of),
        "B2B_FIRST_MONTH": config.first_month,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "B2B_AUTOMATION": "off",
    }
    (tmp_path / "home").mkdir()
    b2b = Path(sys.executable).with_name("b2b")
    # the quarantine is written by the raw and staging steps: core and reports add nothing
    command = [b2b, "run", "--select", '+key:"staging/*"']
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    found = _found(warehouse)
    assert found == summary.findings
    # the rules that make found differ from planted are exercised at this size
    assert (
        found["platform_db", "customers", "duplicate_customer", "merged"]
        != (summary.injected["duplicate_customer"])
    )
    assert found["weblogs", "log_lines", "future_request", "rejected"] > 0
