"""Moving a warehouse: every table out as Parquet, and into another warehouse, whole.

A DuckDB 2.0 file cannot be opened by DuckDB 1.4, the lake profile's, so a file
warehouse moves into a lake through Parquet, which both read: `b2b export-warehouse DIR`
with the default environment, then `b2b import-warehouse DIR` with the lake profile and
B2B_WAREHOUSE naming the lake. The import is one transaction that also brings the run
log, file manifest and slice versions, so the lake knows what is already loaded and
`b2b run` rebuilds nothing that is up to date.

An export directory is input like any other, and may have been written by someone else:
the import treats it as data. Only the tables the code defines are read, each checked
against the code's columns and types before anything is written; no name or text from
the manifest reaches SQL (the views are created from the code's own definitions); each
file is opened once, as a regular file inside the directory (no link, FIFO or device),
and DuckDB reads it through that open descriptor with every other file access disabled.
The privacy and accounting checks then run on the imported tables before the commit.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import duckdb

from b2b_common.errors import UserError
from b2b_platform.lib import checks
from b2b_platform.lib.warehouse.location import LAKE_CATALOG, WarehouseLocation
from b2b_platform.lib.warehouse.private_files import private_umask
from b2b_platform.lib.warehouse.schema import SCHEMAS
from b2b_platform.lib.warehouse.sql import (
    SqlFragment,
    bind_variables,
    qualified_name,
    quote_identifier,
)

MANIFEST = "warehouse.json"
MANIFEST_MAX_BYTES = 1 << 20  # a real manifest is a few kB
ANALYST_SCHEMAS = ("core", "reports")  # where no personal data may be
LAKE_METADATA = f"__ducklake_metadata_{LAKE_CATALOG}"  # DuckLake's catalog tables


@dataclass(frozen=True)
class WarehouseContents:
    """What this code builds: tables as (column, type) pairs, views as their SQL."""

    tables: Mapping[str, tuple[tuple[str, str], ...]]
    views: Mapping[str, SqlFragment]


@dataclass
class Export:
    """A checked export directory: the tables to load, their row counts, and the open
    file behind each (read through /proc/self/fd, so it cannot be swapped meanwhile)."""

    directory: Path
    rows: dict[str, int] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # table -> /proc/self/fd/N


def table_shapes(conn: duckdb.DuckDBPyConnection) -> dict[str, list[list[str]]]:
    """Each base table of the warehouse's schemas, with its columns and their types."""
    tables = conn.execute(
        "SELECT schema_name, table_name FROM duckdb_tables()"
        " WHERE database_name = current_database() AND list_contains(?, schema_name)"
        " ORDER BY ALL",
        [list(SCHEMAS)],
    ).fetchall()
    return {
        f"{schema}.{name}": [
            [column, dtype]
            for column, dtype, *_ in conn.execute(
                f"DESCRIBE {qualified_name(f'{schema}.{name}')}"
            ).fetchall()
        ]
        for schema, name in tables
    }


def export_warehouse(conn: duckdb.DuckDBPyConnection, target: Path) -> dict:
    """Write each table of the warehouse's schemas to `target/<schema>.<table>.parquet`,
    and the list of tables, row counts and views to `target/warehouse.json`.

    The raw and staging tables hold personal data: the directory (when it is created
    here) and its files are the owner's only, whatever the umask."""
    with private_umask():
        return _export(conn, target)


