"""Lead workbooks through the assets: manifest, a corrupt workbook, a removed workbook."""

import os
import shutil
import subprocess
import sys

from b2b_platform_tests.helpers import materialize, query, warehouse_env

LEADS = "tag:source=leads"


def _setup(monkeypatch, tmp_path, tiny_sources):
    data_dir, summary = tiny_sources
    leads = tmp_path / "leads"
    shutil.copytree(data_dir / "leads", leads)
    warehouse = tmp_path / "warehouse" / "b2b.duckdb"
    for key, value in warehouse_env(data_dir, warehouse).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("B2B_LEADS_DIR", str(leads))
    assert materialize("tag:source=platform_db").ok
    return warehouse, leads, summary


def test_corrupt_workbook_fails_alone(monkeypatch, tmp_path, tiny_sources):
    warehouse, leads, summary = _setup(monkeypatch, tmp_path, tiny_sources)
    (leads / "broken_export.xlsx").write_bytes(b"PK\x03\x04 truncated zip")
    (leads / "~$leads_open_in_excel.xlsx").write_bytes(b"lock file")  # ignored
    outcome = materialize(LEADS)
    assert outcome.ok
    manifest = dict(query(warehouse, "SELECT status, count(*) FROM etl.file_manifest GROUP BY 1"))
    assert manifest == {"loaded": summary.leads.files, "failed": 1}
    error = query(warehouse, "SELECT error FROM etl.file_manifest WHERE status = 'failed'")[0][0]
    assert "cannot open workbook" in error
    assert query(warehouse, "SELECT count(*) FROM raw.marketing_leads")[0][0] == summary.leads.leads
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [sys.executable, "-m", "b2b_platform.cli", "run", "--select", LEADS],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1 and "broken_export.xlsx" in result.stderr


def test_unchanged_workbooks_are_skipped_and_removed_ones_unloaded(
    monkeypatch, tmp_path, tiny_sources
):
    warehouse, leads, _ = _setup(monkeypatch, tmp_path, tiny_sources)
    assert materialize(LEADS).ok
    before = query(warehouse, "SELECT path, loaded_at FROM etl.file_manifest ORDER BY 1")
    assert materialize(LEADS).ok
    assert query(warehouse, "SELECT path, loaded_at FROM etl.file_manifest ORDER BY 1") == before
    victim = sorted(leads.glob("*.xlsx"))[0]
    rows = query(
        warehouse, "SELECT count(*) FROM raw.marketing_leads WHERE source_file = ?", [str(victim)]
    )
    assert rows[0][0] > 0
    victim.unlink()
    assert materialize(LEADS).ok
    assert query(
        warehouse, "SELECT count(*) FROM raw.marketing_leads WHERE source_file = ?", [str(victim)]
    ) == [(0,)]
    assert query(
        warehouse, "SELECT status FROM etl.file_manifest WHERE path = ?", [str(victim)]
    ) == [("removed",)]
    broken = query(warehouse, "SELECT count(*) FROM etl.record_accounting"
                   " WHERE rows_read <> rows_loaded + rows_rejected + rows_merged")  # fmt: skip
    assert broken == [(0,)]
