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
import xlsxwriter
from tabulate import tabulate

# Report tables in reading order, with the order their rows are read in.
REPORT_ORDER: dict[str, str] = {
    "monthly_sales": "month",
    "top_devices": "rank",
    "top_products_by_country": "country_rank, product_rank NULLS LAST",
    "lead_conversion": "campaign, channel",
}
WORKBOOK_NAME = "b2b_reports.xlsx"
HTML_NAME = "b2b_reports.html"
EXPORT_FILES = frozenset({*(f"{name}.csv" for name in REPORT_ORDER), WORKBOOK_NAME, HTML_NAME})


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


# Totals where adding up means something: sales over the window, and leads (a lead
# belongs to one campaign). Ranks, shares, rates and companies (one company can answer
# two campaigns) do not add up, so those reports have no total.
TOTALS: dict[str, tuple[str, ...]] = {
    "monthly_sales": ("orders", "units", "revenue"),
    "lead_conversion": ("leads",),
}


def report_totals(report: Report) -> tuple[Any, ...] | None:
    """The report's total row (its first column says "Total"), or None."""
    summed = TOTALS.get(report.name)
    if not summed or not report.rows:
        return None
    totals: dict[str, Any] = {
        c: sum(row[i] for row in report.rows if row[i] is not None)
        for i, c in enumerate(report.columns)
        if c in summed
    }
    if report.name == "monthly_sales" and totals.get("orders"):
        totals["avg_order_value"] = round(totals["revenue"] / totals["orders"], 2)
    first = f"Total ({len(report.rows)} months)" if report.name == "monthly_sales" else "Total"
    return tuple(first if i == 0 else totals.get(c) for i, c in enumerate(report.columns))


# Columns repeated at the left of every part of a table too wide for the terminal, so
# each part still says which row it is (the first column when not listed).
ROW_LABELS: dict[str, tuple[str, ...]] = {
    "top_products_by_country": ("country_code", "product_rank"),
}
TERMINAL_WIDTH = 120


def _display(report: Report, totals: bool = True) -> tuple[list[str], list[list[str]], list[bool]]:
    kinds, right = display_rows(report)
    headers = [display_header(c, k) for c, k in zip(report.columns, kinds, strict=True)]
    rows = list(report.rows)
    if totals and (total := report_totals(report)) is not None:
        rows.append(total)
    cells = [[display_value(v, k) for v, k in zip(row, kinds, strict=True)] for row in rows]
    return headers, cells, right


def column_parts(widths: Sequence[int], labels: Sequence[int], width: int) -> list[list[int]]:
    """Columns split into parts that each fit `width` characters (two spaces of margin
    and two between columns), every part led by the row-label columns. No column is
    dropped: one wider than the terminal gets a part of its own."""
    parts: list[list[int]] = []
    used = 2 + sum(widths[i] + 2 for i in labels)
    current: list[int] = []
    for i in (i for i in range(len(widths)) if i not in labels):
        if current and used + widths[i] > width:
            parts.append(current)
            current, used = [], 2 + sum(widths[i] + 2 for i in labels)
        current.append(i)
        used += widths[i] + 2
    parts.append(current)
    return [[*labels, *part] for part in parts]


def text_table(report: Report, width: int = TERMINAL_WIDTH) -> str:
    """An aligned plain-text table for the terminal, at most `width` characters wide:
    a wider table is printed in parts, each repeating the columns that name the row."""
    headers, cells, right = _display(report)
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    labels = [report.columns.index(c) for c in ROW_LABELS.get(report.name, report.columns[:1])]
    parts = column_parts(widths, labels, width)
    total_row = len(report.rows) if len(cells) > len(report.rows) else None

    def line(values: Sequence[str], columns: Sequence[int]) -> str:
        return "  " + "  ".join(
            values[i].rjust(widths[i]) if right[i] else values[i].ljust(widths[i])
            for i in columns
        ).rstrip()  # fmt: skip

    blocks = []
    for number, columns in enumerate(parts, start=1):
        rule = "  " + "  ".join("-" * widths[i] for i in columns)
        lines = [line(headers, columns), rule]
        for index, row in enumerate(cells):
            lines += [rule] if index == total_row else []
            lines.append(line(row, columns))
        if len(parts) > 1:
            lines.insert(0, f"  (part {number} of {len(parts)}: the table is wider than {width}"
                            " characters)")  # fmt: skip
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def markdown_table(report: Report, limit: int = 25, totals: bool = True) -> str:
    """The first rows (and the total) as a markdown table, for the UI."""
    headers, cells, right = _display(report, totals)
    shown = cells[:limit] + (cells[len(report.rows) :] if len(report.rows) > limit else [])
    table = tabulate(
        [[c.replace("|", "\\|") for c in row] for row in shown],
        headers=headers,
        tablefmt="pipe",
        colalign=["right" if r else "left" for r in right],
        disable_numparse=True,
    )
    more = len(report.rows) - limit
    return table + (f"\n\n{more} more rows" if more > 0 else "")


# The columns of the short preview on the asset page: the UI shows markdown under 1,000
# characters in place and hides anything longer behind a click.
PREVIEW_COLUMNS: dict[str, tuple[str, ...]] = {
    "monthly_sales": ("month", "orders", "revenue", "revenue_change_pct"),
    "top_devices": ("rank", "device", "users", "share_of_users"),
    "top_products_by_country": ("country_code", "product_rank", "product_name", "units"),
    "lead_conversion": ("campaign", "leads", "conversion_rate"),
}
INLINE_MARKDOWN = 1000


def short_preview(report: Report) -> str:
    """A markdown preview the UI shows without a click: the report's key columns and as
    many rows as fit in 1,000 characters (the rest is in `all_rows`)."""
    keep = [c for c in PREVIEW_COLUMNS.get(report.name, report.columns[:4]) if c in report.columns]
    indexes = [report.columns.index(c) for c in keep]
    narrow = Report(
        report.name,
        keep,
        [report.types[i] for i in indexes],
        [tuple(row[i] for i in indexes) for row in report.rows],
    )
    for limit in range(len(narrow.rows), -1, -1):
        text = markdown_table(narrow, limit=limit, totals=False)
        if len(text) < INLINE_MARKDOWN:
            return text
    return f"{len(report.rows)} rows: see all_rows"


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
    bold = {
        kind: workbook.add_format({"bold": True, "top": 2, **({"num_format": f.num_format}
                                   if f is not None else {})})
        for kind, f in formats.items()
    }  # fmt: skip
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
        if (totals := report_totals(report)) is not None:  # below the filter's range
            for col, (value, kind) in enumerate(zip(totals, kinds, strict=True)):
                _write_cell(sheet, len(report.rows) + 1, col, value, bold[kind])
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
