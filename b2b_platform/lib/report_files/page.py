"""The reports as one web page: b2b_reports.html, a chart and a table per report.

The charts are Plotly figures. plotly.py ships plotly.js inside its wheel, so the page
embeds the library itself and opens from disk with no network; a Content-Security-Policy
forbids every request the page could make, so a page that tried would show it as a
console error (the browser test fails on any). Figures are declared in Python: no
hand-written SVG or JavaScript. Plotly escapes `<` in the data it embeds, and table
cells are HTML-escaped, so a product name cannot close a tag or start a script. Inside a
chart Plotly reads labels as a little HTML of its own (links, styles): every label from
the data goes through plotly_text, so it shows as written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import plotly.graph_objects as go
from markupsafe import Markup
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from b2b_platform.lib.literal_text import plotly_text
from b2b_platform.lib.report_files.notes import (
    CONVERSION_AXIS,
    ReportContext,
    general_notes,
    report_notes,
)
from b2b_platform.lib.report_files.output import (
    CURRENCY,
    Report,
    display_header,
    display_rows,
    display_value,
    report_totals,
)

TITLES = {
    "monthly_sales": "Monthly sales",
    "top_devices": "Top 5 devices of B2B clients",
    "top_products_by_country": "Most popular products in the top login countries",
    "lead_conversion": "Lead conversion by campaign",
}
BLUE, LIGHT_BLUE, ORANGE = "#2E75B6", "#9DC3E6", "#C55A11"
PALETTE = ["#2E75B6", "#C55A11", "#548235", "#7030A0", "#BF9000", "#404040"]
PLOT_CONFIG = {"displaylogo": False, "responsive": True}
# The hover box beside a bar names its series: the trace's name, made safe once when the
# trace is built, rather than data pasted into the template (which Plotly would read).
SERIES_NAME = "<extra>%{fullData.name}</extra>"
# Everything the page needs is inside it: no request of any kind is allowed.
CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; img-src data:; font-src data:"
)


def _column(report: Report, name: str) -> list:
    index = report.columns.index(name)
    return [row[index] for row in report.rows]


def _labels(values: Sequence[object], kind: str = "text") -> list[str]:
    """Values as a chart shows them: as people read them, and as written."""
    return [plotly_text(display_value(v, kind)) for v in values]


def _months(report: Report) -> list[str]:
    return _labels(_column(report, "month"), "month")


def monthly_sales_figure(report: Report) -> go.Figure:
    """Revenue per month in bars (the partial month lighter), its change in a line."""
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    partial = [bool(p) for p in _column(report, "is_partial")]
    figure.add_trace(
        go.Bar(
            x=_months(report),
            y=[float(v) / 1e6 for v in _column(report, "revenue")],
            name=f"Revenue (millions of {CURRENCY})",
            marker_color=[LIGHT_BLUE if p else BLUE for p in partial],
            hovertemplate="%{x}: %{y:,.1f} M " + CURRENCY + "<extra></extra>",
        ),
        secondary_y=False,
    )
    figure.add_trace(
        go.Scatter(
            x=_months(report),
            y=[None if v is None else float(v) for v in _column(report, "revenue_change_pct")],
            name="Change vs previous month (%)",
            mode="lines+markers",
            line_color=ORANGE,
            hovertemplate="%{x}: %{y:+.1f}%<extra></extra>",
        ),
        secondary_y=True,
    )
    figure.update_yaxes(title_text=f"Revenue (millions of {CURRENCY})", secondary_y=False)
    figure.update_yaxes(title_text="Change (%)", ticksuffix="%", tickformat=".0f",
                        secondary_y=True, showgrid=False, zeroline=True)  # fmt: skip
    return figure


def top_devices_figure(report: Report) -> go.Figure:
    labels = _labels(_column(report, "device"), "device")
    shares = [float(s) * 100 for s in _column(report, "share_of_users")]
    return go.Figure(
        go.Bar(
            x=_column(report, "users"),
            y=labels,
            orientation="h",
            marker_color=BLUE,
            text=[f"{s:.1f}% of users" for s in shares],
            textposition="auto",
            hovertemplate="%{y}: %{x:,} users<extra></extra>",
        ),
        layout={"yaxis": {"autorange": "reversed"}, "xaxis": {"title": {"text": "Users"}}},
    )


def top_products_figure(report: Report) -> go.Figure:
    """One panel per country, its products by units."""
    countries: dict[str, list[tuple[str, int]]] = {}
    for country, product, units in zip(
        _column(report, "country_name"),
        _column(report, "product_name"),
        _column(report, "units"),
        strict=True,
    ):
        products = countries.setdefault(str(country), [])
        if product is not None:
            products.append((str(product), int(units)))
    names = list(countries) or ["(no country)"]
    titles = [plotly_text(name) for name in names]
    figure = make_subplots(rows=len(names), cols=1, subplot_titles=titles,
                           vertical_spacing=0.12 if len(names) > 1 else 0.0)  # fmt: skip
    for row, name in enumerate(names, start=1):
        products = countries.get(name, [])
        figure.add_trace(
            go.Bar(
                x=[u for _, u in products],
                y=[plotly_text(p) for p, _ in products],
                orientation="h",
                name=titles[row - 1],
                marker_color=PALETTE[(row - 1) % len(PALETTE)],
                hovertemplate="%{y}: %{x:,} units" + SERIES_NAME,
            ),
            row=row,
            col=1,
        )
        figure.update_yaxes(autorange="reversed", row=row, col=1)
    figure.update_xaxes(title_text="Units sold", row=len(names), col=1)
    figure.update_layout(showlegend=False, height=max(360, 230 * len(names)))
    return figure


def lead_conversion_figure(report: Report) -> go.Figure:
    """The conversion of new companies per campaign, coloured by channel."""
    figure = go.Figure()
    rows = list(zip(_column(report, "campaign"), _column(report, "channel"),
                    _column(report, "new_conversion_rate"), strict=True))  # fmt: skip
    for index, channel in enumerate(sorted({str(c) for _, c, _ in rows})):
        mine = [(str(campaign), rate) for campaign, c, rate in rows if str(c) == channel]
        figure.add_trace(
            go.Bar(
                x=[None if r is None else float(r) * 100 for _, r in mine],
                y=[plotly_text(campaign) for campaign, _ in mine],
                orientation="h",
                name=plotly_text(channel),
                marker_color=PALETTE[index % len(PALETTE)],
                hovertemplate="%{y}: %{x:.1f}%" + SERIES_NAME,
            )
        )
    figure.update_layout(
        yaxis={"autorange": "reversed", "categoryorder": "array",
               "categoryarray": [plotly_text(str(c)) for c, _, _ in rows]},
        xaxis={"title": {"text": CONVERSION_AXIS}, "ticksuffix": "%"},
        height=max(360, 28 * len(rows) + 140), legend={"title": {"text": "Channel"}},
    )  # fmt: skip
    return figure


# The columns each chart and note reads: a report without them gets its table only.
READS: dict[str, frozenset[str]] = {
    "monthly_sales": frozenset({"month", "revenue", "revenue_change_pct", "is_partial"}),
    "top_devices": frozenset({"device", "users", "share_of_users"}),
    "top_products_by_country": frozenset({"country_name", "product_name", "units"}),
    "lead_conversion": frozenset({"campaign", "channel", "new_conversion_rate"}),
}


def _readable(report: Report) -> bool:
    return bool(report.rows) and READS.get(report.name, frozenset()) <= set(report.columns)


FIGURES: dict[str, Callable[[Report], go.Figure]] = {
    "monthly_sales": monthly_sales_figure,
    "top_devices": top_devices_figure,
    "top_products_by_country": top_products_figure,
    "lead_conversion": lead_conversion_figure,
}


def _table(report: Report) -> dict[str, Any]:
    """A report's table as the page's template takes it: headings, rows and the total
    row as displayed text, numbers right-aligned."""
    kinds, right = display_rows(report)
    css = ["num" if r else "" for r in right]

    def cells(values: Sequence[object]) -> list[dict[str, str]]:
        return [{"text": display_value(v, k), "css": c}
                for v, k, c in zip(values, kinds, css, strict=True)]  # fmt: skip

    totals = report_totals(report)
    return {
        "heads": [{"text": display_header(c, k), "css": x}
                  for c, k, x in zip(report.columns, kinds, css, strict=True)],
        "rows": [cells(row) for row in report.rows],
        "totals": cells(totals) if totals else None,
    }  # fmt: skip


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #222; background: #f6f7f9; }
header { background: #1F4E78; color: #fff; padding: 16px 32px; }
header h1 { margin: 0 0 6px; font-size: 22px; }
header dl { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 2px 12px;
            margin: 0; font-size: 14px; }
header dd { margin: 0; overflow-wrap: anywhere; }
header dt { opacity: .8; }
nav { padding: 8px 32px; background: #fff; border-bottom: 1px solid #ddd; font-size: 14px; }
nav { display: flex; flex-wrap: wrap; gap: 4px 16px; }
nav a { color: #1F4E78; }
section h2, .note { overflow-wrap: anywhere; }
section { background: #fff; margin: 20px 32px; padding: 16px 24px; border-radius: 6px;
          box-shadow: 0 1px 3px rgba(0,0,0,.08); }
section h2 { margin: 0 0 8px; font-size: 18px; }
.note { background: #FFF8E1; border-left: 4px solid #BF9000; padding: 6px 10px; margin: 6px 0;
        font-size: 14px; }
table { border-collapse: collapse; font-size: 13px; }
.table-box { overflow-x: auto; max-width: 100%; margin-top: 12px; }
th { background: #1F4E78; color: #fff; text-align: left; padding: 5px 8px; }
td { border-bottom: 1px solid #e4e4e4; padding: 4px 8px; white-space: nowrap; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
tfoot td { font-weight: bold; border-top: 2px solid #1F4E78; }
.chart { min-height: 360px; }
/* a phone: the sections take the width, the tables scroll inside their boxes */
@media (max-width: 600px) {
  header, nav { padding-left: 12px; padding-right: 12px; }
  section { margin: 12px 6px; padding: 12px 10px; }
}
"""


