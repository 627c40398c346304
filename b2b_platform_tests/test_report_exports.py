"""Report exports: formula-safe workbook and CSVs, UTF-8 with BOM, all files swapped in
together and only after the step committed."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import openpyxl
import pytest

from b2b_platform.lib.report_files import csv_file as report_csv
from b2b_platform.lib.report_files import directory as report_directory
from b2b_platform.lib.report_files import export as report_export
from b2b_platform.lib.report_files import workbook as report_workbook
from b2b_platform.lib.report_files.directory import staged_export
from b2b_platform.lib.report_files.export import export_files
from b2b_platform.lib.report_files.notes import ReportContext
from b2b_platform.lib.report_files.output import (
    EXPORT_FILES,
    REPORT_ORDER,
    WORKBOOK_NAME,
    read_report,
)
from b2b_platform_tests.helpers import materialize, query, warehouse_env

# Campaign names a person could type into a lead spreadsheet, each run by a spreadsheet
# program if it reached a cell as a formula.
HOSTILE = [
    "=1+1",
    '=HYPERLINK("http://x","y")',
    "+cmd|' /C calc'!A0",
    "@SUM(1)",
    "-2+3",
    "  =1+1",  # blanks before the = are skipped by spreadsheets
    "\t@SUM(1)",
]
HARMLESS = ["Logística", "http://example.com/a", "12", 'a, "quoted"\nline', "x=1"]


def _make_reports(conn: duckdb.DuckDBPyConnection) -> None:
    """The four report tables with the columns and types the real ones have."""
    conn.execute("CREATE SCHEMA reports")
    conn.execute(
        """CREATE TABLE reports.monthly_sales AS SELECT * FROM (VALUES
               (DATE '2026-08-01', 3::BIGINT, 4::BIGINT, -12.50::DECIMAL(18, 2)),
               (DATE '2026-09-01', 5, 6, 1234.5)) t(month, orders, units, revenue)"""
    )
    conn.execute(
        """CREATE TABLE reports.top_devices AS SELECT 1::BIGINT AS rank, '-Phone' AS device,
               '=mobile' AS device_type, 5::BIGINT AS users, 9::BIGINT AS requests,
               0.5::DOUBLE AS share_of_users"""
    )
    conn.execute(
        """CREATE TABLE reports.top_products_by_country AS SELECT 1::BIGINT AS country_rank,
               'AR' AS country_code, 1::BIGINT AS product_rank, '@Taladro' AS product_name,
               -1.00::DECIMAL(18, 2) AS revenue"""
    )
    conn.execute(
        """CREATE TABLE reports.lead_conversion (campaign VARCHAR, channel VARCHAR,
               leads BIGINT, companies_matched BIGINT, companies_new BIGINT,
               companies_existing BIGINT, companies_converted BIGINT, converted_new BIGINT,
               converted_existing BIGINT, new_conversion_rate DECIMAL(6, 4),
               attributed_revenue DECIMAL(18, 2))"""
    )
    conn.executemany(
        "INSERT INTO reports.lead_conversion VALUES (?, ?, 1, 2, 1, 1, 1, 1, 0, 0.5, -5.25)",
        [[name, f"channel {i}"] for i, name in enumerate([*HOSTILE, *HARMLESS])],
    )


@pytest.fixture
def reports_db() -> Iterator[duckdb.DuckDBPyConnection]:
    conn = duckdb.connect()
    _make_reports(conn)
    yield conn
    conn.close()


def _export(conn: duckdb.DuckDBPyConnection, target: Path) -> str:
    """What the asset does, without Dagster: stage, write, publish."""
    reports = [read_report(conn, name) for name in REPORT_ORDER]
    with staged_export(target) as staging:
        page = ReportContext(dt.date(2026, 11, 25), dt.date(2025, 12, 1), [], dt.datetime.now())
        export_files(conn, reports, staging.path, page)
        return staging.publish()


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def _staging_left(target: Path) -> list[str]:
    return [p.name for p in target.parent.iterdir() if p.name.startswith(f".{target.name}.")]


def _read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return list(csv.reader(handle))


def _assert_no_formulas(workbook: Path) -> None:
    # report_output writes no formula at all (totals are not part of the reports)
    book = openpyxl.load_workbook(workbook)
    formulas = [
        f"{sheet.title}!{cell.coordinate}"
        for sheet in book
        for row in sheet.iter_rows()
        for cell in row
        if cell.data_type == "f"
    ]
    assert formulas == []


# ---------------------------------------------------------------- content


def test_workbook_stores_hostile_strings_as_text(reports_db, tmp_path: Path) -> None:
    target = tmp_path / "reports"
    _export(reports_db, target)
    _assert_no_formulas(target / WORKBOOK_NAME)
    book = openpyxl.load_workbook(target / WORKBOOK_NAME)
    leads = book["lead_conversion"]
    *data, total = leads["A"][1:]
    cells = {cell.value: cell for cell in data}
    assert set(cells) == {*HOSTILE, *HARMLESS}  # every string verbatim
    assert total.value == "Total" and total.font.bold  # below the rows, not a formula
    for cell in cells.values():
        assert cell.data_type == "s" and cell.hyperlink is None, cell.value
    assert leads["K2"].data_type == "n" and leads["K2"].value == -5.25
    sales = book["monthly_sales"]
    assert sales["D2"].value == -12.5 and sales["D2"].data_type == "n"
    assert book["top_devices"]["C2"].value == "=mobile"
    assert book["top_devices"]["C2"].data_type == "s"


def test_csv_has_bom_and_prefixes_text_that_starts_a_formula(reports_db, tmp_path) -> None:
    target = tmp_path / "reports"
    _export(reports_db, target)
    for name in REPORT_ORDER:
        assert (target / f"{name}.csv").read_bytes().startswith(codecs.BOM_UTF8), name
    header, *rows = _read_csv(target / "lead_conversion.csv")
    assert header == ["campaign", "channel", "leads", "companies_matched", "companies_new",
                      "companies_existing", "companies_converted", "converted_new",
                      "converted_existing", "new_conversion_rate", "attributed_revenue"]  # fmt: skip
    campaigns = {row[0] for row in rows}
    assert campaigns == {*(f"'{s}" for s in HOSTILE), *HARMLESS}  # accents read back too
    assert {row[10] for row in rows} == {"-5.25"}  # a negative number stays a number
    assert {row[9] for row in rows} == {"0.5000"}
    sales = _read_csv(target / "monthly_sales.csv")
    assert sales[1:] == [["2026-08-01", "3", "4", "-12.50"], ["2026-09-01", "5", "6", "1234.50"]]
    devices = _read_csv(target / "top_devices.csv")
    assert devices[1][:3] == ["1", "'-Phone", "'=mobile"]
    products = _read_csv(target / "top_products_by_country.csv")
    assert products[1][3:] == ["'@Taladro", "-1.00"]


def test_csv_rows_keep_the_workbook_order(reports_db, tmp_path: Path) -> None:
    target = tmp_path / "reports"
    _export(reports_db, target)
    csv_campaigns = [row[0] for row in _read_csv(target / "lead_conversion.csv")[1:]]
    book = openpyxl.load_workbook(target / WORKBOOK_NAME)
    sheet_campaigns = [c.value for c in book["lead_conversion"]["A"][1:-1]]  # not the total
    assert [c.removeprefix("'") if c[1:] in HOSTILE else c for c in csv_campaigns] == (
        sheet_campaigns
    )


def test_csv_query_pastes_no_values() -> None:
    conn = duckdb.connect()
    conn.execute("CREATE SCHEMA reports")
    conn.execute("""CREATE TABLE reports.lead_conversion ("odd ""name" VARCHAR, campaign VARCHAR,
                    channel VARCHAR, n BIGINT)""")
    conn.execute("INSERT INTO reports.lead_conversion VALUES ('=x', '=evil''--', '+c', 1)")
    sql = report_csv.csv_query(conn, "lead_conversion")
    assert "evil" not in sql and "=x" not in sql
    assert conn.execute(sql).fetchall() == [("'=x", "'=evil'--", "'+c", 1)]


# ---------------------------------------------------------------- replacing the files


def test_failure_after_the_csvs_leaves_the_old_files(reports_db, tmp_path, monkeypatch) -> None:
    target = tmp_path / "reports"
    _export(reports_db, target)
    (target / "notes.txt").write_text("mine")
    before = _snapshot(target)
    reports_db.execute("UPDATE reports.lead_conversion SET leads = 99")

    def broken_workbook(reports, path: Path, title_note: str) -> Path:
        assert all((path.parent / f"{name}.csv").is_file() for name in REPORT_ORDER)
        raise OSError("disk full")

    monkeypatch.setattr(report_workbook, "write_workbook", broken_workbook)
    with pytest.raises(OSError, match="disk full"):
        _export(reports_db, target)
    assert _snapshot(target) == before
    assert _staging_left(target) == []


def test_a_second_export_replaces_every_file(reports_db, tmp_path: Path) -> None:
    target = tmp_path / "reports"
    assert _export(reports_db, target) == "created"
    first = _snapshot(target)
    (target / "notes.txt").write_text("mine")
    (target / "lead_conversion.csv.part").write_text("left by a killed older version")
    os.chmod(target, 0o750)
    reports_db.execute("UPDATE reports.lead_conversion SET leads = 99")
    reports_db.execute("UPDATE reports.monthly_sales SET orders = orders + 1")
    reports_db.execute("UPDATE reports.top_devices SET users = 6")
    reports_db.execute("UPDATE reports.top_products_by_country SET product_rank = 2")
    assert _export(reports_db, target) == "exchanged"  # renameat2 on this Linux
    second = _snapshot(target)
    assert set(second) == {*EXPORT_FILES, "notes.txt"}  # others' files kept, our debris not
    assert all(second[name] != first[name] for name in EXPORT_FILES)
    assert second["notes.txt"] == b"mine"
    assert target.stat().st_mode & 0o777 == 0o750  # the new directory took the old one's mode
    assert _staging_left(target) == []
    assert _read_csv(target / "lead_conversion.csv")[1][2] == "99"


def test_swap_without_renameat2_uses_two_renames(reports_db, tmp_path, monkeypatch) -> None:
    target = tmp_path / "reports"
    _export(reports_db, target)
    monkeypatch.setattr(report_directory, "_renameat2", lambda: None)
    reports_db.execute("UPDATE reports.lead_conversion SET leads = 7")
    assert _export(reports_db, target) == "two renames"
    assert _read_csv(target / "lead_conversion.csv")[1][2] == "7"
    assert set(_snapshot(target)) == EXPORT_FILES and _staging_left(target) == []


def test_a_directory_with_subfolders_is_not_moved(reports_db, tmp_path: Path) -> None:
    target = tmp_path / "reports"
    (target / "archive").mkdir(parents=True)
    (target / "archive" / "2025.csv").write_text("old")
    inode = target.stat().st_ino
    assert _export(reports_db, target) == "file by file"
    assert target.stat().st_ino == inode
    assert (target / "archive" / "2025.csv").read_text() == "old"
    assert {p.name for p in target.iterdir()} >= EXPORT_FILES
    assert _staging_left(target) == []


def test_a_bind_mounted_report_directory_gets_its_files_one_by_one(
    reports_db, tmp_path, monkeypatch
) -> None:
    target = tmp_path / "reports"
    _export(reports_db, target)
    inode = target.stat().st_ino

    def busy(new: Path, target: Path) -> None:  # what rename says of a mount point
        raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), str(target))

    monkeypatch.setattr(report_directory, "_swap", busy)
    reports_db.execute("UPDATE reports.lead_conversion SET leads = 5")
    assert _export(reports_db, target) == "file by file"
    assert target.stat().st_ino == inode and set(_snapshot(target)) == EXPORT_FILES
    assert _read_csv(target / "lead_conversion.csv")[1][2] == "5"
    assert _staging_left(target) == []


def test_a_symlinked_report_directory_stays_a_link(reports_db, tmp_path: Path) -> None:
    real = tmp_path / "real-reports"
    real.mkdir()
    (tmp_path / "reports").symlink_to(real)
    _export(reports_db, tmp_path / "reports")
    assert _export(reports_db, tmp_path / "reports") == "exchanged"
    assert (tmp_path / "reports").is_symlink()
    assert set(_snapshot(real)) == EXPORT_FILES


# ---------------------------------------------------------------- the asset


@pytest.fixture
def hostile_warehouse(built_warehouse, tiny_sources, tmp_path, monkeypatch) -> Path:
    """A copy of the built tiny warehouse with hostile campaign names in its report."""
    data_dir, _ = tiny_sources
    warehouse = tmp_path / "b2b.duckdb"
    shutil.copyfile(built_warehouse, warehouse)
    with duckdb.connect(str(warehouse)) as conn:
        conn.executemany(
            "INSERT INTO reports.lead_conversion VALUES (?, 'web', 1, 0, 0, 0, 0, 0, 0, NULL, -1.5)",
            [[name] for name in HOSTILE],
        )
    for key, value in warehouse_env(data_dir, warehouse).items():
        monkeypatch.setenv(key, value)
    return warehouse


def _last_status(warehouse: Path) -> str:
    return query(
        warehouse,
        "SELECT status FROM etl.run_log WHERE asset_key = 'reports/report_files'"
        " ORDER BY started_at DESC LIMIT 1",
    )[0][0]


@pytest.mark.slow
def test_asset_exports_hostile_text_safely(hostile_warehouse: Path) -> None:
    outcome = materialize("key:reports/report_files")
    assert outcome.ok and not outcome.failed_checks, outcome.failed_runs
    target = hostile_warehouse.parent / "reports"
    _assert_no_formulas(target / WORKBOOK_NAME)
    book = openpyxl.load_workbook(target / WORKBOOK_NAME)
    sheet_text = {c.value for c in book["lead_conversion"]["A"][1:] if c.data_type == "s"}
    assert set(HOSTILE) <= sheet_text
    campaigns = {row[0] for row in _read_csv(target / "lead_conversion.csv")[1:]}
    assert {f"'{s}" for s in HOSTILE} <= campaigns
    assert _staging_left(target) == [] and _last_status(hostile_warehouse) == "succeeded"


@pytest.mark.slow
def test_asset_publishes_nothing_when_its_step_does_not_commit(
    hostile_warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from b2b_platform.defs.reports import report_files

    assert materialize("key:reports/report_files").ok
    target = hostile_warehouse.parent / "reports"
    before = _snapshot(target)
    with duckdb.connect(str(hostile_warehouse)) as conn:
        conn.execute("UPDATE reports.lead_conversion SET leads = leads + 1")

    # the blocking check fails inside the transaction: the step rolls back
    monkeypatch.setattr(report_files, "missing_files", lambda directory: ["lead_conversion.csv"])
    outcome = materialize("key:reports/report_files")
    assert not outcome.ok and outcome.failed_checks == ["reports/report_files:files_written"]
    assert _snapshot(target) == before and _staging_left(target) == []
    assert _last_status(hostile_warehouse) == "failed"
    monkeypatch.setattr(report_files, "missing_files", report_export.missing_files)

    # the workbook fails after the CSVs were staged: nothing reaches the report directory
    def broken_workbook(reports, path: Path, title_note: str) -> Path:
        raise OSError("disk full")

    monkeypatch.setattr(report_workbook, "write_workbook", broken_workbook)
    outcome = materialize("key:reports/report_files")
    assert not outcome.ok and "disk full" in outcome.failed_runs[0]
    assert _snapshot(target) == before and _staging_left(target) == []
    assert _last_status(hostile_warehouse) == "failed"
