"""Each report as a CSV file for programs: UTF-8 with a byte-order mark (so spreadsheet
programs read accents), ISO dates, raw numbers, and text a spreadsheet would run as a
formula prefixed with ' (CSV injection)."""

from __future__ import annotations

import codecs
import shutil
from pathlib import Path

import duckdb

from b2b_platform.lib.report_files.output import REPORT_ORDER
from b2b_platform.lib.warehouse.sql import expression_list, quote_identifier


def write_csv(conn: duckdb.DuckDBPyConnection, name: str, directory: Path) -> Path:
    """reports.<name> as <directory>/<name>.csv: UTF-8 with a byte-order mark, ISO dates,
    raw numbers, and text a spreadsheet would run as a formula prefixed with '."""
    path = directory / f"{name}.csv"
    partial = path.with_name(path.name + ".part")
    conn.sql(csv_query(conn, name)).write_csv(str(partial), header=True, sep=",")
    # DuckDB cannot write a byte-order mark; without one spreadsheet programs read the
    # UTF-8 as a legacy code page ("LogÃ­stica"). Reports are small: one copy is cheap.
    with open(partial, "rb") as source, open(path, "wb") as sink:
        sink.write(codecs.BOM_UTF8)
        shutil.copyfileobj(source, sink)
    partial.unlink()
    return path


# Column types DuckDB writes as free text; numbers, dates and booleans cannot start a formula.
_TEXT_TYPES = ("VARCHAR", "JSON", "ENUM(")
_EXPORT_ROW = '"__export_row"'


def csv_query(conn: duckdb.DuckDBPyConnection, name: str) -> str:
    """The SELECT a report's CSV is written from: its rows in reading order, each text
    column formula-safe. Identifiers come from code and DESCRIBE, never from values."""
    report = quote_identifier(name)
    described = conn.execute(f"DESCRIBE SELECT * FROM reports.{report}").fetchall()
    columns = expression_list(
        _csv_column(str(column), str(dtype)) for column, dtype, *_ in described
    )
    # Numbered before the prefix is added, so rows keep the workbook's order.
    return (
        f"SELECT {columns} FROM (SELECT *, row_number() OVER (ORDER BY {REPORT_ORDER[name]})"
        f" AS {_EXPORT_ROW} FROM reports.{report}) ORDER BY {_EXPORT_ROW}"
    )


def _csv_column(column: str, dtype: str) -> str:
    quoted = quote_identifier(column)
    if not dtype.startswith(_TEXT_TYPES):
        return quoted
    # A spreadsheet runs a cell starting with = + - @ (after blanks) as a formula:
    # a leading ' is the usual way to make it plain text (OWASP, CSV injection).
    return (
        f"CASE WHEN regexp_matches({quoted}, '^\\s*[=+\\-@]') THEN '''' || {quoted}"
        f" ELSE {quoted} END AS {quoted}"
    )
