"""Reports as people read them: markdown previews, CSV files and one formatted workbook.

Number formats follow the report columns' names: money is DECIMAL(18,2),
`*_pct` is in percentage points (12.5 = 12.5%), `share_*` and `*_rate` are fractions.

Exported files are safe to open in a spreadsheet program. No workbook cell is a
formula (text is written as text, whatever it starts with), and CSV text that starts
with = + - @ (after blanks) is prefixed with ' so it is not run (CSV injection). CSVs
are UTF-8 with a byte-order mark, ISO dates and raw numbers.
The files of one export replace the previous ones together (lib/report_directory.py).
"""

from __future__ import annotations

import codecs
import datetime as dt
import decimal
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import xlsxwriter

# Report tables in reading order, with the order their rows are read in.
REPORT_ORDER: dict[str, str] = {
    "monthly_sales": "month",
    "top_devices": "rank",
    "top_products_by_country": "country_rank, product_rank NULLS LAST",
    "lead_conversion": "campaign, channel",
}
WORKBOOK_NAME = "b2b_reports.xlsx"
EXPORT_FILES = frozenset({*(f"{name}.csv" for name in REPORT_ORDER), WORKBOOK_NAME})


@dataclass(frozen=True)
class Report:
    name: str
    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]


def read_report(conn: duckdb.DuckDBPyConnection, name: str) -> Report:
    relation = conn.sql(f"SELECT * FROM reports.{name} ORDER BY {REPORT_ORDER[name]}")
    return Report(name, relation.columns, [str(t) for t in relation.types], relation.fetchall())


CURRENCY = "ARS"  # the platform's prices and revenue, as stored at the source
# uap-core's device family for Chrome's reduced Android user agent ("Linux; Android 10;
# K"), which hides the model: people read what it means, the tables keep the family
HIDDEN_ANDROID_MODEL = {"K": "Android (model hidden)"}
INTEGER_TYPES = {"BIGINT", "INTEGER", "HUGEINT", "SMALLINT", "UBIGINT"}


def _kind(column: str, dtype: str) -> str:
    if column.endswith("_pct"):
        return "points"
    if column.startswith("share_") or column.endswith("_rate"):
        return "fraction"
    if dtype.startswith("DECIMAL"):
        return "money"
    if column.endswith("_id") and dtype in INTEGER_TYPES:
        return "id"  # a name, not a quantity: no thousands separators
    if dtype in INTEGER_TYPES:
        return "integer"
    if dtype == "DOUBLE":
        return "number"
    if dtype == "DATE" and column == "month":
        return "month"
    if dtype == "DATE":
        return "date"
    if column == "device":
        return "device"
    return "text"


