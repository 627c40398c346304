"""Lead workbooks through the assets: manifest, a corrupt workbook, a workbook gone,
a touched workbook, rows without a lead id."""

import datetime as dt
import os
import shutil
import subprocess
import sys

import openpyxl

from b2b_platform.cli import main
from b2b_platform_tests.helpers import materialize, query, warehouse_env

LEADS = "tag:source=leads"


def leads_warehouse(monkeypatch, tmp_path, tiny_sources):
    """Tiny sources with a private copy of the leads directory, platform already built."""
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
    warehouse, leads, summary = leads_warehouse(monkeypatch, tmp_path, tiny_sources)
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


def test_unchanged_workbooks_are_skipped_and_gone_ones_kept_until_forgotten(
    monkeypatch, tmp_path, tiny_sources, capsys
):
    warehouse, leads, _ = leads_warehouse(monkeypatch, tmp_path, tiny_sources)
    assert materialize(LEADS).ok
    before = query(warehouse, "SELECT path, loaded_at FROM etl.file_manifest ORDER BY 1")
    assert materialize(LEADS).ok
    assert query(warehouse, "SELECT path, loaded_at FROM etl.file_manifest ORDER BY 1") == before
    victim = sorted(leads.glob("*.xlsx"))[0]
    rows_of_victim = "SELECT count(*) FROM raw.marketing_leads WHERE source_file = ?"
    rows = query(warehouse, rows_of_victim, [str(victim)])[0][0]
    assert rows > 0
    victim.unlink()  # gone from the share: its leads are still leads
    assert materialize(LEADS).ok
    assert query(warehouse, rows_of_victim, [str(victim)]) == [(rows,)]
    status = "SELECT status FROM etl.file_manifest WHERE path = ?"
    assert query(warehouse, status, [str(victim)]) == [("gone",)]
    assert main(["forget-missing-files", "leads", "--yes"]) == 0
    assert f"removed {rows:,} rows of 1 file(s)" in capsys.readouterr().out
    assert query(warehouse, rows_of_victim, [str(victim)]) == [(0,)]
    assert query(warehouse, status, [str(victim)]) == [("removed",)]
    assert materialize(LEADS).ok  # the leads staged again without them
    broken = query(warehouse, "SELECT count(*) FROM etl.record_accounting"
                   " WHERE rows_read <> rows_loaded + rows_rejected + rows_merged")  # fmt: skip
    assert broken == [(0,)]
    staged = query(warehouse, "SELECT count(*) FROM staging.leads WHERE source_file = ?",
                   [str(victim)])  # fmt: skip
    assert staged == [(0,)]


def test_an_emptied_leads_directory_keeps_every_lead_and_fails(monkeypatch, tmp_path, tiny_sources):
    warehouse, leads, summary = leads_warehouse(monkeypatch, tmp_path, tiny_sources)
    assert materialize(LEADS).ok
    for path in leads.iterdir():  # the share did not mount
        path.unlink()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [sys.executable, "-m", "b2b_platform.cli", "run", "--select", LEADS],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1
    assert "b2b forget-missing-files leads" in result.stdout + result.stderr
    assert query(warehouse, "SELECT count(*) FROM raw.marketing_leads")[0][0] == summary.leads.leads
    assert query(warehouse, "SELECT DISTINCT status FROM etl.file_manifest") == [("loaded",)]


