"""What a reader must know besides the numbers, said the same way on the page, in the
workbook, in `b2b report` and in the UI: the as-of day and window, the month to date and
what it is compared with, months a blocking check holds back, sources with nothing
loaded yet, and how to read each report."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb

from b2b_common.dates import add_months, month_name
from b2b_platform.lib.report_files.output import HIDDEN_ANDROID_MODEL, Report
from b2b_platform.lib.warehouse.run_log import HeldSlice, held_slices
from b2b_platform.lib.warehouse.schema import scalar, table_exists
from b2b_platform.lib.warehouse.sql import qualified_name, quote_identifier

# what the lead conversion chart measures, the same on the page and in the workbook
CONVERSION_AXIS = "New companies that ordered within the attribution window"

# Each source as people call it, its accounting name, and the column of its latest record
# (the web logs' in raw.weblogs, a table: the fact is a view over every month of it)
SOURCES = (
    ("platform database", "platform_db", "core.fct_order_lines", "ordered_at"),
    ("web logs", "weblogs", "raw.weblogs", "requested_at"),
    ("lead workbooks", "leads", "core.fct_leads", "captured_at"),
)
SOURCE_LABELS = {name: label for label, name, _, _ in SOURCES}
# The sources each report is built from.
REPORT_SOURCES: dict[str, tuple[str, ...]] = {
    "monthly_sales": ("platform_db",),
    "top_devices": ("weblogs",),
    "top_products_by_country": ("weblogs", "platform_db"),
    "lead_conversion": ("leads", "platform_db"),
}
# The monthly tables of each source, as their steps are named in etl.run_log.
MONTHLY_TABLES = {
    "platform_db": ("orders", "order_items", "order_lines", "fct_order_lines"),
    "weblogs": ("weblogs", "web_requests", "fct_logins"),
}

Freshness = tuple[str, dt.datetime | None, dt.datetime | None]  # source, loaded, latest


@dataclass(frozen=True)
class ReportContext:
    """The circumstances of one set of reports: the day they are as of, their window,
    when each source was last loaded (and its latest record), and what is held."""

    as_of: dt.date
    window_start: dt.date
    freshness: Sequence[Freshness]
    generated_at: dt.datetime
    held: Sequence[HeldSlice] = field(default_factory=tuple)
    # where the previous month's like-for-like part ends (None: up to the same day)
    compared_with: dt.datetime | None = None
    attribution_days: int = 90  # B2B_ATTRIBUTION_DAYS

    @property
    def month_to_date(self) -> bool:
        """Whether the window ends with a month still in progress."""
        return (self.as_of + dt.timedelta(days=1)).day != 1

    @property
    def window(self) -> str:
        """The window in words: `01 Dec 2025 to 06 Dec 2026 (12 complete months and Dec
        2026 to date)`."""
        span = f"{self.window_start:%d %b %Y} to {self.as_of:%d %b %Y}"
        if not self.month_to_date:
            return f"{span} (12 complete months)"
        return f"{span} (12 complete months and {month_name(self.as_of)} to date)"

    def held_months(self, source: str) -> list[HeldSlice]:
        tables = MONTHLY_TABLES.get(source, ())
        return [
            h
            for h in self.held
            if h.partition_key
            and any(key.split("/")[-1] in tables for key in h.asset_key.split(","))
        ]


def report_context(
    conn: duckdb.DuckDBPyConnection,
    as_of: dt.date,
    window_start: dt.date,
    first_month: dt.date,
    compared_with: dt.datetime | None = None,
    attribution_days: int = 90,
) -> ReportContext:
    """The context of the reports in the warehouse now."""
    return ReportContext(
        as_of=as_of,
        window_start=window_start,
        freshness=source_freshness(conn),
        generated_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
        held=held_slices(conn, first_month),
        compared_with=compared_with,
        attribution_days=attribution_days,
    )


def source_freshness(conn: duckdb.DuckDBPyConnection) -> list[Freshness]:
    """When each source was last loaded, and the time of its latest record."""
    loaded = {}
    if table_exists(conn, "etl.record_accounting"):
        loaded = dict(
            conn.execute(
                "SELECT source, max(recorded_at)::TIMESTAMP(0) FROM etl.record_accounting"
                " GROUP BY 1"
            ).fetchall()
        )
    freshness = []
    for label, source, table, column in SOURCES:
        latest = (
            scalar(
                conn,
                f"SELECT max({quote_identifier(column)})::TIMESTAMP(0)"
                f" FROM {qualified_name(table)}",
            )
            if table_exists(conn, table)
            else None
        )
        freshness.append((label, loaded.get(source), latest))
    return freshness


def general_notes(context: ReportContext) -> list[str]:
    """What holds for every report: months held back, sources with nothing yet."""
    notes = []
    for source, label in SOURCE_LABELS.items():
        held = context.held_months(source)
        if held:
            months = ", ".join(sorted({month_name(h.partition_key or "") for h in held}))
            notes.append(
                f"{months} of the {label} held back by a quality check; the reports use what"
                f" was published for {'it' if len(held) == 1 else 'them'} before: "
                + "; ".join(f"{h.where}: {h.reason}" for h in held)
            )
    for label, loaded, latest in context.freshness:
        if latest is None:
            when = "was loaded but held nothing" if loaded else "has not been loaded"
            notes.append(
                f"Nothing from the {label} yet (it {when}): reports built on it are empty."
            )
    return notes


def report_notes(report: Report, context: ReportContext) -> list[str]:
    """What a reader of this report would otherwise be surprised by, in plain words."""
    notes = [*_held_notes(report, context), *_missing_notes(report, context)]
    if not report.rows:
        return notes
    columns = set(report.columns)
    if report.name == "monthly_sales" and {"month", "is_partial"} <= columns:
        notes += _monthly_sales_notes(report, context)
    if report.name == "top_devices" and {"device", "share_of_users"} <= columns:
        notes += _device_notes(report)
    if report.name == "top_products_by_country":
        notes.append(
            "A country's users are those who logged in from it (by IP address); a user who"
            " logged in from two countries counts in both. Products rank by units sold"
            " in valid orders of those users."
        )
    if report.name == "lead_conversion":
        notes.append(
            "New companies had no valid order before the campaign's lead reached them;"
            " existing ones were clients already. Converted = ordered within the"
            f" attribution window ({context.attribution_days} days) after the capture;"
            " the rate is of new companies. Attributed revenue counts each order once, for"
            " the first campaign whose window holds it, so it adds up and never exceeds"
            " the window's sales; a company reached by two campaigns counts in both"
            " company columns."
        )
    return notes


def _held_notes(report: Report, context: ReportContext) -> list[str]:
    notes = []
    for source in REPORT_SOURCES.get(report.name, ()):
        held = context.held_months(source)
        if held:
            months = ", ".join(sorted({month_name(h.partition_key or "") for h in held}))
            notes.append(
                f"Held: {months} of the {SOURCE_LABELS[source]} did not pass a quality check;"
                " this report uses what was published for it before (see `b2b status`)."
            )
    return notes


def _missing_notes(report: Report, context: ReportContext) -> list[str]:
    empty = {label for label, _, latest in context.freshness if latest is None}
    labels = [SOURCE_LABELS[s] for s in REPORT_SOURCES.get(report.name, ())]
    return [
        f"Nothing from the {label} has been loaded yet, so this report has no data from it."
        for label in labels
        if label in empty
    ]


def _monthly_sales_notes(report: Report, context: ReportContext) -> list[str]:
    months = [row[report.columns.index("month")] for row in report.rows]
    partial = [
        m for m, p in zip(months, (row[report.columns.index("is_partial")] for row in report.rows),
                          strict=True) if p
    ]  # fmt: skip
    current = context.as_of.replace(day=1)
    notes = []
    if current in partial:
        previous = add_months(current, -1)
        end = context.compared_with or dt.datetime.combine(
            previous + dt.timedelta(days=context.as_of.day), dt.time(0)
        )
        compared = (
            f"the whole of {month_name(previous)}"
            if end.date() >= current
            else f"{previous:%d %b} to {_until(end)}"
        )
        notes.append(
            f"{month_name(current)} is the month to date ({current:%d %b} to"
            f" {context.as_of:%d %b %Y}): its bar is lighter, and its change compares it"
            f" with {compared}, like for like."
        )
    earlier = [month_name(m) for m in partial if m != current]
    if earlier:
        notes.append(
            f"{', '.join(earlier)} lie before the first loaded month (B2B_FIRST_MONTH):"
            " their figures are incomplete."
        )
    if "orders" in report.columns:  # a loaded month with nothing sold is not a gap
        orders = report.columns.index("orders")
        quiet = [month_name(m) for m, row in zip(months, report.rows, strict=True)
                 if m not in partial and not row[orders]]  # fmt: skip
        if quiet:
            notes.append(f"No valid order in {', '.join(quiet)}: those months show zeros.")
    return notes


def _until(end: dt.datetime) -> str:
    """The last moment before `end`, as a day (or a day and time, UTC)."""
    if end.time() == dt.time(0):
        return f"{end - dt.timedelta(days=1):%d %b %Y}"
    return f"{end:%d %b %Y %H:%M} UTC"


def _device_notes(report: Report) -> list[str]:
    notes = []
    shares = [row[report.columns.index("share_of_users")] for row in report.rows]
    total = sum(float(s) for s in shares if s is not None) * 100
    if total > 100:
        notes.append(
            f"The shares add up to {total:.1f}%: a user seen on two devices counts for"
            " both, so each share is of all B2B users, not of this table."
        )
    devices = [row[report.columns.index("device")] for row in report.rows]
    hidden = [HIDDEN_ANDROID_MODEL[d] for d in devices if d in HIDDEN_ANDROID_MODEL]
    if hidden:
        notes.append(
            f'{hidden[0]}: Chrome on Android reports every phone as "Android 10; K"'
            " to protect privacy, so these are Android devices whose model is unknown."
        )
    return notes
