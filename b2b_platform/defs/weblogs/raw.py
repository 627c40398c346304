"""Raw web requests: every access-log line, parsed, loaded file by file within its month."""

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from b2b_platform.defs.platform_db.raw import MONTHLY
from b2b_platform.lib import checks
from b2b_platform.lib.asset_step import (
    SINGLE_RUN,
    SOURCE_RETRY,
    WAREHOUSE_POOL,
    asset_step,
    month_bounds,
    months_markdown,
)
from b2b_platform.lib.combined_log import (
    lines_of_text,
    log_file_day,
    log_text,
    log_text_size,
    parse_log_lines,
)
from b2b_platform.lib.file_manifest import (
    FilePlan,
    InputFile,
    content_hash_of,
    failed_file_row,
    plan_files,
)
from b2b_platform.lib.metadata import schema_metadata
from b2b_platform.lib.resources import DirectoryResource, QualityThresholds
from b2b_platform.lib.warehouse import (
    Accounting,
    QuarantineSlice,
    TableSlice,
    WarehouseStep,
    table_exists,
    utc_now,
)

SOURCE = "weblogs"
ENTITY = "log_lines"
TABLE = "raw.weblogs"
OWNERS = ["team:data-platform"]
KEY = dg.AssetKey(["raw", "weblogs"])


def log_files_by_day(directory: DirectoryResource) -> dict[Path, dt.date]:
    """Log files in the directory with the day their name gives."""
    if not directory.directory.is_dir():
        raise dg.Failure(
            description=f"log directory {directory.directory} does not exist: run `b2b generate`"
            " or set B2B_LOG_DIR",
            allow_retries=False,
        )
    days = {}
    for path in sorted(directory.directory.iterdir()):
        day = log_file_day(path)
        if day is not None and path.is_file():
            days[path] = day
    return days


def files_of_month(
    days: dict[Path, dt.date], partition_key: str, first_key: str, last_key: str
) -> dict[Path, bool]:
    """Files whose day falls in the month -> True; the first and last months also take
    files dated before or after the whole range -> False (their lines are out_of_range)."""
    start, end = (b.date() for b in month_bounds(partition_key))
    chosen = {}
    for path, day in days.items():
        if start <= day < end:
            chosen[path] = True
        elif (partition_key == first_key and day < start) or (
            partition_key == last_key and day >= end
        ):
            chosen[path] = False
    return chosen


@dg.asset(
    key=KEY,
    group_name="raw",
    kinds={"duckdb", "file"},
    owners=OWNERS,
    tags={"source": SOURCE, "layer": "raw"},
    partitions_def=MONTHLY,
    backfill_policy=SINGLE_RUN,
    pool=WAREHOUSE_POOL,
    retry_policy=SOURCE_RETRY,
    check_specs=[
        dg.AssetCheckSpec(
            "accounting_identity",
            asset=KEY,
            blocking=True,
            description="Every line read is loaded or quarantined, per month.",
        ),
        dg.AssetCheckSpec(
            "file_accounting",
            asset=KEY,
            blocking=True,
            description="Per file: lines read = loaded + rejected, and the loaded count matches "
            "the rows in raw.weblogs.",
        ),
        dg.AssetCheckSpec(
            "manifest_consistent",
            asset=KEY,
            blocking=True,
            description="No file loaded twice; no rows without a loaded manifest entry.",
        ),
        dg.AssetCheckSpec(
            "log_lines_reject_rate",
            asset=KEY,
            description="Unparseable lines stay under the configured share.",
        ),
    ],
)
def raw_weblogs(
    context: dg.AssetExecutionContext,
    duckdb: DuckDBResource,
    log_dir: DirectoryResource,
    quality: QualityThresholds,
) -> Iterator[dg.MaterializeResult]:
    """Web server access-log lines (Apache/NGINX combined format), parsed into fields.

    A month's run reads only the files that are new or changed since the last load
    (etl.file_manifest: size, modification time, content hash); a changed file's rows
    replace its old rows, a deleted file's rows are removed. Each file commits with its
    manifest row, so a crash loses at most the file in flight. Lines that cannot be
    parsed or carry an impossible time are quarantined with file, line number and text.
    """
    days = log_files_by_day(log_dir)
    keys = MONTHLY.get_partition_keys()
    per_month: dict[str, dict[str, int]] = {}
    results: list[tuple[str, dg.AssetCheckResult]] = []
    failed: list[str] = []
    for partition_key in context.partition_keys:
        chosen = files_of_month(days, partition_key, keys[0], keys[-1])
        with asset_step(context, duckdb, partition_key) as step:
            stats = _load_month(context, step, chosen, partition_key, failed)
            per_month[partition_key] = stats
            results += [
                (partition_key, r)
                for r in _month_checks(step, partition_key, quality.max_reject_rate)
            ]
    combined = checks.combine_months(results)
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": sum(m["lines_loaded"] for m in per_month.values()),
            **schema_metadata(duckdb.database, duckdb.connection_config, TABLE),
            "months": months_markdown(per_month),
            "files_failed": dg.MetadataValue.md("\n".join(f"- {f}" for f in failed) or "none"),
        },
        check_results=combined,
    )