@cache
def _templates() -> jinja2.Environment:
    """The page's templates, autoescaped: a value from the data is always text on it."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined,
    )  # fmt: skip


def section_id(name: str) -> str:
    """The opening tag of a report's section (the export check looks for it)."""
    return f'<section id="{name}">'


def _figure_html(figure: go.Figure, div_id: str) -> str:
    """A figure as the page embeds it: its legend under the plot, so a phone's narrow
    screen keeps the plot's width for the data."""
    figure.update_layout(title=None, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                         template="plotly_white", font={"size": 13},
                         legend={"orientation": "h", "yref": "container", "yanchor": "bottom",
                                 "y": 0, "xanchor": "left", "x": 0})  # fmt: skip
    # room for the axis labels, however narrow the screen (months turn on a phone)
    figure.update_xaxes(automargin=True)
    figure.update_yaxes(automargin=True)
    chart = figure.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                           config=PLOT_CONFIG,
                           default_height=f"{figure.layout.height or 420}px")  # fmt: skip
    return f'<div class="chart">{chart}</div>'


def _section(
    name: str, title: str, notes: Sequence[str], chart: str, tables: Sequence[Report]
) -> dict[str, Any]:
    """A section as the template takes it; `chart` is Plotly's HTML, the rest text."""
    return {"name": name, "title": title, "notes": list(notes), "chart": Markup(chart),
            "tables": [_table(report) for report in tables]}  # fmt: skip


