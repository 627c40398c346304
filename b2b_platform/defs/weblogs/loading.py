"""Web-log files through the load: read in bounded units, parsed, committed in order.

A month's new and changed files pass three stages: reading (bounded text parts, see
lib/weblogs/log_reader.py), parsing (polars, on a second thread) and committing (DuckDB, one
transaction per unit). Small files travel together in units of about BATCH_TEXT_BYTES;
a large file travels alone, one part per unit, in one transaction that stays open from
its first part to its last. Whatever goes wrong with one file fails that file only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import polars as pl
import pyarrow as pa

from b2b_platform.defs.weblogs.not_a_log import drop_absurd_files, not_a_log
from b2b_platform.lib.arrow_frames import arrow_for_duckdb
from b2b_platform.lib.input_files.file_manifest import (
    SETTLE_SECONDS,
    InputFile,
    error_line,
    failed_file_row,
)
from b2b_platform.lib.warehouse.step import WarehouseStep
from b2b_platform.lib.warehouse.writes import QuarantineSlice, TableSlice
from b2b_platform.lib.weblogs.combined_log import parse_log_lines
from b2b_platform.lib.weblogs.log_lines import LogDays, lines_of_text
from b2b_platform.lib.weblogs.log_reader import LogFileReader, TextPrefix, line_identity

SOURCE = "weblogs"
ENTITY = "log_lines"
TABLE = "raw.weblogs"

BATCH_TEXT_BYTES = 48 << 20  # small files are committed in batches of about this much text
# the head of a big file is checked first (not_a_log.py)
HEAD_CHECK_LINES = 10_000


@dataclass
class FilePiece:
    """Part of one file's text: a small file is one piece, a large one several."""

    index: int  # the file's position in the month's load order
    manifest: dict[str, Any]  # its manifest row; the hash is filled in with the last part
    text: bytes
    days: LogDays  # the days its requests may fall on
    first: bool
    last: bool


@dataclass
class ReadUnit:
    """What one commit writes: whole small files, or one part of a large file.

    A large file's parts share one transaction, kept open from its first part's commit
    to its last, so a crash or a bad part leaves the file's old rows, never half.
    """

    pieces: list[FilePiece] = field(default_factory=list)
    failures: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    known_paths: set[str] = field(default_factory=set)  # old rows to replace
    large: bool = False  # one part of a file read in several

    @property
    def text_bytes(self) -> int:
        return sum(len(piece.text) for piece in self.pieces)


@dataclass(frozen=True)
class CutoffBounds:
    """Where a file's lines stand against the load cutoff it was loaded with: the earliest
    request held back as future (None: none) and the latest request loaded (None: none).
    They tell exactly whether another cutoff would load the file differently."""

    held_from: dt.datetime | None = None
    loaded_until: dt.datetime | None = None

    def __or__(self, other: CutoffBounds) -> CutoffBounds:
        """The bounds of two parts of one file."""
        return CutoffBounds(
            _either(min, self.held_from, other.held_from),
            _either(max, self.loaded_until, other.loaded_until),
        )


def _either(pick: Any, first: dt.datetime | None, second: dt.datetime | None) -> Any:
    present = [value for value in (first, second) if value is not None]
    return pick(present) if present else None


def cutoff_moved_past(cutoff: dt.datetime) -> Callable[[Mapping[str, Any]], bool]:
    """Whether a loaded file's manifest row says the load cutoff `cutoff` would load it
    differently than the one it was loaded with: a later cutoff passed a request it held
    back (future_request), or an earlier one falls before a request it loaded. A row
    from before cutoffs were recorded cannot tell: the file is read again."""

    def moved(row: Mapping[str, Any]) -> bool:
        before = row.get("load_cutoff")
        if before is None:
            return True
        if cutoff > before:
            return row["held_from"] is not None and row["held_from"] < cutoff
        if cutoff < before:
            return row["loaded_until"] is not None and row["loaded_until"] >= cutoff
        return False

    return moved