BATCH_TEXT_BYTES = 48 << 20  # files are committed in batches of about this much text


@dataclass
class ReadBatch:
    """A batch of files read from disk, their text not yet split into lines."""

    texts: list[tuple[dict[str, Any], bytes, bool]]  # manifest row, text, in date range
    unreadable: list[tuple[dict[str, Any], str]]  # manifest row and error of the others
    known_paths: set[str]  # files the manifest already had: their old rows are replaced


@dataclass
class ParsedBatch:
    """A batch of files parsed: what one commit writes."""

    loaded: list[dict[str, Any]]  # manifest rows of the files read, hash filled in
    unreadable: list[tuple[dict[str, Any], str]]
    known_paths: set[str]
    parsed: pl.DataFrame | None


def file_batches(
    to_load: list[tuple[InputFile, str | None]],
) -> list[list[tuple[InputFile, str | None]]]:
    """The files to load, in order, grouped into batches of about BATCH_TEXT_BYTES."""
    batches: list[list[tuple[InputFile, str | None]]] = [[]]
    size = 0
    for file, digest in to_load:
        if size >= BATCH_TEXT_BYTES:
            batches.append([])
            size = 0
        batches[-1].append((file, digest))
        size += log_text_size(file.path)
    return [batch for batch in batches if batch]


def _load_month(
    context: dg.AssetExecutionContext,
    step: WarehouseStep,
    chosen: dict[Path, bool],
    partition_key: str,
    failed: list[str],
) -> dict[str, int]:
    conn = step.conn
    files = [InputFile.stat(path) for path in chosen]
    plan = plan_files(conn, SOURCE, files, partition_key, hash_new_files=False)
    # removals first: a removed file's findings are keyed by file name, which a file
    # loaded in this run may share (the same file under another path)
    for path in plan.removed:
        _remove_file(step, path, partition_key)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="log-parser") as parser:
        _load_files(context, step, plan, chosen, partition_key, failed, parser)
    # month-level accounting over every file loaded so far (not only this run's)
    read = conn.execute(
        "SELECT coalesce(sum(rows_read), 0) FROM etl.file_manifest"
        " WHERE source = ? AND partition_key = ? AND status IN ('loaded', 'failed')",
        [SOURCE, partition_key],
    ).fetchall()[0][0]
    loaded_query = (
        f"SELECT count(*) FROM {TABLE} WHERE partition_key = '{partition_key}'"
        if table_exists(conn, TABLE) else "SELECT 0"
    )  # fmt: skip
    result = step.commit(
        accounting=[Accounting(SOURCE, ENTITY, partition_key, int(read), loaded_query)],
        rows_read=0,  # the lines were counted as their files loaded
    )
    counts = result.by_entity[ENTITY]
    return {
        "files_loaded": len(plan.to_load), "files_unchanged": len(plan.unchanged),
        "files_removed": len(plan.removed), "lines_read": counts["rows_read"],
        "lines_loaded": counts["rows_loaded"], "lines_rejected": counts["rows_rejected"],
    }  # fmt: skip


def _load_files(
    context: dg.AssetExecutionContext,
    step: WarehouseStep,
    plan: FilePlan,
    chosen: dict[Path, bool],
    partition_key: str,
    failed: list[str],
    parser: ThreadPoolExecutor,
) -> None:
    """Read, parse and commit the month's new and changed files, batch by batch.

    Two threads, each busy about as long as the other: this one reads a batch (gunzip,
    hashing) and commits the batch before it (DuckDB) while the other parses (polars);
    all of them release the GIL. Commits stay in file order, one batch at a time, so
    about three batches are in memory: one being read, one parsed, one committed.
    """
    pending: Future[ParsedBatch] | None = None
    for batch in file_batches(plan.to_load):
        parsing = parser.submit(_parse_batch, _read_batch(batch, chosen, partition_key))
        if pending is not None:
            _commit_batch(context, step, pending.result(), partition_key, failed)
        pending = parsing
    if pending is not None:
        _commit_batch(context, step, pending.result(), partition_key, failed)


