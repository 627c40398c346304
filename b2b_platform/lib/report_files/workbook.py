"""The reports as one formatted workbook: a sheet per report with number formats that
say what the numbers are, a total row where sums mean something, and a native chart.
No cell is a formula, whatever the text in it starts with."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xlsxwriter

from b2b_platform.lib.report_files.notes import (
    CONVERSION_AXIS,
    ReportContext,
    general_notes,
    report_notes,
)
from b2b_platform.lib.report_files.output import (
    CURRENCY,
    Report,
    display_rows,
    display_value,
    human_header,
    report_totals,
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


def write_workbook(reports: Sequence[Report], path: Path, context: ReportContext) -> Path:
    """A first sheet, About, that says what the reports are as of and what to know before
    reading them; then one sheet per report: bold frozen header, number formats, column
    widths, and a native chart that fits the report. No cell is a formula."""
    workbook = xlsxwriter.Workbook(str(path), WORKBOOK_OPTIONS)
    workbook.set_properties(
        {"title": "B2B platform reports", "comments": f"As of {context.as_of}: {context.window}"}
    )
    _about_sheet(workbook, reports, context)
    header = workbook.add_format(
        {"bold": True, "bg_color": "#1F4E78", "font_color": "#FFFFFF", "border": 1,
         "text_wrap": True, "valign": "top"}
    )  # fmt: skip
    formats = {
        "money": workbook.add_format({"num_format": f'"{CURRENCY} "#,##0.00'}),
        "integer": workbook.add_format({"num_format": "#,##0"}),
        "number": workbook.add_format({"num_format": "#,##0.0"}),
        "id": workbook.add_format({"num_format": "0"}),
        # one percentage convention: points (12.5) are written as the fraction they are
        "points": workbook.add_format({"num_format": "0.0%"}),
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
        headers = [human_header(c, k) for c, k in zip(report.columns, kinds, strict=True)]
        for col, text in enumerate(headers):
            sheet.write_string(0, col, text, header)
        sheet.freeze_panes(1, 0)
        for col, (text, kind) in enumerate(zip(headers, kinds, strict=True)):
            values = [row[col] for row in report.rows]
            width = max([len(text) + 2, *(len(display_value(v, kind)) + 6 for v in values)])
            sheet.set_column(col, col, min(width, 60), formats[kind])
            for row_index, value in enumerate(values, start=1):
                _write_cell(sheet, row_index, col, _cell_value(value, kind), formats[kind])
        if report.rows:
            sheet.autofilter(0, 0, len(report.rows), len(report.columns) - 1)
        if (totals := report_totals(report)) is not None:  # below the filter's range
            for col, (value, kind) in enumerate(zip(totals, kinds, strict=True)):
                _write_cell(sheet, len(report.rows) + 1, col, _cell_value(value, kind),
                            bold[kind])  # fmt: skip
        _report_chart(workbook, sheet, report)
    workbook.close()
    return path


def _about_sheet(workbook: Any, reports: Sequence[Report], context: ReportContext) -> None:
    """What a reader who receives only the workbook needs: as-of day, window, currency,
    how fresh each source is, and the notes the page shows."""
    sheet = workbook.add_worksheet("About")
    title = workbook.add_format({"bold": True, "font_size": 14})
    label = workbook.add_format({"bold": True, "valign": "top"})
    wrapped = workbook.add_format({"text_wrap": True, "valign": "top"})
    sheet.set_column(0, 0, 22)
    sheet.set_column(1, 1, 110, wrapped)
    sheet.write_string(0, 0, "B2B platform reports", title)

    def when(value: dt.datetime | None) -> str:
        return f"{value:%d %b %Y %H:%M}" if value else "never"

    rows: list[tuple[str, str]] = [
        ("As of", f"{context.as_of:%d %b %Y} (UTC)"),
        ("Window", context.window),
        ("Currency", f"{CURRENCY} (Argentine pesos), as stored at the source"),
        *(
            (f"Data: {source}", f"loaded {when(loaded)}"
             + (f", latest record {when(latest)}" if latest else ", no records yet"))
            for source, loaded, latest in context.freshness
        ),
        ("Written", f"{context.generated_at:%d %b %Y %H:%M} UTC"),
        *(("Note", note) for note in general_notes(context)),
        *(
            (f"{report.name}", note)
            for report in reports
            for note in report_notes(report, context)
        ),
    ]  # fmt: skip
    for index, (name, text) in enumerate(rows, start=2):
        sheet.write_string(index, 0, name, label)
        sheet.write_string(index, 1, text, wrapped)


def _cell_value(value: Any, kind: str) -> Any:
    """What a cell holds: a device as people read it, percentage points as a fraction."""
    if kind == "device":
        return display_value(value, kind)
    if kind == "points" and isinstance(value, decimal.Decimal | int | float):
        return float(value) / 100
    return value


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
        "bar", "product_name", "units", "Most popular products", "Units sold", "#,##0"),
    "lead_conversion": ChartSpec("bar", "campaign", "new_conversion_rate",
                                 "Conversion of new companies by campaign", CONVERSION_AXIS,
                                 "0%"),
}  # fmt: skip


def _report_chart(workbook: Any, sheet: Any, report: Report) -> None:
    """The report's chart beside its table; a report by country gets one per country,
    its products by name (one chart of every row would show a product three times and
    no country)."""
    spec = CHARTS.get(report.name)
    if spec is None or not report.rows or not {spec.category, spec.value} <= set(report.columns):
        return
    groups = _chart_groups(report, spec)
    smallest = 360 if len(groups) == 1 else 260  # charts of one country are shorter
    top = 1
    for title, first, last in groups:
        chart = _bar_chart(workbook, sheet, report, spec, first, last)
        chart.set_title({"name": title})
        height = max(smallest, 24 * (last - first + 1) + 120)
        chart.set_size({"width": 760, "height": height})
        sheet.insert_chart(top, len(report.columns) + 1, chart)
        top += height // 20 + 1  # rows are 20 pixels high


def _chart_groups(report: Report, spec: ChartSpec) -> list[tuple[str, int, int]]:
    """(title, first row, last row) of each chart: the whole table, or each country's
    rows (the report lists them together, by country rank)."""
    if "country_name" not in report.columns:
        return [(spec.title, 1, len(report.rows))]
    index = report.columns.index("country_name")
    groups: list[tuple[str, int, int]] = []
    for row_number, row in enumerate(report.rows, start=1):
        country = str(row[index])
        if groups and groups[-1][0] == country:
            groups[-1] = (country, groups[-1][1], row_number)
        else:
            groups.append((country, row_number, row_number))
    return [(f"{spec.title}: {country}", first, last) for country, first, last in groups]


def _bar_chart(
    workbook: Any, sheet: Any, report: Report, spec: ChartSpec, first: int, last: int
) -> Any:
    category, value = report.columns.index(spec.category), report.columns.index(spec.value)
    chart = workbook.add_chart({"type": spec.kind})
    chart.add_series(
        {
            "name": human_header(spec.value, "text"),
            "categories": [sheet.name, first, category, last, category],
            "values": [sheet.name, first, value, last, value],
            "fill": {"color": "#2E75B6"},
            "points": _partial_points(report)[first - 1 : last],
        }
    )
    if spec.kind == "bar":  # horizontal bars: the first row on top, as in the table
        chart.set_y_axis({"reverse": True})
        chart.set_x_axis({"name": spec.axis, "num_format": spec.num_format})
    else:
        chart.set_x_axis({"num_format": "mmm yyyy", "date_axis": False})
        chart.set_y_axis({"name": spec.axis, "num_format": spec.num_format})
    chart.set_legend({"none": True})
    return chart


def _partial_points(report: Report) -> list[dict[str, Any] | None]:
    """A lighter bar for each partial month (the month to date), as on the page."""
    if "is_partial" not in report.columns:
        return []
    index = report.columns.index("is_partial")
    return [{"fill": {"color": "#9DC3E6"}} if row[index] else None for row in report.rows]