@dataclass(frozen=True)
class Appended:
    """Where a grown file's new text starts and what its loaded text already counted."""

    prefix: TextPrefix  # the text loaded: its length, digest and line count
    first_line_hash: str
    rows_read: int
    rows_loaded: int
    bounds: CutoffBounds


@dataclass
class ParsedUnit:
    unit: ReadUnit
    loaded: list[FilePiece]  # pieces whose lines are in `parsed`, by file_index
    failures: list[tuple[dict[str, Any], str]]
    parsed: pl.DataFrame | None
    counts: dict[int, tuple[int, int]] = field(default_factory=dict)  # file: read, loaded
    bounds: dict[int, CutoffBounds] = field(default_factory=dict)  # file: against the cutoff


@dataclass
class MonthLoad:
    """State of one month's load shared by the reading, parsing and committing stages."""

    partition_key: str
    first_key: str  # the range of months (a line outside it is out_of_range)
    last_key: str
    cutoff: dt.datetime  # requests after this are future_request
    trusted_proxies: list[str]
    failed: list[str]
    log_root: Path  # B2B_LOG_DIR: its subdirectories are web servers
    # the warehouse's DuckDB threads, given back after the insert: the setting is the
    # database's, so the value read back may be the 1 the other month's lane just set
    database_threads: int
    line_offsets: dict[int, int] = field(default_factory=dict)  # parser thread only
    counts: dict[int, tuple[int, int]] = field(default_factory=dict)  # file: read, loaded
    bounds: dict[int, CutoffBounds] = field(default_factory=dict)  # file: against the cutoff
    # files that grew since their load, read from there (grown_files.py): path -> where
    appended: dict[str, Appended] = field(default_factory=dict)
    # large files that failed after parts were written: path -> manifest row, error
    excluded: dict[str, tuple[dict[str, Any], str]] = field(default_factory=dict)
    writing: str | None = None  # the large file whose parts are being written

    def restart(self, manifest: dict[str, Any], message: str) -> None:
        """Start the month again, without a large file that failed part-way."""
        self.excluded[manifest["path"]] = (manifest, message)
        self.line_offsets.clear()
        self.counts.clear()
        self.bounds.clear()
        self.writing = None


class RestartMonth(Exception):
    """A large file failed after some of its parts were written in the month's transaction."""

    def __init__(self, manifest: dict[str, Any], message: str) -> None:
        super().__init__(message)
        self.manifest = manifest
        self.message = message


def server_of(path: Path, root: Path) -> str:
    """The web server a log file comes from: its subdirectory of B2B_LOG_DIR, or "" for a
    file directly inside it."""
    return "" if path.parent == root else path.parent.name


def record_name(path: str, root: Path) -> str:
    """How quarantined lines name their file: `access.log.1`, or `web2/access.log.1` for a
    server's file (two servers write the same names)."""
    server = server_of(Path(path), root)
    return f"{server}/{Path(path).name}" if server else Path(path).name