def _read_batch(
    batch: list[tuple[InputFile, str | None]], chosen: dict[Path, bool], partition_key: str
) -> ReadBatch:
    """Read a batch of files; a file that cannot be read is set aside with its error."""
    texts: list[tuple[dict[str, Any], bytes, bool]] = []
    unreadable: list[tuple[dict[str, Any], str]] = []
    for file, digest in batch:
        try:
            data = file.path.read_bytes()
            text = log_text(data, gzipped=file.path.suffix == ".gz")
        except Exception as exc:  # truncated gzip, permissions, not a text file
            unreadable.append((file.manifest_row(SOURCE, digest, partition_key), _first_line(exc)))
            continue
        # the planner hashes only files it knew: a new file's hash is taken here
        manifest = file.manifest_row(SOURCE, digest or content_hash_of(data), partition_key)
        texts.append((manifest, text, chosen[file.path]))
    known = {str(file.path) for file, digest in batch if digest is not None}
    return ReadBatch(texts, unreadable, known)


def _parse_batch(batch: ReadBatch) -> ParsedBatch:
    """Split a batch's texts into lines and parse them at once (polars only: this runs
    beside a commit)."""
    frames: list[pl.DataFrame] = []
    loaded: list[dict[str, Any]] = []
    in_range: list[bool] = []
    unreadable = list(batch.unreadable)
    for manifest, text, inside in batch.texts:
        try:
            lines = lines_of_text(text)
        except Exception as exc:  # text polars cannot split into lines: that file fails alone
            unreadable.append((manifest, _first_line(exc)))
            continue
        frames.append(lines.with_columns(file_index=pl.lit(len(loaded), dtype=pl.Int32)))
        loaded.append(manifest)
        in_range.append(inside)
    return ParsedBatch(
        loaded=loaded,
        unreadable=unreadable,
        known_paths=batch.known_paths,
        parsed=_parse_lines(pl.concat(frames), in_range) if frames else None,
    )


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:500]


def _parse_lines(lines: pl.DataFrame, in_range: list[bool]) -> pl.DataFrame:
    """Parse a batch's (line_number, line, file_index) rows.

    Lines of a file dated outside every partition are all out_of_range; only
    quarantined lines keep their raw text. Rows name their file by its index in the
    batch: the commit joins the paths in, instead of a string per row here.
    """
    parsed = parse_log_lines(lines)  # carries file_index through
    if not all(in_range):
        outside = pl.col("file_index").is_in([i for i, inside in enumerate(in_range) if not inside])
        parsed = parsed.with_columns(
            # a file dated outside every partition: account for its lines, load none
            reason=pl.when(outside).then(pl.lit("out_of_range")).otherwise(pl.col("reason")),
            detail=pl.when(outside)
            .then(pl.lit("file day is outside B2B_FIRST_MONTH .. B2B_AS_OF"))
            .otherwise(pl.col("detail")),
        )
    # the raw text is kept only for quarantined lines: loaded lines have their fields
    return parsed.with_columns(line=pl.when(pl.col("reason").is_not_null()).then(pl.col("line")))


def _commit_batch(
    context: dg.AssetExecutionContext,
    step: WarehouseStep,
    batch: ParsedBatch,
    partition_key: str,
    failed: list[str],
) -> None:
    """Commit a parsed batch: its rows, findings and manifest rows in one transaction.

    Every file's rows and its manifest row share the transaction, so a crash loses at
    most the batch in flight; batching amortizes the per-commit cost over small files.
    """
    conn = step.conn
    for manifest, message in batch.unreadable:
        failed.append(f"{Path(manifest['path']).name}: {message}")
        context.log.warning(f"log file {manifest['path']} could not be read: {message}")
        step.commit(manifest_rows=[failed_file_row(conn, manifest, message)], finish=False)
    parsed = batch.parsed
    if parsed is None:
        return
    counts = {
        index: (read, loaded)
        for index, read, loaded in parsed.group_by("file_index")
        .agg(pl.len(), pl.col("reason").is_null().sum())
        .iter_rows()
    }
    paths = [manifest["path"] for manifest in batch.loaded]
    conn.register("parsed_lines", parsed.to_arrow(compat_level=pl.CompatLevel.newest()))
    conn.register(
        "batch_files",
        pl.DataFrame(
            {
                "file_index": range(len(paths)),
                "source_file": paths,
                "file_name": [Path(path).name for path in paths],
            },
            schema={"file_index": pl.Int32, "source_file": pl.String, "file_name": pl.String},
        ).to_arrow(),
    )
    # only files loaded before have rows and findings to replace (new files: nothing to
    # delete, and the delete would scan the month's rows loaded so far)
    replaced = [path for path in paths if path in batch.known_paths]
    step.commit(
        [
            TableSlice(
                TABLE,
                # the path is the target without its query string: staging derives it
                f"""SELECT p.* EXCLUDE (line, reason, detail, file_index), f.source_file,
                           '{partition_key}' AS partition_key
                    FROM parsed_lines p JOIN batch_files f USING (file_index)
                    WHERE p.reason IS NULL""",
                # the month first: zone maps let DuckDB skip other months' row groups
                where="partition_key = ? AND list_contains(?, source_file)"
                if replaced
                else "false",
                params=[partition_key, replaced] if replaced else [],
            )
        ],
        quarantine=[
            QuarantineSlice(
                SOURCE,
                ENTITY,
                partition_key,
                """SELECT f.file_name || ':' || p.line_number AS record_key,
                          p.reason AS reason_code, 'rejected' AS action, p.detail,
                          p.line AS raw_record
                   FROM parsed_lines p JOIN batch_files f USING (file_index)
                   WHERE p.reason IS NOT NULL""",
                # findings are keyed by file name (a same-named file may have been removed
                # under another path just before)
                scope="list_contains(?, split_part(record_key, ':', 1))",
                scope_params=[[Path(path).name for path in paths]],
            )
        ],
        manifest_rows=[
            {
                **manifest,
                "status": "loaded",
                "rows_read": read,
                "rows_loaded": loaded,
                "rows_rejected": read - loaded,
            }
            for index, manifest in enumerate(batch.loaded)
            for read, loaded in [counts.get(index, (0, 0))]  # an empty file has no rows
        ],
        rows_read=parsed.height,
        finish=False,
    )
    conn.unregister("parsed_lines")
    conn.unregister("batch_files")