def display_value(value: Any, kind: str) -> str:
    """A cell as a person reads it: thousands separators, cents, one percentage
    convention (12.5%, whether stored as points or as a fraction), months as Dec 2025,
    identifiers as they are, and devices by what they are."""
    if value is None:
        return ""
    if kind == "points":
        return f"{value:,.1f}%"
    if kind == "fraction":
        return f"{value * 100:,.1f}%"
    if kind == "money":
        return f"{value:,.2f}"
    if kind == "integer" and isinstance(value, int):
        return f"{value:,}"
    if kind == "number" and isinstance(value, float):
        return f"{value:,.1f}"
    if kind == "month" and isinstance(value, dt.date):
        return value.strftime("%b %Y")
    if kind == "device":
        return HIDDEN_ANDROID_MODEL.get(str(value), str(value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def display_header(column: str, kind: str) -> str:
    """A column's heading; money says its currency once, in the heading."""
    return f"{column} ({CURRENCY})" if kind == "money" else column


def display_rows(report: Report) -> tuple[list[str], list[bool]]:
    kinds = [_kind(c, t) for c, t in zip(report.columns, report.types, strict=True)]
    right = [k in {"points", "fraction", "money", "integer", "id", "number"} for k in kinds]
    return kinds, right


def text_table(report: Report) -> str:
    """An aligned plain-text table for the terminal."""
    kinds, right = display_rows(report)
    cells = [[display_value(v, k) for v, k in zip(row, kinds, strict=True)] for row in report.rows]
    headers = [display_header(c, k) for c, k in zip(report.columns, kinds, strict=True)]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return (
            "  "
            + "  ".join(
                v.rjust(w) if r else v.ljust(w)
                for v, w, r in zip(values, widths, right, strict=True)
            ).rstrip()
        )

    rule = "  " + "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in cells)])


def markdown_table(report: Report, limit: int = 25) -> str:
    """The first rows as a markdown table, for the materialization's preview in the UI."""
    kinds, right = display_rows(report)
    headers = [display_header(c, k) for c, k in zip(report.columns, kinds, strict=True)]
    head = "| " + " | ".join(headers) + " |"
    align = "|" + "|".join("---:" if r else "---" for r in right) + "|"
    body = [
        "| "
        + " | ".join(
            display_value(v, k).replace("|", "\\|") for v, k in zip(row, kinds, strict=True)
        )
        + " |"
        for row in report.rows[:limit]
    ]
    more = [f"\n{len(report.rows) - limit} more rows"] if len(report.rows) > limit else []
    return "\n".join([head, align, *body, *more])


# ---------------------------------------------------------------- files


def write_csv(conn: duckdb.DuckDBPyConnection, name: str, directory: Path) -> Path:
    """reports.<name> as <directory>/<name>.csv: UTF-8 with a byte-order mark, ISO dates,
    raw numbers, and text a spreadsheet would run as a formula prefixed with '."""
    path = directory / f"{name}.csv"
    partial = path.with_name(path.name + ".part")
    target = str(partial).replace("'", "''")  # a quote in the report directory's name
    conn.execute(f"COPY ({csv_query(conn, name)}) TO '{target}' (HEADER, DELIMITER ',')")
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
    described = conn.execute(f"DESCRIBE SELECT * FROM reports.{name}").fetchall()
    columns = ", ".join(_csv_column(str(column), str(dtype)) for column, dtype, *_ in described)
    # Numbered before the prefix is added, so rows keep the workbook's order.
    return (
        f"SELECT {columns} FROM (SELECT *, row_number() OVER (ORDER BY {REPORT_ORDER[name]})"
        f" AS {_EXPORT_ROW} FROM reports.{name}) ORDER BY {_EXPORT_ROW}"
    )


def _csv_column(column: str, dtype: str) -> str:
    quoted = '"' + column.replace('"', '""') + '"'
    if not dtype.startswith(_TEXT_TYPES):
        return quoted
    # A spreadsheet runs a cell starting with = + - @ (after blanks) as a formula:
    # a leading ' is the usual way to make it plain text (OWASP, CSV injection).
    return (
        f"CASE WHEN regexp_matches({quoted}, '^\\s*[=+\\-@]') THEN '''' || {quoted}"
        f" ELSE {quoted} END AS {quoted}"
    )


def export_files(
    conn: duckdb.DuckDBPyConnection, reports: Sequence[Report], directory: Path, title_note: str
) -> list[Path]:
    """Every report's CSV, then the workbook, written into `directory` (a staging one)."""
    csv_files = [write_csv(conn, report.name, directory) for report in reports]
    return [*csv_files, write_workbook(reports, directory / WORKBOOK_NAME, title_note)]


def missing_files(directory: Path) -> list[str]:
    """What a complete export in `directory` lacks: a report's CSV or its sheet."""
    csv_files = [directory / f"{name}.csv" for name in REPORT_ORDER]
    missing = [p.name for p in csv_files if not p.is_file() or p.stat().st_size == 0]
    workbook = directory / WORKBOOK_NAME
    if not workbook.is_file():
        return [*missing, WORKBOOK_NAME]
    book = openpyxl.load_workbook(workbook, read_only=True)
    try:
        sheets = set(book.sheetnames)
    finally:
        book.close()
    return missing + [f"{WORKBOOK_NAME}[{n}]" for n in REPORT_ORDER if n[:31] not in sheets]


# Text stays text: by default xlsxwriter turns "=1+1" into a formula and "http://..."
# into a link (and, with strings_to_numbers, "12" into a number). NaN and infinity
# become #NUM! errors instead of failing the export.
WORKBOOK_OPTIONS = {
    "remove_timezone": True,
    "strings_to_formulas": False,
    "strings_to_urls": False,
    "strings_to_numbers": False,
    "nan_inf_to_errors": True,
}


def write_workbook(reports: Sequence[Report], path: Path, title_note: str) -> Path:
    """One sheet per report: bold frozen header, number formats, column widths, and a
    native chart that fits the report. No cell is a formula."""
    workbook = xlsxwriter.Workbook(str(path), WORKBOOK_OPTIONS)
    workbook.set_properties({"title": "B2B platform reports", "comments": title_note})
    header = workbook.add_format(
        {"bold": True, "bg_color": "#1F4E78", "font_color": "#FFFFFF", "border": 1,
         "text_wrap": True, "valign": "top"}
    )  # fmt: skip
    formats = {
        "money": workbook.add_format({"num_format": f'"{CURRENCY} "#,##0.00'}),
        "integer": workbook.add_format({"num_format": "#,##0"}),
        "number": workbook.add_format({"num_format": "#,##0.0"}),
        "id": workbook.add_format({"num_format": "0"}),
        "points": workbook.add_format({"num_format": '0.0"%"'}),
        "fraction": workbook.add_format({"num_format": "0.0%"}),
        "date": workbook.add_format({"num_format": "yyyy-mm-dd"}),
        "month": workbook.add_format({"num_format": "mmm yyyy"}),
        "device": None,
        "text": None,
    }
    for report in reports:
        sheet = workbook.add_worksheet(report.name[:31])
        kinds, _ = display_rows(report)
        for col, column in enumerate(report.columns):
            sheet.write_string(0, col, column, header)
        sheet.freeze_panes(1, 0)
        for col, (column, kind) in enumerate(zip(report.columns, kinds, strict=True)):
            values = [row[col] for row in report.rows]
            width = max([len(column) + 2, *(len(display_value(v, kind)) + 6 for v in values)])
            sheet.set_column(col, col, min(width, 60), formats[kind])
            for row_index, value in enumerate(values, start=1):
                shown = display_value(value, kind) if kind == "device" else value
                _write_cell(sheet, row_index, col, shown, formats[kind])
        if report.rows:
            sheet.autofilter(0, 0, len(report.rows), len(report.columns) - 1)
        _report_chart(workbook, sheet, report)
    workbook.close()
    return path


def _write_cell(sheet: Any, row: int, col: int, value: Any, fmt: Any) -> None:
    # One explicit writer per type: the generic write() guesses from what text looks like.
    if value is None:
        sheet.write_blank(row, col, None, fmt)
    elif isinstance(value, bool):  # before numbers: a bool is an int
        sheet.write_boolean(row, col, value, fmt)
    elif isinstance(value, decimal.Decimal | int | float):
        sheet.write_number(row, col, float(value), fmt)
    elif isinstance(value, dt.datetime | dt.date | dt.time | dt.timedelta):
        sheet.write_datetime(row, col, value, fmt)
    else:
        sheet.write_string(row, col, str(value), fmt)


@dataclass(frozen=True)
class ChartSpec:
    kind: str  # xlsxwriter chart type
    category: str  # the column along the axis
    value: str  # the column the bars measure
    title: str
    axis: str
    num_format: str


# One native chart per report sheet, the one that fits it.
CHARTS: dict[str, ChartSpec] = {
    "monthly_sales": ChartSpec("column", "month", "revenue", "Monthly revenue (valid orders)",
                               f"Revenue ({CURRENCY}, millions)", '#,##0,,"M"'),
    "top_devices": ChartSpec("bar", "device", "users", "Devices of B2B clients, by users",
                             "Users (a user with two devices counts for both)", "#,##0"),
    "top_products_by_country": ChartSpec(
        "bar", "product_name", "units", "Most popular products in the top login countries",
        "Units sold", "#,##0"),
    "lead_conversion": ChartSpec("bar", "campaign", "conversion_rate", "Conversion by campaign",
                                 "Leads whose company then bought", "0%"),
}  # fmt: skip


def _report_chart(workbook: Any, sheet: Any, report: Report) -> None:
    spec = CHARTS.get(report.name)
    if spec is None or not report.rows or not {spec.category, spec.value} <= set(report.columns):
        return
    category, value = report.columns.index(spec.category), report.columns.index(spec.value)
    last = len(report.rows)
    chart = workbook.add_chart({"type": spec.kind})
    chart.add_series(
        {
            "name": spec.value,
            "categories": [sheet.name, 1, category, last, category],
            "values": [sheet.name, 1, value, last, value],
            "fill": {"color": "#2E75B6"},
        }
    )
    chart.set_title({"name": spec.title})
    if spec.kind == "bar":  # horizontal bars: the first row on top, as in the table
        chart.set_y_axis({"reverse": True})
        chart.set_x_axis({"name": spec.axis, "num_format": spec.num_format})
    else:
        chart.set_x_axis({"num_format": "mmm yyyy", "date_axis": False})
        chart.set_y_axis({"name": spec.axis, "num_format": spec.num_format})
    chart.set_legend({"none": True})
    chart.set_size({"width": 760, "height": max(360, 24 * last + 120)})
    sheet.insert_chart(1, len(report.columns) + 1, chart)
