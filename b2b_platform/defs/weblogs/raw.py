"""Raw web requests: every access-log line, parsed, loaded file by file within its month."""

import os
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from functools import partial
from pathlib import Path

import dagster as dg
import duckdb

from b2b_platform.defs.partitions import BY_MONTH, all_month_keys
from b2b_platform.defs.weblogs.grown_files import appended_files
from b2b_platform.defs.weblogs.loading import (
    ENTITY,
    SOURCE,
    TABLE,
    MonthLoad,
    ParsedUnit,
    RestartMonth,
    commit_unit,
    cutoff_moved_past,
    empty_table_slice,
    parse_unit,
    read_units,
)
from b2b_platform.defs.weblogs.log_files import (
    LOG_FILES,
    files_of_month,
    list_log_files,
    month_version,
    present_log_paths,
    skipped_of_month,
)
from b2b_platform.defs.weblogs.renamed_files import (
    follow_files,
    followed_paths,
    move_rows,
    moved_rows,
)
from b2b_platform.lib import checks
from b2b_platform.lib.asset_step import (
    SINGLE_RUN,
    SOURCE_RETRY,
    WAREHOUSE_POOL,
    AssetEvents,
    CheckAudit,
    MonthsOfStep,
    month_metadata,
    months_markdown,
)
from b2b_platform.lib.checks import Check
from b2b_platform.lib.input_files.file_manifest import (
    InputFile,
    SkippedEntry,
    failed_file_row,
    plan_files,
)
from b2b_platform.lib.input_files.gone_files import refuse_vanished
from b2b_platform.lib.metadata import markdown_list, schema_metadata
from b2b_platform.lib.resources import (
    CalendarResource,
    DirectoryResource,
    LogParsing,
    QualityThresholds,
)
from b2b_platform.lib.warehouse.resource import MonthStep, WarehouseResource
from b2b_platform.lib.warehouse.schema import scalar, table_exists
from b2b_platform.lib.warehouse.sql import quote_literal
from b2b_platform.lib.warehouse.step import AuditFailed, WarehouseStep
from b2b_platform.lib.warehouse.writes import Accounting, columns_of
from b2b_platform.lib.weblogs.log_lines import LogDays
from b2b_platform.lib.weblogs.log_reader import LogHead

KEY = dg.AssetKey(["raw", "weblogs"])
LINES_ACCOUNTED = checks.ACCOUNTING_IDENTITY.described(
    "Every line read is loaded or quarantined, per month."
)
FILE_ACCOUNTING = Check(
    "file_accounting",
    "Per file: lines read = loaded + rejected, and the loaded count matches the rows in"
    " raw.weblogs.",
)
REJECT_RATE = checks.reject_rate(ENTITY, "Unparseable lines stay under the configured share.")
CHECKS = (LINES_ACCOUNTED, FILE_ACCOUNTING, checks.MANIFEST_CONSISTENT, REJECT_RATE)