def read_units(
    to_load: list[tuple[InputFile, str | None]], chosen: dict[Path, LogDays], load: MonthLoad
) -> Iterator[ReadUnit]:
    """Read the files in order into units; a file that cannot be read fails alone.

    A plain file's manifest row records the text loaded (`text_bytes`, and its digest as
    `content_hash`): a line still being written is left out of both, and a grown file is
    read from there (grown_files.py). A gzip file's hash is of its bytes.
    """
    unit = ReadUnit()
    for index, (file, digest) in enumerate(to_load):
        manifest = file.manifest_row(SOURCE, digest or "", load.partition_key)
        days = chosen[file.path]
        grown = load.appended.get(str(file.path))
        known = digest is not None and grown is None  # rows to replace
        plain = file.path.suffix != ".gz"
        prefix = grown.prefix if grown else TextPrefix.start()
        if grown:  # its new lines follow the ones loaded, and add to their counts
            load.line_offsets[index] = grown.prefix.lines
            load.counts[index] = (grown.rows_read, grown.rows_loaded)
            load.bounds[index] = grown.bounds
        try:
            with LogFileReader(file.path, start=prefix.length) as reader:
                parts = reader.parts()
                part = next(parts)
                manifest["first_line_hash"] = (
                    grown.first_line_hash if grown else line_identity(part.text)
                )
                first = grown is None
                while True:
                    text = complete_lines(part.text, file) if part.last else part.text
                    if plain:
                        prefix = prefix.extended(text)
                    if part.last:
                        manifest["content_hash"] = (
                            prefix.hexdigest() if plain else digest or reader.content_hash()
                        )
                        manifest["text_bytes"] = prefix.length if plain else reader.text_bytes
                    piece = FilePiece(index, manifest, text, days, first, part.last)
                    if first and part.last:  # a small file: batched with others
                        unit.pieces.append(piece)
                        if known:
                            unit.known_paths.add(manifest["path"])
                        if unit.text_bytes >= BATCH_TEXT_BYTES:
                            yield unit
                            unit = ReadUnit()
                        break
                    if unit.pieces or unit.failures:  # a large or grown file commits alone
                        yield unit
                        unit = ReadUnit()
                    yield ReadUnit(
                        [piece], known_paths={manifest["path"]} if known and first else set(),
                        large=True,
                    )  # fmt: skip
                    if part.last:
                        break
                    first = False
                    part = next(parts)
        except Exception as exc:  # unreadable, truncated gzip, binary, bomb: this file only
            unit.failures.append((manifest, error_line(exc)))
    if unit.pieces or unit.failures:
        yield unit


def complete_lines(text: bytes, file: InputFile) -> bytes:
    """The end of a file's text without the line a server is still writing: in a plain
    file written to within SETTLE_SECONDS, a last line without its newline waits for the
    next run (which reads the file again, since it changed). Elsewhere a last line without
    a newline is the file's last line."""
    if text.endswith(b"\n") or file.path.suffix == ".gz" or not text:
        return text
    age = dt.datetime.now(dt.UTC).replace(tzinfo=None) - file.modified_at
    return text[: text.rfind(b"\n") + 1] if age.total_seconds() < SETTLE_SECONDS else text


