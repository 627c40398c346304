"""Blocking checks hold: a slice that fails one is never published, downstream tables,
reports and exported files show what was published before, and the failure names the
check; a held month holds only itself."""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from b2b_platform_tests.helpers import query, snapshot, warehouse_env

pytestmark = pytest.mark.slow


def _files(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


def _b2b(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "b2b_platform.cli", *args],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.fixture
def built(tmp_path, tiny_sources):
    """The whole graph built by `b2b run` on a private copy of the tiny log directory."""
    data_dir, _ = tiny_sources
    logs = tmp_path / "weblogs"
    shutil.copytree(data_dir / "weblogs", logs)
    warehouse = tmp_path / "warehouse" / "b2b.duckdb"
    env = {
        **os.environ,
        **warehouse_env(data_dir, warehouse),
        "B2B_LOG_DIR": str(logs),
        "DAGSTER_HOME": str(tmp_path / "home"),
    }
    first = _b2b(env, "run")
    assert first.returncode == 0, first.stderr[-3000:]
    return env, warehouse, logs


def test_a_blocked_month_leaves_core_reports_and_files_untouched(built):
    env, warehouse, logs = built
    reports = warehouse.parent / "reports"
    before_tables = snapshot(warehouse, ("core", "reports"))
    before_raw = query(warehouse, "SELECT count(*) FROM raw.weblogs")[0][0]
    before_files = _files(reports)
    # the reproduction: the same day's file again, as if a second web server had logged
    # it byte for byte (a copy beside the file in its own directory is skipped as one;
    # two servers' files are two files), so the month would hold every line twice
    (day,) = logs.glob("access-2026-11-10.log*")
    (logs / "web2").mkdir()
    shutil.copy(day, logs / "web2" / day.name)
    blocked = _b2b(env, "run")
    assert blocked.returncode == 1  # a schedule alerts
    assert "raw/weblogs:manifest_consistent (held 2026-11)" in blocked.stdout
    assert "b2b: error: raw/weblogs Nov 2026 held: raw/weblogs:manifest_consistent" in (
        blocked.stderr
    )
    # the month holds only itself: what follows it ran, from the published months
    assert "not started" not in blocked.stdout
    # nothing of the month was published: raw, core, reports and the CSVs are as before;
    # the workbook and the page say the month is held
    assert query(warehouse, "SELECT count(*) FROM raw.weblogs")[0][0] == before_raw
    assert snapshot(warehouse, ("core", "reports")) == before_tables
    csv = {name: digest for name, digest in _files(reports).items() if name.endswith(".csv")}
    assert csv == {name: d for name, d in before_files.items() if name.endswith(".csv")}
    failed = query(
        warehouse,
        "SELECT partition_key, error FROM etl.run_log WHERE asset_key = 'raw/weblogs'"
        " AND status = 'failed'",
    )
    assert len(failed) == 1 and failed[0][0] == "2026-11-01"
    assert "blocking check failed in Nov 2026: raw/weblogs:manifest_consistent" in failed[0][1]
    status = _b2b(env, "status")
    assert "Held now" in status.stdout
    assert "raw/weblogs Nov 2026 since" in status.stdout and "manifest_consistent" in status.stdout
    page = (reports / "b2b_reports.html").read_text(encoding="utf-8")
    assert "Nov 2026 of the web logs held back by a quality check" in page
    # the operator removes the copy: the month publishes and the failure is behind us
    shutil.rmtree(logs / "web2")
    fixed = _b2b(env, "run")
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    assert snapshot(warehouse, ("core", "reports")) == before_tables
    assert "Held now" not in _b2b(env, "status").stdout