def build_raw_weblogs(months: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """raw/weblogs over the code location's months (see partitions)."""
    return dg.asset(
        key=KEY,
        kinds={"duckdb", "file"},
        tags={"source": SOURCE, **BY_MONTH},
        partitions_def=months,
        backfill_policy=SINGLE_RUN,
        pool=WAREHOUSE_POOL,
        retry_policy=SOURCE_RETRY,
        check_specs=[check.spec(KEY) for check in CHECKS],
    )(raw_weblogs)


def raw_weblogs(
    context: dg.AssetExecutionContext,
    duckdb: WarehouseResource,
    log_dir: DirectoryResource,
    quality: QualityThresholds,
    calendar: CalendarResource,
    log_parsing: LogParsing,
) -> AssetEvents:
    """Web server access-log lines (Apache/NGINX combined format), parsed into fields.

    A month reads the files whose days reach into it and keeps their lines of that month
    (a line belongs to the month of its own time). Only files new or changed since the
    last load are read (etl.file_manifest: size, modification time, content hash): a
    changed file's rows are replaced, a file that only grew (the live access.log) is read
    from where its load stopped, a renamed or compressed one takes its rows along, and a
    file gone from the directory keeps its rows (removed only by
    `b2b forget-missing-files`). A month is published whole,
    with its manifest rows and quarantine findings, only when its blocking checks pass;
    a crash loses at most the two months in flight. Lines that cannot be parsed or carry an
    impossible time are quarantined with file, line number and text (IP addresses masked).
    """
    directory = list_log_files(log_dir)
    keys = all_month_keys(context)
    per_month: dict[str, dict[str, int]] = {}
    months = MonthsOfStep(context)
    # what each month found (months run side by side), listed in month order at the end
    failed: dict[str, list[str]] = {}
    skipped: dict[str, list[str]] = {}

    def month(month_step: MonthStep, partition_key: str) -> None:
        chosen = files_of_month(directory.days, partition_key, keys[0], keys[-1])
        month_skipped = skipped_of_month(directory, partition_key, keys[0], keys[-1])
        load = MonthLoad(
            partition_key,
            first_key=keys[0],
            last_key=keys[-1],
            cutoff=calendar.load_cutoff,
            trusted_proxies=log_parsing.trusted_proxies,
            failed=failed.setdefault(partition_key, []),
            log_root=log_dir.directory,
            database_threads=int(duckdb.connection_config.get("threads", os.cpu_count() or 1)),
        )
        audit = CheckAudit(
            context,
            partial(_month_checks, partition_key=partition_key, threshold=quality.max_reject_rate),
        )
        skipped[partition_key] = [f"{Path(e.path).name}: {e.reason}" for e in month_skipped]
        try:
            source = month_version(directory, partition_key, keys, calendar.load_cutoff)
            with month_step(partition_key, source) as step:
                # the directory, once a run: the first month runs before the others start
                if partition_key == context.partition_keys[0]:
                    present = present_log_paths(directory)
                    present |= followed_paths(step.conn, directory.heads)
                    refuse_vanished(step.conn, LOG_FILES, log_dir.directory, present)
                    add_server_column(step.conn)
                files = [directory.files[path] for path in chosen]
                per_month[partition_key] = _load_month(
                    context, step, files, chosen, month_skipped, load, audit, directory.heads
                )
        except AuditFailed as error:
            months.hold(partition_key, audit, error)
            return
        months.checked(partition_key, audit)

    duckdb.each_month(context, month)
    month_metadata(context, per_month, "lines_loaded")
    yield dg.MaterializeResult(
        metadata={
            **schema_metadata(duckdb, TABLE),
            "months": months_markdown(per_month),
            "files_failed": markdown_list([f for m in sorted(failed) for f in failed[m]]),
            "files_skipped": markdown_list([e for m in sorted(skipped) for e in skipped[m]]),
            **months.metadata(),
        },
        check_results=months.check_results(),
    )


def add_server_column(conn: duckdb.DuckDBPyConnection) -> None:
    """A table loaded before lines named their web server gets the column (empty: ""
    is the directory's own files); what reads it then finds it in every warehouse."""
    if table_exists(conn, TABLE) and "server" not in dict(columns_of(conn, TABLE)):
        conn.execute(f"ALTER TABLE {TABLE} ADD COLUMN server VARCHAR DEFAULT ''")


def _load_month(
    context: dg.AssetExecutionContext,
    step: WarehouseStep,
    files: list[InputFile],
    chosen: dict[Path, LogDays],
    skipped: list[SkippedEntry],
    load: MonthLoad,
    audit: CheckAudit,
    heads: dict[Path, LogHead],
) -> dict[str, int]:
    """Load a month's new and changed files and publish them together.

    Everything the month writes shares one transaction, published by its last commit
    only if the month's blocking checks pass (write-audit-publish): until then no other
    connection sees a new line. A large file that fails after some of its parts were
    written takes the month's transaction with it: the month starts again without it.
    """
    failed_before = len(load.failed)
    # units reach DuckDB by replacement scan, not registration (see commit_unit)
    step.conn.execute("SET python_scan_all_frames = true")
    while True:
        try:
            return _load_month_once(context, step, files, chosen, skipped, load, audit, heads)
        except RestartMonth as restart:
            step.rollback()
            del load.failed[failed_before:]
            load.restart(restart.manifest, restart.message)
            context.log.warning(
                f"log file {restart.manifest['path']} failed mid-way ({restart.message});"
                " loading the month again without it"
            )


def _load_month_once(
    context: dg.AssetExecutionContext,
    step: WarehouseStep,
    files: list[InputFile],
    chosen: dict[Path, LogDays],
    skipped: list[SkippedEntry],
    load: MonthLoad,
    audit: CheckAudit,
    heads: dict[Path, LogHead],
) -> dict[str, int]:
    conn = step.conn
    files = [file for file in files if str(file.path) not in load.excluded]
    # files rotation renamed or compressed take their rows along (renamed_files.py)
    followed = follow_files(conn, load.partition_key, files, heads)
    listed = {str(file.path): file for file in files}
    if followed.moves:
        step.commit(finish=False, keep_open=True)  # the month's transaction, from here
        move_rows(conn, followed.moves, load.log_root)
        step.commit(manifest_rows=moved_rows(followed.moves, listed), finish=False, keep_open=True)
        for move in followed.moves:
            context.log.info(f"log file {move.row['path']} is now {move.new_path}"
                             + ("" if move.same_text else " with more lines: read again"))  # fmt: skip
    copies = {entry.path for entry in followed.copies}
    files = [file for file in files if str(file.path) not in copies]
    skipped = skipped + followed.copies
    # an excluded file is neither loaded nor removed: its old rows stay, as a failed file's
    kept = [SkippedEntry(path, error) for path, (_, error) in load.excluded.items()]
    # a file that only grew is read from where its load stopped (grown_files.py)
    load.appended = appended_files(conn, load.partition_key, files, heads, load.cutoff)
    grown = [SkippedEntry(path, "grown") for path in load.appended]
    plan = plan_files(
        conn, SOURCE, [file for file in files if str(file.path) not in load.appended],
        load.partition_key, hash_new_files=False,
        skipped=skipped + kept + grown, read_again=cutoff_moved_past(load.cutoff),
    )  # fmt: skip
    to_load = plan.to_load + [(listed[path], None) for path in load.appended]
    for entry in skipped:
        context.log.warning(f"log directory entry {entry.path} skipped: {entry.reason}")
    for row in plan.gone:
        context.log.warning(f"log file {row['path']} is gone from the directory: its rows stay")
    bookkeeping = [entry.manifest_row(SOURCE, load.partition_key) for entry in skipped]
    bookkeeping += plan.gone  # gone, not removed: their rows stay (see gone_files)
    bookkeeping += plan.touched  # touched, not changed: their new time, so no re-hash
    unreadable = [(file.manifest_row(SOURCE, "", load.partition_key), error)
                  for file, error in plan.unreadable] + list(load.excluded.values())  # fmt: skip
    for manifest, error in unreadable:
        load.failed.append(f"{Path(manifest['path']).name}: {error}")
        bookkeeping.append(failed_file_row(conn, manifest, error))
    for file, error in plan.still_failed:  # unchanged since it failed: not read again
        load.failed.append(f"{file.path.name}: {error} (unchanged since)")
    if bookkeeping:
        step.commit(manifest_rows=bookkeeping, finish=False, keep_open=True)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="log-parser") as parser:
        _load_files(context, step, to_load, chosen, load, parser)
    # month-level accounting over every file loaded so far (not only this run's)
    read = conn.execute(
        "SELECT coalesce(sum(rows_read), 0) FROM etl.file_manifest"
        " WHERE source = ? AND partition_key = ? AND status IN ('loaded', 'failed', 'gone')",
        [SOURCE, load.partition_key],
    ).fetchone()[0]  # type: ignore[index]
    # no line loaded yet anywhere (an empty directory is not an error): an empty table
    created = [] if table_exists(conn, TABLE) else [empty_table_slice(conn)]
    loaded_query = (
        f"SELECT count(*) FROM {TABLE} WHERE partition_key = getvariable('partition_key')"
    )
    result = step.commit(
        created,
        accounting=[Accounting(SOURCE, ENTITY, load.partition_key, int(read), loaded_query)],
        rows_read=0,  # the lines were counted as their files loaded
        audit=audit,
    )
    counts = result.by_entity[ENTITY]
    return {
        "files_loaded": len(plan.to_load), "files_grown": len(load.appended),
        "files_unchanged": len(plan.unchanged),
        "files_gone": len(plan.gone), "files_skipped": len(skipped),
        "lines_read": counts["rows_read"], "lines_loaded": counts["rows_loaded"],
        "lines_rejected": counts["rows_rejected"],
    }  # fmt: skip