def test_rows_without_lead_id_are_rejected_one_by_one(monkeypatch, tmp_path, tiny_sources):
    warehouse, leads, summary = leads_warehouse(monkeypatch, tmp_path, tiny_sources)
    path = leads / "leads_sin_id.xlsx"
    wb = openpyxl.Workbook()
    for row in [
        ["Lead ID", "Email", "Teléfono", "Empresa", "CUIT", "Campaña"],
        [None, "ana@example.com", None, "Agro SA", "30546689979", "Expo"],
        ["   ", "luis@example.com", "+54 11 5555-1234", "Agro SA", None, "Expo"],
        [None, None, None, "Sin Contacto SRL", None, "Expo"],  # no id and no contact
    ]:
        wb.active.append(row)
    wb.save(path)
    outcome = materialize(LEADS)
    assert outcome.ok, outcome.failed_runs
    assert not outcome.failed_checks, outcome.failed_checks  # unique_key among them
    findings = query(
        warehouse,
        "SELECT record_key, reason_code, action, detail FROM quarantine.rejected_records"
        " WHERE record_key LIKE ? ORDER BY record_key",
        [f"{path}#%"],
    )
    assert findings == [
        (f"{path}#{row}", "missing_lead_id", "rejected", "row has no lead id") for row in (2, 3, 4)
    ]
    assert query(
        warehouse, "SELECT count(*) FROM staging.leads WHERE source_file = ?", [str(path)]
    ) == [(0,)]
    accounting = query(
        warehouse,
        "SELECT rows_read, rows_loaded, rows_rejected, rows_merged FROM etl.record_accounting"
        " WHERE source = 'leads' AND entity = 'leads'",
    )
    [(read, loaded, rejected, merged)] = accounting
    assert read == summary.leads.leads + 3 == loaded + rejected + merged


def test_touched_workbook_is_not_reloaded_and_its_new_time_is_kept(
    monkeypatch, tmp_path, tiny_sources
):
    warehouse, leads, _ = leads_warehouse(monkeypatch, tmp_path, tiny_sources)
    assert materialize(LEADS).ok
    touched = sorted(leads.glob("*.xlsx"))[0]
    sql = "SELECT modified_at, loaded_at, status FROM etl.file_manifest WHERE path = ?"
    [(modified_before, loaded_before, _)] = query(warehouse, sql, [str(touched)])
    later = touched.stat().st_mtime + 3600
    os.utime(touched, (later, later))
    assert materialize(LEADS).ok
    [(modified_after, loaded_after, status)] = query(warehouse, sql, [str(touched)])
    assert status == "loaded" and loaded_after == loaded_before  # not read again
    assert modified_after == dt.datetime.fromtimestamp(later, dt.UTC).replace(tzinfo=None)
    assert modified_after != modified_before


def test_channel_labels_people_write_become_channels():
    """The first pattern a folded label matches names its channel, else the label folded
    to a word; the same label gets the same channel on every lead (matched once per
    label), and a lead without one has none."""
    import duckdb

    from b2b_platform.defs.leads import staging
    from b2b_platform.lib.warehouse.sql import bind_variables, sql_file

    labels = ["Feria Expo", "  LinkedIn Ads", "Recomendación", "Mail + LinkedIn",
              "Radio Local!", None, "Feria Expo"]  # fmt: skip
    conn = duckdb.connect()
    conn.execute("CREATE TEMP TABLE country_codes (country VARCHAR, code VARCHAR)")
    conn.execute(
        "CREATE TEMP TABLE leads_checked AS SELECT 'L' || i AS lead_key,"
        " NULL::TIMESTAMP AS captured_ts, NULL AS campaign, label AS channel,"
        " NULL AS company_name, false AS cuit_bad, NULL AS cuit_digits, NULL AS contact_name,"
        " false AS email_bad, NULL AS email_norm, NULL AS phone_norm, 'AR' AS country,"
        " NULL AS province, NULL AS city, NULL AS industry, 'f.xlsx' AS source_file,"
        " i AS sheet_row, 1 AS appearance"
        " FROM (SELECT unnest(?) AS label, generate_subscripts(?, 1) AS i)",
        [labels, labels],
    )
    patterns = [{"pattern": p, "channel": c} for p, c in staging.CHANNEL_PATTERNS]
    bind_variables(conn, {"channel_patterns": patterns})
    staged = conn.execute(
        f"SELECT channel FROM ({sql_file(staging.__file__, 'leads_staged')}) ORDER BY sheet_row"
    ).fetchall()
    assert [row[0] for row in staged] == [
        "trade_show", "linkedin", "referral", "linkedin", "radio_local_", None, "trade_show"
    ]  # fmt: skip
