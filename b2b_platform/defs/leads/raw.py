"""Raw marketing leads: every campaign workbook in the leads directory, file by file.

Workbooks come from people and from outside, so one file never takes the load down: a
directory entry that is not a regular file (a link, a directory, a name that is not
UTF-8) is skipped with its reason, and a file that cannot be hashed, read, sized or
parsed fails alone (etl.file_manifest says why) while the others load. Parsing runs
in child processes (WorkbookReaders, two at once), so even a reader crash fails only its
workbook.
"""

from functools import partial
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb as ddb
import polars as pl

from b2b_platform.lib import checks
from b2b_platform.lib.arrow_frames import arrow_for_duckdb
from b2b_platform.lib.asset_step import (
    SOURCE_RETRY,
    WAREHOUSE_POOL,
    AssetEvents,
    CheckAudit,
    published,
)
from b2b_platform.lib.input_files.file_manifest import (
    DirectoryListing,
    InputFile,
    SkippedEntry,
    content_hash_of,
    error_line,
    failed_file_row,
    list_input_files,
    listing_version,
    plan_files,
)
from b2b_platform.lib.input_files.gone_files import FileSource, present_paths, refuse_vanished
from b2b_platform.lib.metadata import markdown_list, table_metadata
from b2b_platform.lib.resources import DirectoryResource
from b2b_platform.lib.settings import missing_directory
from b2b_platform.lib.warehouse.resource import WarehouseResource
from b2b_platform.lib.warehouse.schema import table_exists
from b2b_platform.lib.warehouse.step import WarehouseStep
from b2b_platform.lib.warehouse.writes import TableSlice
from b2b_platform.lib.workbooks.lead_workbooks import LeadSheet, lead_rows, read_workbook_file
from b2b_platform.lib.workbooks.workbook_reader import WorkbookReader, WorkbookReaders

SOURCE = "leads"
TABLE = "raw.marketing_leads"
KEY = dg.AssetKey(["raw", "marketing_leads"])
LEAD_FILES = FileSource(
    name=SOURCE, what="leads directory", variable="B2B_LEADS_DIR", table=TABLE,
    asset_key=KEY.to_user_string(),
)  # fmt: skip


def is_lead_workbook(name: str) -> bool:
    """An .xlsx name in any case, but not an Office lock file (~$name.xlsx)."""
    return name.lower().endswith(".xlsx") and not name.startswith("~$")


def lead_files(directory: DirectoryResource) -> DirectoryListing:
    """Workbooks in the leads directory, and the entries with a workbook's name skipped."""
    if not directory.directory.is_dir():
        raise dg.Failure(
            description=missing_directory("leads", directory.directory, "B2B_LEADS_DIR"),
            allow_retries=False,
        )
    return list_input_files(directory.directory, is_lead_workbook)


ROWS_FROM_LOADED_FILES = checks.MANIFEST_CONSISTENT.described(
    "Every loaded row comes from a file the manifest lists as loaded."
)


@dg.asset(
    key=["raw", "marketing_leads"],
    kinds={"duckdb", "excel"},
    tags={"source": SOURCE},
    pool=WAREHOUSE_POOL,
    retry_policy=SOURCE_RETRY,
    check_specs=[ROWS_FROM_LOADED_FILES.spec(KEY)],
)
def raw_marketing_leads(
    context: dg.AssetExecutionContext, duckdb: WarehouseResource, leads_dir: DirectoryResource
) -> AssetEvents:
    """Lead rows from the marketing team's campaign exports, as typed in the workbooks.

    Only new or changed workbooks are read (etl.file_manifest); a changed workbook's
    rows replace its previous rows, a workbook gone from the directory keeps its rows
    until `b2b forget-missing-files leads` removes them, and a workbook that cannot be read, is too large or crashes the reader is recorded as
    failed while the others still load. Entries that are not regular files (links,
    directories, names that are not UTF-8) are recorded as skipped, with a warning.
    """
    audit = CheckAudit(context, _manifest_checks)
    yield from published([audit], partial(_load_workbooks, context, duckdb, leads_dir, audit))