def _export(conn: duckdb.DuckDBPyConnection, target: Path) -> dict:
    if target.exists() and not target.is_dir():
        raise UserError(f"{target} is not a directory: export into a new directory")
    if target.exists() and any(target.iterdir()):
        raise UserError(f"{target} is not empty: export into a new directory")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"cannot create {target} ({exc.strerror or exc}): export into a new directory"
            " you can write"
        ) from None
    manifest: dict = {"tables": {}, "views": {}}
    for name in table_shapes(conn):
        path = target / f"{name}.parquet"
        bind_variables(conn, {"export_file": str(path)})
        conn.execute(
            f"COPY {qualified_name(name)} TO (getvariable('export_file')) (FORMAT parquet)"
        )
        manifest["tables"][name] = conn.execute(
            f"SELECT count(*) FROM {qualified_name(name)}"
        ).fetchall()[0][0]
    for schema, view, sql in conn.execute(
        "SELECT schema_name, view_name, sql FROM duckdb_views()"
        " WHERE database_name = current_database() AND NOT internal AND list_contains(?, schema_name)",
        [list(SCHEMAS)],
    ).fetchall():
        manifest["views"][f"{schema}.{view}"] = sql  # for the reader; an import ignores it
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def _open_regular(path: Path, what: str) -> int:
    """A descriptor of `path`, which must be a regular file of its own: no symbolic or
    hard link (either could stand for a file outside the directory), no FIFO (which
    would block the import forever), no device."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise UserError(f"{path} is missing: {what}") from None
    except OSError as exc:  # ELOOP: a symbolic link
        raise UserError(f"{path} cannot be opened ({exc.strerror}): {what}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        kind = "a hard link" if stat.S_ISREG(info.st_mode) else "not a regular file"
        raise UserError(f"{path} is {kind}: {what}")
    return fd


def _read_manifest(directory: Path, contents: WarehouseContents) -> dict[str, int]:
    """The manifest's tables and row counts, each a table the code defines."""
    what = "point at a directory written by `b2b export-warehouse`"
    fd = _open_regular(directory / MANIFEST, what)
    with os.fdopen(fd, "rb") as file:
        text = file.read(MANIFEST_MAX_BYTES + 1)
    try:
        if len(text) > MANIFEST_MAX_BYTES:
            raise ValueError("too large")
        manifest = json.loads(text)
        tables = manifest["tables"]
        views = manifest.get("views", {})
        if not isinstance(tables, dict) or not isinstance(views, dict) or not tables:
            raise ValueError("no tables")
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(
            f"{directory / MANIFEST} is not a warehouse manifest ({exc}): {what}"
        ) from None
    unknown = sorted(
        name
        for name in [*tables, *views]
        if name not in contents.tables and name not in contents.views
    )
    if unknown:
        shown = ", ".join(repr(name)[:60] for name in unknown[:3])
        raise UserError(
            f"{directory / MANIFEST} names {len(unknown)} table(s) this warehouse does not"
            f" define ({shown}): export with the same version of the code"
        )
    misplaced = sorted(name for name in tables if name not in contents.tables)
    if misplaced:
        raise UserError(
            f"{directory / MANIFEST} lists views as tables ({', '.join(misplaced[:3])})"
        )
    bad_counts = sorted(name for name, rows in tables.items() if type(rows) is not int or rows < 0)
    if bad_counts:
        raise UserError(f"{directory / MANIFEST}: the row count of {bad_counts[0]} is not a count")
    return tables


@contextmanager
def open_export(directory: Path, contents: WarehouseContents) -> Iterator[Export]:
    """Check an export directory before anything is written: its manifest, and each
    table's file (a regular Parquet file with the code's columns and types, and the
    rows the manifest says). The files stay open until the import is done."""
    export = Export(directory)
    with ExitStack() as stack:
        rows = _read_manifest(directory, contents)
        for name in sorted(rows):
            fd = _open_regular(
                directory / f"{name}.parquet", "export again with `b2b export-warehouse`"
            )
            stack.callback(os.close, fd)
            export.files[name] = f"/proc/self/fd/{fd}"
        export.rows = rows
        probe = stack.enter_context(_confined_connection(list(export.files.values())))
        for name in sorted(rows):
            _check_file(probe, export, name, contents.tables[name])
        yield export


@contextmanager
def _confined_connection(paths: Sequence[str]) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB that may read these files and nothing else."""
    conn = duckdb.connect(":memory:")
    try:
        confine(conn, paths)
        yield conn
    finally:
        conn.close()


def confine(
    conn: duckdb.DuckDBPyConnection, paths: Sequence[str], directories: Sequence[str] = ()
) -> None:
    """From now on this connection reads and writes only these files and directories
    (besides its own database): no other file, no extension, no network."""
    if paths:
        conn.execute("SET allowed_paths = ?", [list(paths)])
    if directories:
        conn.execute("SET allowed_directories = ?", [list(directories)])
    conn.execute("SET enable_external_access = false")


def _check_file(
    conn: duckdb.DuckDBPyConnection,
    export: Export,
    name: str,
    expected: Sequence[tuple[str, str]],
) -> None:
    path = export.directory / f"{name}.parquet"
    bind_variables(conn, {"exported_file": export.files[name]})
    try:
        found = conn.execute(
            "SELECT column_name, column_type FROM"
            " (DESCRIBE SELECT * FROM read_parquet(getvariable('exported_file')))"
        ).fetchall()
        rows = conn.execute(
            "SELECT count(*) FROM read_parquet(getvariable('exported_file'))"
        ).fetchall()[0][0]
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0][:120]
        raise UserError(f"{path} is not a readable Parquet file ({first}): export again") from None
    if [tuple(c) for c in found] != [tuple(c) for c in expected]:
        extra = sorted({c for c, _ in found} - {c for c, _ in expected})
        missing = sorted({c for c, _ in expected} - {c for c, _ in found})
        differ = (
            ", ".join([*(f"+{c}" for c in extra[:3]), *(f"-{c}" for c in missing[:3])])
            or "the column types or their order"
        )
        raise UserError(
            f"{path} does not have the columns of {name} ({differ}): export with the same"
            " version of the code"
        )
    if rows != export.rows[name]:
        raise UserError(f"{path} holds {rows} rows, the manifest says {export.rows[name]}")


def writable_paths(conn: duckdb.DuckDBPyConnection, location: WarehouseLocation) -> list[str]:
    """The directories the warehouse writes besides its own file: a lake's Parquet files."""
    if not location.is_lake:
        return []
    if location.on_object_store:
        return [location.data_path.rstrip("/") + "/"]
    if location.data_path:
        return [str(Path(location.data_path).resolve()) + "/"]
    found = conn.execute(
        f"SELECT value FROM {LAKE_METADATA}.ducklake_metadata WHERE key = 'data_path'"
    ).fetchall()
    return [found[0][0]] if found and found[0][0] else []