def _load_files(
    context: dg.AssetExecutionContext,
    step: WarehouseStep,
    to_load: list[tuple[InputFile, str | None]],
    chosen: dict[Path, LogDays],
    load: MonthLoad,
    parser: ThreadPoolExecutor,
) -> None:
    """Read, parse and commit the month's new and changed files, unit by unit.

    Two threads, each busy about as long as the other: this one reads a unit (gunzip,
    hashing) and commits the unit before it (DuckDB) while the other parses (polars);
    all of them release the GIL. Commits stay in file order, one unit at a time, so
    about three units are in memory: one being read, one parsed, one committed.
    """
    # polars parses on the other thread with both cores: DuckDB inserting with two more
    # threads meanwhile only made them take turns (a 2.1M-line month through `b2b run`:
    # 8.6 s with one DuckDB thread against 9.0 s with two, CPU 12.0 s against 12.6 s)
    step.conn.execute("SET threads = 1")
    try:
        pending: Future[ParsedUnit] | None = None
        for unit in read_units(to_load, chosen, load):
            parsing = parser.submit(parse_unit, unit, load)
            if pending is not None:
                commit_unit(context, step, pending.result(), load)
            pending = parsing
        if pending is not None:
            commit_unit(context, step, pending.result(), load)
    finally:
        with suppress(duckdb.Error):  # a connection broken by the failure is not used again
            step.conn.execute(f"SET threads = {quote_literal(str(load.database_threads))}")