def _load_workbooks(
    context: dg.AssetExecutionContext,
    duckdb: WarehouseResource,
    leads_dir: DirectoryResource,
    audit: CheckAudit,
) -> dict[str, Any]:
    """Load the new and changed workbooks in one transaction, published when it checks out."""
    listing = lead_files(leads_dir)
    for entry in listing.skipped:
        context.log.warning(f"lead workbook {entry.path} skipped: {entry.reason}")
    with duckdb.step(context, source=listing_version(listing.files, listing.skipped)) as step:
        conn = step.conn
        refuse_vanished(conn, LEAD_FILES, leads_dir.directory, present_paths(listing))
        if listing.skipped:
            step.commit(
                manifest_rows=_skipped_rows(conn, listing.skipped), finish=False, keep_open=True
            )
        plan = plan_files(conn, SOURCE, listing.files, skipped=listing.skipped)
        # touched: their new time, so the next run does not hash them again; gone from the
        # directory: their rows stay (see gone_files)
        for row in plan.gone:
            context.log.warning(
                f"lead workbook {row['path']} is gone from the directory: its rows stay"
            )
        if plan.touched or plan.gone:
            step.commit(manifest_rows=plan.touched + plan.gone, finish=False, keep_open=True)
        failed: list[str] = []
        for file, error in plan.unreadable:
            _fail(context, step, file.manifest_row(SOURCE, None, None), error, failed)
        # unchanged since it failed: not read again (it is read once it changes)
        failed += [
            f"{file.path.name}: {error} (unchanged since)" for file, error in plan.still_failed
        ]
        loaded = _load_new_workbooks(context, step, plan.to_load, failed)
        if not table_exists(conn, TABLE):
            # no workbook yet (a new deployment): an empty table, so leads stage nothing
            # and the reports say so, instead of failing the run
            context.log.warning(f"no readable lead workbook in {leads_dir.directory}")
            step.conn.register("no_rows", arrow_for_duckdb(_rows_of(lead_rows(), Path(), "")))
            step.commit(
                [
                    TableSlice(
                        TABLE, "SELECT *, NULL::TIMESTAMP AS _loaded_at FROM no_rows", "false"
                    )
                ],
                finish=False,
                keep_open=True,
            )
        step.commit(audit=audit)  # publishes every file of this run, or none
        metadata = {
            **table_metadata(conn, TABLE, step.totals),
            "files_loaded": loaded,
            "files_unchanged": len(plan.unchanged),
            "files_gone": len(plan.gone),
            "files_failed": markdown_list(failed),
            "files_skipped": markdown_list(
                [f"{Path(entry.path).name}: {entry.reason}" for entry in listing.skipped]
            ),
        }
    return metadata


def _load_new_workbooks(
    context: dg.AssetExecutionContext,
    step: WarehouseStep,
    to_load: list[tuple[InputFile, str | None]],
    failed: list[str],
) -> int:
    """Load each new or changed workbook; one that fails is added to `failed` and the
    others still load. Returns how many loaded."""
    loaded = 0
    if to_load:
        # parsed side by side in child processes, committed here in the listing's order
        with WorkbookReaders() as readers:
            for (file, digest), read in readers.each(_read_workbook, to_load):
                manifest = file.manifest_row(SOURCE, digest, None)
                try:
                    manifest["content_hash"], sheet = read.result()
                    if isinstance(sheet, Exception):
                        raise sheet
                    _commit_workbook(step, file, sheet, manifest)
                    loaded += 1
                except Exception as exc:  # whatever breaks on one file fails that file
                    _fail(context, step, manifest, error_line(exc), failed)
    return loaded