def _remove_file(step: WarehouseStep, path: str, partition_key: str) -> None:
    name = Path(path).name
    step.commit(
        [TableSlice(TABLE, f"SELECT * FROM {TABLE} LIMIT 0", where="source_file = ?", params=[path])]
        if table_exists(step.conn, TABLE) else [],
        quarantine=[
            QuarantineSlice(SOURCE, ENTITY, partition_key, "SELECT NULL AS record_key, NULL AS reason_code,"
                            " NULL AS action, NULL AS detail, NULL AS raw_record WHERE false",
                            scope="starts_with(record_key, ?)", scope_params=[f"{name}:"])
        ],
        manifest_rows=[{"source": SOURCE, "path": path, "partition_key": partition_key,
                        "status": "removed", "loaded_at": utc_now(), "rows_read": 0,
                        "rows_loaded": 0, "rows_rejected": 0}],
        finish=False,
    )  # fmt: skip


def _month_checks(
    step: WarehouseStep, partition_key: str, max_reject_rate: float
) -> list[dg.AssetCheckResult]:
    conn = step.conn
    duplicated = conn.execute(
        "SELECT count(*) FROM (SELECT content_hash FROM etl.file_manifest WHERE source = ?"
        " AND status = 'loaded' GROUP BY content_hash HAVING count(*) > 1)",
        [SOURCE],
    ).fetchall()[0][0]
    orphans = 0
    if table_exists(conn, TABLE):
        orphans = conn.execute(
            f"SELECT count(*) FROM {TABLE} r WHERE r.partition_key = ? AND NOT EXISTS ("
            " SELECT 1 FROM etl.file_manifest m WHERE m.source = ? AND m.path = r.source_file"
            " AND m.status IN ('loaded', 'failed'))",
            [partition_key, SOURCE],
        ).fetchall()[0][0]
    mismatched = (
        conn.execute(
            f"""SELECT count(*) FROM etl.file_manifest m
            WHERE m.source = ? AND m.partition_key = ? AND m.status = 'loaded'
              AND (m.rows_read <> m.rows_loaded + m.rows_rejected
                   OR m.rows_loaded <> (SELECT count(*) FROM {TABLE} r
                                        WHERE r.partition_key = m.partition_key
                                          AND r.source_file = m.path))""",
            [SOURCE, partition_key],
        ).fetchall()[0][0]
        if table_exists(conn, TABLE)
        else 0
    )
    return [
        checks.accounting_holds(conn, KEY, SOURCE, [ENTITY], partition_key),
        dg.AssetCheckResult(
            asset_key=KEY,
            check_name="file_accounting",
            passed=mismatched == 0,
            metadata={"files_not_adding_up": int(mismatched)},
        ),
        dg.AssetCheckResult(
            asset_key=KEY,
            check_name="manifest_consistent",
            passed=duplicated == 0 and orphans == 0,
            metadata={
                "files_with_same_content": int(duplicated),
                "rows_without_manifest": int(orphans),
            },
        ),
        checks.reject_rate_below(conn, KEY, SOURCE, ENTITY, partition_key, max_reject_rate),
    ]
