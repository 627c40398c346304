"""The reports as files people open: one CSV per report and one formatted workbook.

The files are written into a staging directory while the step runs, checked inside its
transaction, and swapped into the report directory only after the step committed: the
report directory shows one whole export, never a half-written one, and never the data
of a step that failed (see lib/report_files/output.py for how the swap works).
"""

from functools import partial
from typing import Any

import dagster as dg

from b2b_platform.lib.asset_step import (
    AssetEvents,
    CheckAudit,
    published,
)
from b2b_platform.lib.checks import Check
from b2b_platform.lib.metadata import markdown_list
from b2b_platform.lib.report_files.directory import StagedExport, export_version, staged_export
from b2b_platform.lib.report_files.export import export_files, missing_files
from b2b_platform.lib.report_files.notes import report_context
from b2b_platform.lib.report_files.output import (
    EXPORT_FILES,
    HTML_NAME,
    REPORT_ORDER,
    WORKBOOK_NAME,
    read_report,
)
from b2b_platform.lib.report_step import report_asset, report_key
from b2b_platform.lib.resources import CalendarResource, DirectoryResource
from b2b_platform.lib.warehouse.resource import WarehouseResource

KEY = report_key("report_files")
FILES_WRITTEN = Check(
    "files_written",
    "Every report has its CSV and its sheet; otherwise nothing is published.",
)


@dg.asset(
    key=KEY,
    deps=[report_key(name) for name in REPORT_ORDER],
    **report_asset(kinds={"csv", "excel"}),
    check_specs=[FILES_WRITTEN.spec(KEY)],
)
def report_files(
    context: dg.AssetExecutionContext,
    duckdb: WarehouseResource,
    report_dir: DirectoryResource,
    calendar: CalendarResource,
) -> AssetEvents:
    """The four reports exported to the report directory (B2B_REPORT_DIR): a CSV per
    report, b2b_reports.xlsx with a sheet, a chart and totals per report, and
    b2b_reports.html, a page with a chart and a table per report that opens from disk.
    All files are replaced together, and text that a spreadsheet would run as a formula
    stays text."""
    with staged_export(report_dir.directory) as staging:
        audit = CheckAudit(context, lambda _conn: [files_written(staging)])
        yield from published(
            [audit], partial(_export, context, duckdb, staging, audit, calendar, report_dir)
        )


def files_written(staging: StagedExport) -> dg.AssetCheckResult:
    """The check, on the staged files before they are published."""
    missing = missing_files(staging.path)
    return FILES_WRITTEN.result(
        KEY,
        passed=not missing,
        metadata={"files": len(EXPORT_FILES) - len(missing), "missing": ", ".join(missing)},
    )


def _export(
    context: dg.AssetExecutionContext,
    duckdb: WarehouseResource,
    staging: StagedExport,
    audit: CheckAudit,
    calendar: CalendarResource,
    report_dir: DirectoryResource,
) -> dict[str, Any]:
    with duckdb.step(context) as step:
        reports = [read_report(step.conn, name) for name in REPORT_ORDER]
        page = report_context(
            step.conn,
            calendar.as_of_date,
            calendar.report_window[0],
            calendar.first_month_start,
            calendar.month_to_date_compared_with,
            calendar.attribution_days,
        )
        files = export_files(step.conn, reports, staging.path, page)
        duckdb.set_slice_versions(context, step, None, export_version(staging.path))
        # The check runs in the step's transaction: if it fails nothing is committed,
        # AuditFailed is raised and the staged files are thrown away unpublished.
        step.commit(rows_read=sum(len(r.rows) for r in reports), audit=audit)
    # Only now, with the step committed, do the files replace the previous export.
    how = staging.publish()
    if how == "file by file":
        context.log.warning(
            f"{staging.target} is a mount point or holds subdirectories: its files were"
            " replaced one by one, not swapped in together"
        )
    directory = report_dir.directory
    return {
        "report_dir": dg.MetadataValue.path(str(directory)),
        # the page opens from disk: the UI shows the link, a browser opens the file
        "html_report": dg.MetadataValue.url((directory / HTML_NAME).absolute().as_uri()),
        "workbook": dg.MetadataValue.path(str(directory / WORKBOOK_NAME)),
        "files": markdown_list(p.name for p in files),
        "rows_per_report": {r.name: len(r.rows) for r in reports},
        "replaced": how,
    }
