"""Raw marketing leads: every campaign workbook in the leads directory, file by file."""

from collections.abc import Iterator

import dagster as dg
from dagster_duckdb import DuckDBResource

from b2b_platform.lib.asset_step import SOURCE_RETRY, WAREHOUSE_POOL, asset_step
from b2b_platform.lib.file_manifest import InputFile, failed_file_row, plan_files
from b2b_platform.lib.lead_workbooks import LeadWorkbookError, read_lead_workbook
from b2b_platform.lib.metadata import table_metadata
from b2b_platform.lib.resources import DirectoryResource
from b2b_platform.lib.warehouse import TableSlice, table_exists, utc_now

SOURCE = "leads"
TABLE = "raw.marketing_leads"
OWNERS = ["team:marketing-analytics"]


def lead_files(directory: DirectoryResource) -> list[InputFile]:
    """Workbooks in the leads directory, skipping Office lock files (~$name.xlsx)."""
    if not directory.directory.is_dir():
        raise dg.Failure(
            description=f"leads directory {directory.directory} does not exist: run `b2b generate`"
            " or set B2B_LEADS_DIR",
            allow_retries=False,
        )
    paths = sorted(p for p in directory.directory.glob("*.xlsx") if not p.name.startswith("~$"))
    return [InputFile.stat(p) for p in paths]


@dg.asset(
    key=["raw", "marketing_leads"],
    group_name="raw",
    kinds={"duckdb", "excel"},
    owners=OWNERS,
    tags={"source": SOURCE, "layer": "raw"},
    pool=WAREHOUSE_POOL,
    retry_policy=SOURCE_RETRY,
    check_specs=[
        dg.AssetCheckSpec(
            "manifest_consistent",
            asset=["raw", "marketing_leads"],
            description="Every loaded row comes from a file the manifest lists as loaded.",
        )
    ],
)
def raw_marketing_leads(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, leads_dir: DirectoryResource
) -> Iterator[dg.MaterializeResult]:
    """Lead rows from the marketing team's campaign exports, as typed in the workbooks.

    Only new or changed workbooks are read (etl.file_manifest); a changed workbook's
    rows replace its previous rows, a deleted workbook's rows are removed, and a
    workbook that cannot be read is recorded as failed while the others still load.
    """
    files = lead_files(leads_dir)
    with asset_step(context, duckdb) as step:
        conn = step.conn
        plan = plan_files(conn, SOURCE, files)
        failed: list[str] = []
        for file, digest in plan.to_load:
            manifest = file.manifest_row(SOURCE, digest, None)
            try:
                sheet = read_lead_workbook(file.path)
            except LeadWorkbookError as exc:
                failed.append(f"{file.path.name}: {exc}")
                context.log.warning(f"lead workbook {file.path} could not be read: {exc}")
                step.commit(manifest_rows=[failed_file_row(conn, manifest, str(exc))], finish=False)
                continue
            conn.register("sheet", sheet.frame.to_arrow())
            step.commit(
                [
                    TableSlice(
                        TABLE,
                        f"SELECT *, '{_quote(str(file.path))}' AS source_file,"
                        f" '{_quote(sheet.sheet_name)}' AS sheet_name,"
                        " current_timestamp::TIMESTAMP AS _loaded_at FROM sheet",
                        where="source_file = ?",
                        params=[str(file.path)],
                    )
                ],
                manifest_rows=[
                    {
                        **manifest,
                        "status": "loaded",
                        "rows_read": sheet.frame.height,
                        "rows_loaded": sheet.frame.height,
                        "rows_rejected": 0,
                    }
                ],
                rows_read=sheet.frame.height,
                finish=False,
            )
            conn.unregister("sheet")
        for path in plan.removed:
            step.commit(
                [TableSlice(TABLE, f"SELECT * FROM {TABLE} LIMIT 0", where="source_file = ?", params=[path])]
                if table_exists(conn, TABLE) else [],
                manifest_rows=[{"source": SOURCE, "path": path, "status": "removed", "loaded_at": utc_now(),
                                "rows_read": 0, "rows_loaded": 0, "rows_rejected": 0}],
                finish=False,
            )  # fmt: skip
        if not table_exists(conn, TABLE):
            raise dg.Failure(
                description=f"no readable lead workbook in {leads_dir.directory}",
                allow_retries=False,
            )
        orphan_rows = conn.execute(
            f"SELECT count(*) FROM {TABLE} r WHERE NOT EXISTS (SELECT 1 FROM etl.file_manifest m"
            " WHERE m.source = ? AND m.path = r.source_file AND m.status IN ('loaded', 'failed'))",
            [SOURCE],
        ).fetchall()[0][0]  # type: ignore[index]
        metadata = {
            **table_metadata(conn, TABLE, step.totals),
            "files_loaded": len(plan.to_load) - len(failed),
            "files_unchanged": len(plan.unchanged),
            "files_removed": len(plan.removed),
            "files_failed": dg.MetadataValue.md("\n".join(f"- {f}" for f in failed) or "none"),
        }
    yield dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name="manifest_consistent",
                passed=orphan_rows == 0,
                metadata={"rows_without_manifest_entry": int(orphan_rows)},
            )
        ],
    )


def _quote(text: str) -> str:
    return text.replace("'", "''")