def parse_unit(unit: ReadUnit, load: MonthLoad) -> ParsedUnit:
    """Split a unit's texts into lines and parse them (polars only: runs beside a commit)."""
    frames: list[pl.DataFrame] = []
    loaded: list[FilePiece] = []
    failures = list(unit.failures)
    for piece in unit.pieces:
        try:
            lines = lines_of_text(piece.text)
        except Exception as exc:  # too many lines, or text polars cannot split
            failures.append((piece.manifest, f"not an access log: {error_line(exc)}"))
            continue
        offset = load.line_offsets.get(piece.index, 0)
        load.line_offsets[piece.index] = offset + lines.height
        if offset:
            lines = lines.with_columns(pl.col("line_number") + offset)
        # many short lines: look at the first ones before parsing them all
        if lines.height > max(HEAD_CHECK_LINES, len(piece.text) // 100):
            problem = not_a_log(parse_log_lines(lines.head(HEAD_CHECK_LINES)))
            if problem:
                failures.append((piece.manifest, problem))
                continue
        frames.append(lines.with_columns(file_index=pl.lit(len(loaded), dtype=pl.Int32)))
        loaded.append(piece)
    parsed = _parse_lines(pl.concat(frames), loaded, load) if frames else None
    if parsed is not None:  # judged on all its lines, whichever months they belong to
        parsed, loaded = drop_absurd_files(parsed, loaded, failures)
    if parsed is None:
        return ParsedUnit(unit, loaded, failures, None)
    # the lines of this month; the others are other months' (each month reads the file)
    parsed = parsed.filter(pl.col("month") == _month_number(load.partition_key)).drop("month")
    return ParsedUnit(unit, loaded, failures, parsed, _line_counts(parsed), _cutoff_bounds(parsed))


def _line_counts(parsed: pl.DataFrame) -> dict[int, tuple[int, int]]:
    """Each file's lines read and loaded (of the month), by its index in the unit."""
    per_file = parsed.group_by("file_index").agg(
        read=pl.len(), loaded=pl.col("reason").is_null().sum()
    )
    return {index: (read, loaded) for index, read, loaded in per_file.iter_rows()}


def _month_number(partition_key: str) -> int:
    """A month as one number (year * 12 + month), what a line's month is compared in."""
    return int(partition_key[:4]) * 12 + int(partition_key[5:7])


def _cutoff_bounds(parsed: pl.DataFrame) -> dict[int, CutoffBounds]:
    """Each file's requests held back for the cutoff and loaded (see CutoffBounds)."""
    at, reason = pl.col("requested_at"), pl.col("reason")
    per_file = parsed.group_by("file_index").agg(
        held_from=at.filter(reason == "future_request").min(),
        loaded_until=at.filter(reason.is_null()).max(),
    )
    return {index: CutoffBounds(held, until) for index, held, until in per_file.iter_rows()}


def _parse_lines(lines: pl.DataFrame, pieces: list[FilePiece], load: MonthLoad) -> pl.DataFrame:
    """Parse a unit's (line_number, line, file_index) rows, apply the date rules and give
    each line its month.

    A request after the load cutoff is future_request; one outside its file's days
    (LogDays) is outside_file_day; one in a month outside the range is out_of_range. A
    line belongs to the month of its own time; a line without a usable time (unparseable,
    outside its file's days) to its file's own month. Only quarantined lines keep their
    raw text. Rows name their file by its index in the unit: the commit joins the paths
    in, instead of a string per row here.
    """
    parsed = parse_log_lines(lines, trusted_proxies=load.trusted_proxies)
    at = pl.col("requested_at")
    first_at = _per_file(pieces, [p.days.start_at for p in pieces], pl.Datetime("us"))
    end_at = _per_file(pieces, [p.days.end_at for p in pieces], pl.Datetime("us"))
    own_month = _per_file(
        pieces, [p.days.day.year * 12 + p.days.day.month for p in pieces], pl.Int32
    )
    # the cutoff instant itself (00:00:00 after the as-of day) is already the future
    future = (at >= load.cutoff).fill_null(False)
    off_day = ((at < first_at) | (at >= end_at)).fill_null(False)
    month = (
        pl.when(at.is_not_null() & ~off_day)
        .then(at.dt.year().cast(pl.Int32) * 12 + at.dt.month().cast(pl.Int32))
        .otherwise(own_month)
    )
    first, last = _month_number(load.first_key), _month_number(load.last_key)
    parsed = parsed.with_columns(month=month)
    outside = ~pl.col("month").is_between(first, last) & ~future
    # most units have no such line: then the reason and detail columns are left alone
    if parsed.select((future | off_day | outside).any()).item():
        # a line far from its file's days is wrong whenever it is read; only the others
        # wait for the cutoff, so the cutoff matters for a file's lines within its days
        # (log_files.month_version). A month outside the range overrides any reason.
        unparsed = pl.col("reason").is_null()
        calendar = (
            pl.when(outside)
            .then(pl.lit("out_of_range"))
            .when(unparsed & off_day)
            .then(pl.lit("outside_file_day"))
            .when(unparsed & future)
            .then(pl.lit("future_request"))
        )
        parsed = (
            parsed.with_columns(calendar=calendar)
            .with_columns(
                reason=pl.coalesce("calendar", "reason"),
                # constant texts: formatting a time per row would cost more than the rule
                detail=pl.coalesce(
                    pl.col("calendar").replace_strict(CALENDAR_DETAILS, default=None),
                    "detail",
                ),
            )
            .drop("calendar")
        )
    # a line after the range waits as future_request in the last month, one before it
    # is out_of_range in the first
    return parsed.with_columns(
        month=pl.col("month").clip(first, last),
        # the raw text is kept only for quarantined lines: loaded lines have their fields
        line=pl.when(pl.col("reason").is_not_null()).then(pl.col("line")),
    )


CALENDAR_DETAILS = {
    "out_of_range": "request month is outside B2B_FIRST_MONTH .. B2B_AS_OF",
    "outside_file_day": "request time is more than a day away from the file's days",
    "future_request": "request time is after the end of B2B_AS_OF (the load cutoff)",
}


def _per_file(pieces: list[FilePiece], values: list[Any], dtype: pl.DataType) -> pl.Expr:
    """A value of each row's file: a constant for the usual unit (one day's files)."""
    if len(set(values)) == 1:
        return pl.lit(values[0], dtype=dtype)
    return pl.lit(pl.Series(values, dtype=dtype)).gather(pl.col("file_index"))


def commit_unit(
    context: dg.AssetExecutionContext, step: WarehouseStep, parsed_unit: ParsedUnit, load: MonthLoad
) -> None:
    """Write a parsed unit into the month's open transaction: its rows, findings and
    manifest rows, published with the month when its checks pass.

    A file that failed alone gets its failed manifest row (its old rows stay); a large
    file that fails after some of its parts were written raises RestartMonth, since a
    transaction cannot drop only part of itself.
    """
    _commit_failed_files(context, step, parsed_unit, load)
    pieces = parsed_unit.loaded
    parsed = parsed_unit.parsed
    if parsed is None or not pieces:
        return
    if parsed_unit.unit.large:
        load.writing = None if pieces[0].last else pieces[0].manifest["path"]
    _add_line_counts(parsed_unit, load)
    # The statements below find these three by name through DuckDB's replacement scan of
    # the calling frames (python_scan_all_frames, set by the month's load), not through
    # conn.register: a registered object stays pinned until the transaction ends, and
    # the month's transaction would hold every unit's rows in memory (8.7 GB at 10M lines).
    # So they stay locals of this frame, which is on the stack while step.commit runs.
    # Loaded and rejected lines are split here (polars filters string views without
    # copying their text): DuckDB inserting from a filtered scan of every column cost
    # 1.3 us a row against 0.9 us from the loaded lines alone.
    reason = pl.col("reason")
    loaded_lines = arrow_for_duckdb(  # noqa: F841
        parsed.filter(reason.is_null()).drop("line", "reason", "detail")
    )
    rejected_lines = arrow_for_duckdb(parsed.filter(reason.is_not_null()))  # noqa: F841
    batch_files = _batch_files(pieces, load.partition_key, load.log_root)  # noqa: F841
    step.commit(
        [_loaded_lines_slice(parsed_unit, load.partition_key)],
        quarantine=[_rejected_lines_slice(pieces, load.partition_key, load.log_root)],
        manifest_rows=_loaded_file_rows(pieces, load),
        rows_read=parsed.height,
        finish=False,
        keep_open=True,
    )


def _commit_failed_files(
    context: dg.AssetExecutionContext, step: WarehouseStep, parsed_unit: ParsedUnit, load: MonthLoad
) -> None:
    """Record each file of the unit that failed alone; restart the month for a large
    file whose earlier parts are already written."""
    conn = step.conn
    for manifest, message in parsed_unit.failures:
        if manifest["path"] == load.writing:
            raise RestartMonth(manifest, message)
        load.failed.append(f"{Path(manifest['path']).name}: {message}")
        context.log.warning(f"log file {manifest['path']} failed: {message}")
        step.commit(
            manifest_rows=[failed_file_row(conn, manifest, message)], finish=False, keep_open=True
        )


def _add_line_counts(parsed_unit: ParsedUnit, load: MonthLoad) -> None:
    """Add the unit's lines read and loaded to each file's counts (a large file's parts
    add up to its manifest row's counts)."""
    counts = parsed_unit.counts
    for position, piece in enumerate(parsed_unit.loaded):
        read, loaded = counts.get(position, (0, 0))  # an empty file has no rows
        before = load.counts.get(piece.index, (0, 0))
        load.counts[piece.index] = (before[0] + read, before[1] + loaded)
        bounds = parsed_unit.bounds.get(position, CutoffBounds())
        load.bounds[piece.index] = load.bounds.get(piece.index, CutoffBounds()) | bounds


def _batch_files(pieces: list[FilePiece], partition_key: str, root: Path) -> pa.Table:
    """The unit's files by their index in it: what the rows' file_index stands for."""
    paths = [piece.manifest["path"] for piece in pieces]
    return arrow_for_duckdb(
        pl.DataFrame(
            {
                "file_index": range(len(paths)),
                "source_file": paths,
                "file_name": [record_name(path, root) for path in paths],
                "server": [server_of(Path(path), root) for path in paths],
                "partition_key": [partition_key] * len(paths),
            },
            schema={
                "file_index": pl.Int32,
                "source_file": pl.String,
                "file_name": pl.String,
                "server": pl.String,
                "partition_key": pl.String,
            },
        )
    )


def _loaded_lines_slice(parsed_unit: ParsedUnit, partition_key: str) -> TableSlice:
    """The unit's loaded lines, replacing the rows its files had from an earlier load."""
    # only files loaded before have rows and findings to replace (new files: nothing to
    # delete, and the delete would scan the month's rows loaded so far)
    replaced = [
        piece.manifest["path"]
        for piece in parsed_unit.loaded
        if piece.manifest["path"] in parsed_unit.unit.known_paths
    ]
    return TableSlice(
        TABLE,
        # the path is the target without its query string: staging derives it
        """SELECT p.* EXCLUDE (file_index), f.source_file, f.partition_key, f.server
           FROM loaded_lines p JOIN batch_files f USING (file_index)""",
        # the month first: zone maps let DuckDB skip other months' row groups
        where="partition_key = ? AND list_contains(?, source_file)" if replaced else "false",
        params=[partition_key, replaced] if replaced else [],
    )


def empty_table_slice(conn: duckdb.DuckDBPyConnection) -> TableSlice:
    """raw.weblogs created with its columns and no rows, for a first load that found no
    line (an empty log directory): what reads the table then finds it empty, not missing."""
    parsed = parse_log_lines(lines_of_text(b""), trusted_proxies=[]).with_columns(
        file_index=pl.lit(0, dtype=pl.Int32)
    )
    conn.register("no_parsed_lines", arrow_for_duckdb(parsed))
    conn.register("no_batch_files", _batch_files([], "", Path()))
    return TableSlice(
        TABLE,
        """SELECT p.* EXCLUDE (line, reason, detail, file_index), f.source_file,
                  f.partition_key, f.server
           FROM no_parsed_lines p JOIN no_batch_files f USING (file_index)""",
        where="false",
    )


def _rejected_lines_slice(
    pieces: list[FilePiece], partition_key: str, root: Path
) -> QuarantineSlice:
    """The unit's rejected lines, replacing the findings of the files it starts."""
    starting = [record_name(piece.manifest["path"], root) for piece in pieces if piece.first]
    return QuarantineSlice(
        SOURCE,
        ENTITY,
        partition_key,
        """SELECT f.file_name || ':' || p.line_number AS record_key,
                  p.reason AS reason_code, 'rejected' AS action, p.detail,
                  -- the line without its client's (or any other) IP address
                  mask_addresses(p.line) AS raw_record
           FROM rejected_lines p JOIN batch_files f USING (file_index)""",
        # findings are keyed by file name (a same-named file may have been removed
        # under another path just before); a large file's later parts add to them
        scope="list_contains(?, split_part(record_key, ':', 1))",
        scope_params=[starting],
    )


def _loaded_file_rows(pieces: list[FilePiece], load: MonthLoad) -> list[dict[str, Any]]:
    """Manifest rows of the files whose last part is in the unit, with their counts."""
    return [
        {
            **piece.manifest,
            "status": "loaded",
            "rows_read": load.counts[piece.index][0],
            "rows_loaded": load.counts[piece.index][1],
            "rows_rejected": load.counts[piece.index][0] - load.counts[piece.index][1],
            "load_cutoff": load.cutoff,
            "held_from": load.bounds.get(piece.index, CutoffBounds()).held_from,
            "loaded_until": load.bounds.get(piece.index, CutoffBounds()).loaded_until,
        }
        for piece in pieces
        if piece.last
    ]