QUALITY_SECTION = "data_quality"


def quality_section(rejects: Report, accounting: Report) -> Markup:
    """What the warehouse held back, month by month, and the record accounting."""
    chart = ""
    if rejects.rows:
        chart = _figure_html(rejects_figure(rejects), f"chart-{QUALITY_SECTION}")
    notes = [
        "Every record read is loaded, rejected, merged or flagged: the accounting below adds"
        " up per source and entity. The records themselves are in"
        " quarantine.rejected_records; `b2b quarantine` prints them (personal data masked)."
    ]
    section = _section(QUALITY_SECTION, "Data quality: records held back", notes, chart,
                       [accounting, rejects])  # fmt: skip
    parts = _templates().get_template("report_sections.html").module
    return parts.section(section)  # type: ignore[attr-defined]


def rejects_figure(rejects: Report) -> go.Figure:
    """Records held back per month, one bar per source, stacked."""
    figure = go.Figure()
    per_source: dict[str, dict[str, int]] = {}
    for month, source, records in zip(_column(rejects, "month"), _column(rejects, "source"),
                                      _column(rejects, "records"), strict=True):  # fmt: skip
        months = per_source.setdefault(str(source), {})
        months[str(month)] = months.get(str(month), 0) + int(records)
    months = sorted({m for values in per_source.values() for m in values})
    for index, (source, values) in enumerate(sorted(per_source.items())):
        figure.add_trace(
            go.Bar(
                x=[plotly_text(m) for m in months], y=[values.get(m, 0) for m in months],
                name=plotly_text(source), marker_color=PALETTE[index % len(PALETTE)],
                hovertemplate="%{x}: %{y:,} records" + SERIES_NAME,
            )
        )  # fmt: skip
    # months as labels, in the order given: a month name must not become a date axis,
    # and "no month" sits beside them
    figure.update_layout(barmode="stack", xaxis={"type": "category"},
                         yaxis={"title": {"text": "Records held back"}})  # fmt: skip
    return figure


def report_page(
    reports: Sequence[Report], context: ReportContext, quality: Markup | str = ""
) -> str:
    """The whole page: header, a section per report (title, notes, chart, table), and the
    data-quality section when given (quality_section)."""
    sections = []
    for report in reports:
        chart = ""
        if report.name in FIGURES and _readable(report):
            chart = _figure_html(FIGURES[report.name](report), f"chart-{report.name}")
        title = TITLES.get(report.name, report.name)
        notes = report_notes(report, context)
        sections.append(_section(report.name, title, notes, chart, [report]))
    links = [(r.name, TITLES.get(r.name, r.name)) for r in reports]
    if quality:
        links.append((QUALITY_SECTION, "Data quality"))

    def when(value: dt.datetime | None) -> str:
        return f"{value:%d %b %Y %H:%M}" if value else "never"

    freshness = [
        f"{source}: loaded {when(loaded)}" + (f", latest record {when(latest)}" if latest else "")
        for source, loaded, latest in context.freshness
    ]
    return _templates().get_template("report_page.html").render(
        csp=CSP, style=Markup(STYLE), plotly_js=Markup(get_plotlyjs()),
        as_of=f"{context.as_of:%d %b %Y}", window=context.window, currency=CURRENCY,
        freshness=freshness, generated_at=f"{context.generated_at:%d %b %Y %H:%M}",
        links=links, general_notes=general_notes(context), sections=sections, quality=quality,
    )  # fmt: skip


def write_report_page(
    reports: Sequence[Report], path: Path, context: ReportContext, quality: str = ""
) -> Path:
    path.write_text(report_page(reports, context, quality), encoding="utf-8")
    return path
