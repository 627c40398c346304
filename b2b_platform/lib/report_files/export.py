"""One export of the reports: a CSV per report, the workbook and the web page, written
into a staging directory, and the check that the export is complete."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb

from b2b_platform.lib.report_files.csv_file import write_csv
from b2b_platform.lib.report_files.notes import ReportContext
from b2b_platform.lib.report_files.output import HTML_NAME, REPORT_ORDER, WORKBOOK_NAME, Report
from b2b_platform.lib.report_files.quarantine_view import accounting, rejects_by_month

# The page's and the workbook's libraries (plotly, jinja2, xlsxwriter, openpyxl: about
# 0.2 s to import) load when an export is written or checked, not in every process that
# loads the definitions (`b2b run`, the code server, each run worker).


def export_files(
    conn: duckdb.DuckDBPyConnection, reports: Sequence[Report], directory: Path, page: ReportContext
) -> list[Path]:
    """Every report's CSV, the workbook and the page (with the data-quality section),
    written into `directory`."""
    from b2b_platform.lib.report_files.page import quality_section, write_report_page
    from b2b_platform.lib.report_files.workbook import write_workbook

    csv_files = [write_csv(conn, report.name, directory) for report in reports]
    quality = quality_section(rejects_by_month(conn), accounting(conn))
    return [
        *csv_files,
        write_workbook(reports, directory / WORKBOOK_NAME, page),
        write_report_page(reports, directory / HTML_NAME, page, quality),
    ]


def missing_files(directory: Path) -> list[str]:
    """What a complete export in `directory` lacks: a report's CSV, its sheet in the
    workbook or its section in the page."""
    import openpyxl

    from b2b_platform.lib.report_files.page import section_id

    csv_files = [directory / f"{name}.csv" for name in REPORT_ORDER]
    missing = [p.name for p in csv_files if not p.is_file() or p.stat().st_size == 0]
    workbook = directory / WORKBOOK_NAME
    if workbook.is_file():
        book = openpyxl.load_workbook(workbook, read_only=True)
        try:
            sheets = set(book.sheetnames)
        finally:
            book.close()
        missing += [f"{WORKBOOK_NAME}[{n}]" for n in REPORT_ORDER if n[:31] not in sheets]
    else:
        missing.append(WORKBOOK_NAME)
    page = directory / HTML_NAME
    if page.is_file():
        text = page.read_text(encoding="utf-8", errors="replace")
        missing += [f"{HTML_NAME}#{n}" for n in REPORT_ORDER if section_id(n) not in text]
    else:
        missing.append(HTML_NAME)
    return missing