def _read_workbook(
    load: tuple[InputFile, str | None], reader: WorkbookReader
) -> tuple[str, LeadSheet | Exception]:
    """Read, hash, size and parse one workbook: the hash of the bytes read (once), with
    the sheet or why it could not be parsed."""
    data = read_workbook_file(load[0].path)
    digest = content_hash_of(data)
    try:
        return digest, reader.read(data)
    except Exception as exc:  # the failed file's row still says which bytes failed
        return digest, exc


def _manifest_checks(conn: ddb.DuckDBPyConnection) -> list[dg.AssetCheckResult]:
    # a failed or skipped file keeps the rows of its last readable version
    orphan_rows = conn.execute(
        f"SELECT count(*) FROM {TABLE} r WHERE NOT EXISTS (SELECT 1 FROM etl.file_manifest m"
        " WHERE m.source = ? AND m.path = r.source_file"
        " AND m.status IN ('loaded', 'failed', 'skipped', 'gone'))",
        [SOURCE],
    ).fetchone()[0]  # type: ignore[index]
    return [
        ROWS_FROM_LOADED_FILES.result(
            KEY,
            passed=orphan_rows == 0,
            metadata={"rows_without_manifest_entry": int(orphan_rows)},
        )
    ]


def _commit_workbook(
    step: WarehouseStep, file: InputFile, sheet: LeadSheet, manifest: dict[str, Any]
) -> None:
    """Commit one parsed workbook: its rows and its manifest row together."""
    rows = _rows_of(sheet.frame, file.path, sheet.sheet_name)
    step.conn.register("sheet", arrow_for_duckdb(rows))
    try:
        step.commit(
            [
                TableSlice(
                    TABLE,
                    "SELECT *, current_timestamp::TIMESTAMP AS _loaded_at FROM sheet",
                    where="source_file = ?",
                    params=[str(file.path)],
                )
            ],
            manifest_rows=[
                {
                    **manifest,
                    "status": "loaded",
                    "rows_read": rows.height,
                    "rows_loaded": rows.height,
                    "rows_rejected": 0,
                }
            ],
            rows_read=rows.height,
            finish=False,
            keep_open=True,
        )
    finally:
        step.conn.unregister("sheet")


def _rows_of(frame: pl.DataFrame, path: Path, sheet_name: str) -> pl.DataFrame:
    """A sheet's lead rows as raw.marketing_leads keeps them: with their file and sheet."""
    return frame.with_columns(
        source_file=pl.lit(str(path), dtype=pl.String),
        sheet_name=pl.lit(sheet_name, dtype=pl.String),
    )


def _fail(
    context: dg.AssetExecutionContext,
    step: WarehouseStep,
    manifest: dict[str, Any],
    error: str,
    failed: list[str],
) -> None:
    failed.append(f"{Path(manifest['path']).name}: {error}")
    context.log.warning(f"lead workbook {manifest['path']} could not be read: {error}")
    step.commit(
        manifest_rows=[failed_file_row(step.conn, manifest, error)], finish=False, keep_open=True
    )


def _skipped_rows(
    conn: ddb.DuckDBPyConnection, entries: list[SkippedEntry]
) -> list[dict[str, Any]]:
    """Manifest rows of skipped entries. Rows loaded from a regular file once at the same
    path stay, with their counts (as for a failed file), until a readable file is back."""
    earlier = {
        path: {"rows_read": read, "rows_loaded": loaded, "rows_rejected": rejected}
        for path, read, loaded, rejected in conn.execute(
            "SELECT path, rows_read, rows_loaded, rows_rejected FROM etl.file_manifest"
            " WHERE source = ? AND list_contains(?, path)"
            " AND status IN ('loaded', 'failed', 'skipped', 'gone') AND rows_read > 0",
            [SOURCE, [entry.path for entry in entries]],
        ).fetchall()
    }
    # keyed by path: two names that are not UTF-8 may print the same
    rows = {e.path: {**e.manifest_row(SOURCE, None), **earlier.get(e.path, {})} for e in entries}
    return list(rows.values())