def import_warehouse(
    conn: duckdb.DuckDBPyConnection,
    export: Export,
    contents: WarehouseContents,
    writable: Sequence[str] = (),
) -> dict[str, int]:
    """Load a checked export into this warehouse, which must hold nothing yet: the
    tables, the code's views, then the privacy and accounting checks, in one
    transaction. `writable` are the directories the warehouse itself writes besides its
    file (a lake's data path); nothing else is reachable while the import runs."""
    taken = [
        f"{schema}.{name}"
        for schema, name in conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_catalog = current_database() AND list_contains(?, table_schema)"
            " ORDER BY ALL",
            [list(SCHEMAS)],
        ).fetchall()
    ]
    if taken:
        raise UserError(
            f"the warehouse already holds {', '.join(taken[:3])}: import into an empty one"
        )
    temp = conn.execute("SELECT current_setting('temp_directory')").fetchall()[0][0]
    confine(conn, list(export.files.values()), [*writable, *([temp] if temp else [])])
    conn.execute("BEGIN TRANSACTION")
    try:
        for schema in sorted({name.split(".")[0] for name in export.rows}):
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(schema)}")
        for name in sorted(export.rows):
            bind_variables(conn, {"exported_file": export.files[name]})
            conn.execute(
                f"CREATE TABLE {qualified_name(name)} AS"
                " SELECT * FROM read_parquet(getvariable('exported_file'))"
            )
        _create_views(conn, contents.views)
        _audit(conn, export)
        conn.execute("COMMIT")
    except duckdb.Error as exc:
        conn.execute("ROLLBACK")
        first = str(exc).splitlines()[0][:150]
        raise UserError(f"the import failed and wrote nothing ({first})") from None
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return export.rows


def _create_views(conn: duckdb.DuckDBPyConnection, views: Mapping[str, SqlFragment]) -> None:
    """The code's views, each after the views its SQL names (a view over a view)."""
    created: set[str] = set()
    while len(created) < len(views):
        ready = [
            name
            for name, sql in views.items()
            if name not in created
            and all(other in created for other in views if other != name and other in sql)
        ]
        if not ready:
            raise ValueError(f"the views read each other in a circle: {sorted(views)}")
        for name in sorted(ready):
            conn.execute(f"CREATE VIEW {qualified_name(name)} AS {views[name]}")
            created.add(name)


def _audit(conn: duckdb.DuckDBPyConnection, export: Export) -> None:
    """The checks whose failure would block a step, on what was imported: row counts,
    no personal data in an analyst-facing table, and the record accounting."""
    for name, rows in export.rows.items():
        loaded = conn.execute(f"SELECT count(*) FROM {qualified_name(name)}").fetchall()[0][0]
        if loaded != rows:
            raise UserError(f"{name}: {loaded} rows read, the export says {rows}")
    analyst_facing = conn.execute(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables"
        " WHERE table_catalog = current_database() AND list_contains(?, table_schema)"
        " ORDER BY 1",
        [list(ANALYST_SCHEMAS)],
    ).fetchall()
    for (name,) in analyst_facing:
        key = dg.AssetKey(name.split("."))
        result = checks.no_pii_columns(conn, key, name)
        if not result.passed:
            found = {k: v.value for k, v in result.metadata.items()}
            raise UserError(
                f"{name} holds personal data ({found}): the import is refused; export from a"
                " warehouse built by this code"
            )
    if "etl.record_accounting" in export.rows:
        broken = conn.execute(
            "SELECT count(*) FROM etl.record_accounting"
            " WHERE rows_read <> rows_loaded + rows_rejected + rows_merged"
        ).fetchall()[0][0]
        if broken:
            raise UserError(
                f"etl.record_accounting: {broken} rows where records read differ from loaded"
                " + rejected + merged: the import is refused"
            )
