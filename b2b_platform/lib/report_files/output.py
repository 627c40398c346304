"""Reports as people read them: what each column is (money, month, id, percentage,
device), how a value reads (Dec 2025, 1,234.50, 12.3%, Android (model hidden)), totals
where sums mean something, and the terminal and markdown tables built from them.

Number kinds follow the report columns' names: money is DECIMAL(18,2), `*_pct` is in
percentage points (12.5 = 12.5%), `share_*` and `*_rate` are fractions. The files are
written by report_csv.py, report_workbook.py and report_html.py, one export at a time
(report_export.py), swapped in together (report_directory.py).
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
from tabulate import tabulate

from b2b_platform.lib.literal_text import markdown_text, terminal_text
from b2b_platform.lib.warehouse.sql import quote_identifier

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
    relation = conn.sql(
        f"SELECT * FROM reports.{quote_identifier(name)} ORDER BY {REPORT_ORDER[name]}"
    )
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


# Words a heading spells otherwise than its column name does.
HEADER_WORDS = {"avg": "Avg", "id": "ID", "sku": "SKU", "pct": ""}
HEADERS = {  # whole headings no rule gives
    "is_partial": "Partial month",
    "login_users": "Users who logged in",
    "revenue_change_pct": "Revenue change",
}


def human_header(column: str, kind: str) -> str:
    """A column's heading in words, for a reader of the workbook or the page:
    `avg_order_value` reads `Avg order value (ARS)`, `product_id` `Product ID`."""
    words = [HEADER_WORDS.get(word, word) for word in column.split("_")]
    text = HEADERS.get(column) or " ".join(word for word in words if word)
    text = text[:1].upper() + text[1:]
    return f"{text} ({CURRENCY})" if kind == "money" else text


def display_rows(report: Report) -> tuple[list[str], list[bool]]:
    kinds = [_kind(c, t) for c, t in zip(report.columns, report.types, strict=True)]
    right = [k in {"points", "fraction", "money", "integer", "id", "number"} for k in kinds]
    return kinds, right


# Totals where adding up means something: sales over the window, leads (a lead belongs
# to one campaign) and attributed revenue (an order is credited to one campaign). Ranks,
# shares, rates and companies (one company can answer two campaigns) do not add up.
TOTALS: dict[str, tuple[str, ...]] = {
    "monthly_sales": ("orders", "units", "revenue"),
    "lead_conversion": ("leads", "attributed_revenue"),
}


def report_totals(report: Report) -> tuple[Any, ...] | None:
    """The report's total row (its first column says "Total"), or None."""
    summed = TOTALS.get(report.name)
    if not summed or len(report.rows) < 2:  # a total of one row says nothing more
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
    a wider table is printed in parts, each repeating the columns that name the row.
    Names from the data print as text: their control characters show as escapes."""
    headers, cells, right = _display(report)
    headers = [terminal_text(h) for h in headers]
    cells = [[terminal_text(c) for c in row] for row in cells]
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
    """The first rows (and the total) as a markdown table, for the UI. Every heading and
    cell reads as written: a name from the data is never a link, an image or markup."""
    headers, cells, right = _display(report, totals)
    rows = len(report.rows)
    shown = cells[: min(limit, rows)] + cells[rows:]  # the first rows, then the total
    table = tabulate(
        [[markdown_text(c) for c in row] for row in shown],
        headers=[markdown_text(h) for h in headers],
        tablefmt="pipe",
        colalign=["right" if r else "left" for r in right],
        disable_numparse=True,
    )
    more = rows - limit
    return table + (f"\n\n{more} more rows" if more > 0 else "")


# The columns of the short preview on the asset page: the UI shows markdown under 1,000
# characters in place and hides anything longer behind a click.
PREVIEW_COLUMNS: dict[str, tuple[str, ...]] = {
    "monthly_sales": ("month", "orders", "revenue", "revenue_change_pct"),
    "top_devices": ("rank", "device", "users", "share_of_users"),
    "top_products_by_country": ("country_code", "product_rank", "product_name", "units"),
    "lead_conversion": ("campaign", "leads", "new_conversion_rate", "attributed_revenue"),
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


FORMATS = ("table", "csv", "json", "markdown")
_FORMULA_START = re.compile(r"^\s*[=+\-@]")


def report_as(report: Report, fmt: str) -> str:
    """A report for the terminal (`table`, `markdown`, as people read it) or for programs
    (`csv`, `json`: raw numbers, ISO dates, text that a spreadsheet would run as a formula
    prefixed with ' in CSV, as in the exported files)."""
    if fmt == "table":
        return text_table(report) if report.rows else "  (no rows)"
    if fmt == "markdown":
        return markdown_table(report, limit=len(report.rows))
    if fmt == "json":
        rows = [
            dict(zip(report.columns, map(_json_value, row), strict=True)) for row in report.rows
        ]
        return json.dumps({"report": report.name, "rows": rows}, ensure_ascii=False, indent=1)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(report.columns)
        writer.writerows([_csv_value(v) for v in row] for row in report.rows)
        return out.getvalue().rstrip("\n")
    raise ValueError(f"unknown format {fmt!r}")


def _json_value(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def _csv_value(value: Any) -> Any:
    if isinstance(value, str) and _FORMULA_START.match(value):
        return "'" + value
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value
