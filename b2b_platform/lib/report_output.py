"""Reports as people read them: markdown previews, CSV files and one formatted workbook.

Number formats follow the column names of DESIGN 7: money is DECIMAL(18,2),
`*_pct` is in percentage points (12.5 = 12.5%), `share_*` and `*_rate` are fractions.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import xlsxwriter

# Report tables in reading order, with the order their rows are read in.
REPORT_ORDER: dict[str, str] = {
    "monthly_sales": "month",
    "top_devices": "rank",
    "top_products_by_country": "country_rank, product_rank NULLS LAST",
    "lead_conversion": "campaign, channel",
}
WORKBOOK_NAME = "b2b_reports.xlsx"


@dataclass(frozen=True)
class Report:
    name: str
    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]


def read_report(conn: duckdb.DuckDBPyConnection, name: str) -> Report:
    relation = conn.sql(f"SELECT * FROM reports.{name} ORDER BY {REPORT_ORDER[name]}")
    return Report(name, relation.columns, [str(t) for t in relation.types], relation.fetchall())


def _kind(column: str, dtype: str) -> str:
    if column.endswith("_pct"):
        return "points"
    if column.startswith("share_") or column.endswith("_rate"):
        return "fraction"
    if dtype.startswith("DECIMAL"):
        return "money"
    if dtype in {"BIGINT", "INTEGER", "HUGEINT", "SMALLINT", "UBIGINT"}:
        return "integer"
    if dtype == "DATE":
        return "date"
    return "text"


def display_value(value: Any, kind: str) -> str:
    """A cell as a person reads it: thousands separators, cents, percentages."""
    if value is None:
        return ""
    if kind == "points":
        return f"{value:,.2f}%"
    if kind == "fraction":
        return f"{value * 100:,.1f}%"
    if kind == "money":
        return f"{value:,.2f}"
    if kind == "integer" and isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def display_rows(report: Report) -> tuple[list[str], list[bool]]:
    kinds = [_kind(c, t) for c, t in zip(report.columns, report.types, strict=True)]
    right = [k in {"points", "fraction", "money", "integer"} for k in kinds]
    return kinds, right


def text_table(report: Report) -> str:
    """An aligned plain-text table for the terminal."""
    kinds, right = display_rows(report)
    cells = [[display_value(v, k) for v, k in zip(row, kinds, strict=True)] for row in report.rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(report.columns)]

    def line(values: Sequence[str]) -> str:
        return (
            "  "
            + "  ".join(
                v.rjust(w) if r else v.ljust(w)
                for v, w, r in zip(values, widths, right, strict=True)
            ).rstrip()
        )

    rule = "  " + "  ".join("-" * w for w in widths)
    return "\n".join([line(report.columns), rule, *(line(r) for r in cells)])


def markdown_table(report: Report, limit: int = 25) -> str:
    """The first rows as a markdown table, for the materialization's preview in the UI."""
    kinds, right = display_rows(report)
    head = "| " + " | ".join(report.columns) + " |"
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


def write_csv(conn: duckdb.DuckDBPyConnection, name: str, directory: Path) -> Path:
    """reports.<name> as <directory>/<name>.csv, replaced atomically."""
    path = directory / f"{name}.csv"
    partial = path.with_suffix(".csv.part")
    target = str(partial).replace("'", "''")  # a quote in the report directory's name
    conn.execute(
        f"COPY (SELECT * FROM reports.{name} ORDER BY {REPORT_ORDER[name]})"
        f" TO '{target}' (HEADER, DELIMITER ',')"
    )
    os.replace(partial, path)
    return path


def write_workbook(reports: Sequence[Report], path: Path, title_note: str) -> Path:
    """One sheet per report: bold frozen header, number formats, column widths, and a
    column chart of monthly revenue on the monthly_sales sheet. Replaced atomically."""
    partial = path.with_name(path.name + ".part")
    workbook = xlsxwriter.Workbook(str(partial), {"remove_timezone": True})
    workbook.set_properties({"title": "B2B platform reports", "comments": title_note})
    header = workbook.add_format(
        {"bold": True, "bg_color": "#1F4E78", "font_color": "#FFFFFF", "border": 1,
         "text_wrap": True, "valign": "top"}
    )  # fmt: skip
    formats = {
        "money": workbook.add_format({"num_format": "#,##0.00"}),
        "integer": workbook.add_format({"num_format": "#,##0"}),
        "points": workbook.add_format({"num_format": '0.00"%"'}),
        "fraction": workbook.add_format({"num_format": "0.0%"}),
        "date": workbook.add_format({"num_format": "yyyy-mm-dd"}),
        "text": None,
    }
    for report in reports:
        sheet = workbook.add_worksheet(report.name[:31])
        kinds, _ = display_rows(report)
        sheet.write_row(0, 0, report.columns, header)
        sheet.freeze_panes(1, 0)
        for col, (column, kind) in enumerate(zip(report.columns, kinds, strict=True)):
            values = [row[col] for row in report.rows]
            width = max([len(column) + 2, *(len(display_value(v, kind)) + 2 for v in values)])
            sheet.set_column(col, col, min(width, 60), formats[kind])
            for row_index, value in enumerate(values, start=1):
                _write_cell(sheet, row_index, col, value, formats[kind])
        if report.rows:
            sheet.autofilter(0, 0, len(report.rows), len(report.columns) - 1)
        if report.name == "monthly_sales" and report.rows:
            _revenue_chart(workbook, sheet, report)
    workbook.close()
    os.replace(partial, path)
    return path


def _write_cell(sheet: Any, row: int, col: int, value: Any, fmt: Any) -> None:
    if value is None:
        sheet.write_blank(row, col, None, fmt)
    elif isinstance(value, decimal.Decimal):
        sheet.write_number(row, col, float(value), fmt)
    elif isinstance(value, dt.datetime | dt.date):
        sheet.write_datetime(row, col, value, fmt)
    elif isinstance(value, bool):
        sheet.write_boolean(row, col, value, fmt)
    else:
        sheet.write(row, col, value, fmt)


def _revenue_chart(workbook: Any, sheet: Any, report: Report) -> None:
    month_col = report.columns.index("month")
    revenue_col = report.columns.index("revenue")
    last = len(report.rows)
    chart = workbook.add_chart({"type": "column"})
    chart.add_series(
        {
            "name": "Revenue",
            "categories": [sheet.name, 1, month_col, last, month_col],
            "values": [sheet.name, 1, revenue_col, last, revenue_col],
            "fill": {"color": "#2E75B6"},
        }
    )
    chart.set_title({"name": "Monthly revenue (valid orders)"})
    chart.set_x_axis({"name": "Month", "num_format": "mmm yyyy", "date_axis": False})
    chart.set_y_axis({"name": "Revenue", "num_format": "#,##0"})
    chart.set_legend({"none": True})
    chart.set_size({"width": 760, "height": 360})
    sheet.insert_chart(1, len(report.columns) + 1, chart)