def _month_checks(
    conn: duckdb.DuckDBPyConnection, partition_key: str, threshold: float
) -> list[dg.AssetCheckResult]:
    # a file of this month with the same lines as another file loaded into it is loaded
    # twice; files without lines are never duplicates (the same file's rows in another
    # month hold that month's lines: it follows a rename when that month loads)
    duplicated = conn.execute(
        "SELECT count(*) FROM etl.file_manifest m WHERE m.source = ? AND m.partition_key = ?"
        " AND m.status = 'loaded' AND m.rows_read > 0 AND EXISTS (SELECT 1 FROM"
        " etl.file_manifest o WHERE o.source = m.source AND o.status IN ('loaded', 'gone')"
        " AND o.partition_key = m.partition_key AND o.rows_read > 0"
        " AND o.content_hash = m.content_hash AND o.path <> m.path)",
        [SOURCE, partition_key],
    ).fetchone()[0]  # type: ignore[index]
    orphans = 0
    if table_exists(conn, TABLE):
        orphans = scalar(
            conn,
            f"SELECT count(*) FROM {TABLE} r WHERE r.partition_key = ? AND NOT EXISTS ("
            " SELECT 1 FROM etl.file_manifest m WHERE m.source = ? AND m.path = r.source_file"
            " AND m.status IN ('loaded', 'failed', 'gone'))",
            [partition_key, SOURCE],
        )
    mismatched = (
        scalar(
            conn,
            # a join with the month's lines counted per file, not a count per manifest
            # row: DuckDB 1.4 crashed (SIGSEGV) on that correlated count over a lake's
            # table inside a write transaction, while another writer committed
            f"""WITH lines AS (SELECT source_file, count(*) AS loaded FROM {TABLE}
                           WHERE partition_key = ? GROUP BY source_file)
            SELECT count(*) FROM etl.file_manifest m LEFT JOIN lines l ON l.source_file = m.path
            WHERE m.source = ? AND m.partition_key = ? AND m.status IN ('loaded', 'gone')
              AND (m.rows_read <> m.rows_loaded + m.rows_rejected
                   OR m.rows_loaded <> coalesce(l.loaded, 0))""",
            [partition_key, SOURCE, partition_key],
        )
        if table_exists(conn, TABLE)
        else 0
    )
    return [
        checks.accounting_holds(conn, KEY, SOURCE, [ENTITY], partition_key, LINES_ACCOUNTED),
        FILE_ACCOUNTING.result(
            KEY, passed=mismatched == 0, metadata={"files_not_adding_up": int(mismatched)}
        ),
        checks.MANIFEST_CONSISTENT.result(
            KEY,
            passed=duplicated == 0 and orphans == 0,
            metadata={
                "files_with_same_content": int(duplicated),
                "rows_without_manifest": int(orphans),
            },
        ),
        checks.reject_rate_below(conn, KEY, SOURCE, ENTITY, partition_key, threshold, REJECT_RATE),
    ]
