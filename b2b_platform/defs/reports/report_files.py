"""The reports as files people open: one CSV per report and one formatted workbook."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from b2b_platform.lib.asset_step import asset_step
from b2b_platform.lib.report_output import (
    REPORT_ORDER,
    WORKBOOK_NAME,
    read_report,
    write_csv,
    write_workbook,
)
from b2b_platform.lib.report_step import report_asset, report_key
from b2b_platform.lib.resources import CalendarResource, DirectoryResource

KEY = report_key("report_files")


@dg.asset(
    key=KEY,
    deps=[report_key(name) for name in REPORT_ORDER],
    **report_asset(kinds={"csv", "excel"}),
    check_specs=[
        dg.AssetCheckSpec(
            "files_written", asset=KEY, description="Every report has its CSV and its sheet."
        )
    ],
)
def report_files(
    context: dg.AssetExecutionContext,
    duckdb: DuckDBResource,
    report_dir: DirectoryResource,
    calendar: CalendarResource,
) -> dg.MaterializeResult:
    """The four reports exported to the report directory (B2B_REPORT_DIR): a CSV per
    report and b2b_reports.xlsx with a sheet per report, formatted numbers, frozen
    headers and a chart of monthly revenue. Files are replaced whole, never half-written."""
    directory = report_dir.directory
    directory.mkdir(parents=True, exist_ok=True)
    with asset_step(context, duckdb) as step:
        reports = [read_report(step.conn, name) for name in REPORT_ORDER]
        csv_files = [write_csv(step.conn, name, directory) for name in REPORT_ORDER]
        window_start, _ = calendar.report_window
        workbook = write_workbook(
            reports,
            directory / WORKBOOK_NAME,
            f"Window {window_start} to {calendar.as_of} (as of {calendar.as_of}).",
        )
        step.commit(rows_read=sum(len(r.rows) for r in reports))
    written = [p for p in [*csv_files, workbook] if p.is_file()]
    return dg.MaterializeResult(
        metadata={
            "report_dir": dg.MetadataValue.path(str(directory)),
            "workbook": dg.MetadataValue.path(str(workbook)),
            "files": dg.MetadataValue.md("\n".join(f"- {p.name}" for p in written)),
            "rows_per_report": {r.name: len(r.rows) for r in reports},
        },
        check_results=[
            dg.AssetCheckResult(
                asset_key=KEY,
                check_name="files_written",
                passed=len(written) == len(REPORT_ORDER) + 1,
                metadata={"files": len(written)},
            )
        ],
    )
