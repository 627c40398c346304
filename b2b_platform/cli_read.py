"""The read-only commands, `b2b status` and `b2b report`: they wait for a writer, never
write, and load no Dagster code."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import textwrap
from dataclasses import replace
from typing import TYPE_CHECKING

from b2b_common.errors import UserError
from b2b_common.password_masking import mask_secrets, passwords_of
from b2b_platform.lib.literal_text import terminal_text  # re only: `b2b --help` stays light

if TYPE_CHECKING:  # imported where used: `b2b --help` loads neither DuckDB nor reports
    from b2b_platform.lib.report_files.notes import ReportContext
    from b2b_platform.lib.report_files.output import Report


# the settings that may hold a password: the warehouse location and the source database
CONNECTION_VARIABLES = ("B2B_WAREHOUSE", "B2B_WAREHOUSE_PATH", "B2B_SOURCE_DB_URL")


def mask_configured(text: str, *more_settings: str | None) -> str:
    """`text` with every password masked, those of the configured warehouse and source
    database (and of `more_settings`, say `--source-db-url`) in whatever form a driver
    quotes them. Read from the environment as set, so that a value which fails to parse
    is masked too."""
    settings = [os.environ.get(name, "") for name in CONNECTION_VARIABLES]
    return mask_secrets(text, *passwords_of(*settings, *(s for s in more_settings if s)))


def status_command(args: argparse.Namespace) -> int:
    from b2b_platform.lib.settings import DEFAULT_DAGSTER_HOME, Settings
    from b2b_platform.lib.status import pending_failures_report, status_report
    from b2b_platform.lib.warehouse.connection import warehouse_connection
    from b2b_platform.lib.warehouse.run_log import pending_failures_file

    settings = Settings.from_env()
    with warehouse_connection(
        settings.warehouse, read_only=True, on_wait=lambda m: print(m, file=sys.stderr)
    ) as conn:
        # the errors recorded of failed steps may quote a connection setting
        print(mask_configured(status_report(conn, settings.warehouse)))
    home = os.environ.get("DAGSTER_HOME") or str(DEFAULT_DAGSTER_HOME)
    if pending := pending_failures_report(pending_failures_file(home)):
        print(mask_configured(pending))
    return 0


def report_command(args: argparse.Namespace) -> int:
    from b2b_common.dates import report_window, same_point_last_month
    from b2b_platform.lib.report_files.notes import general_notes, report_context, report_notes
    from b2b_platform.lib.report_files.output import (
        HTML_NAME,
        REPORT_ORDER,
        WORKBOOK_NAME,
        read_report,
        report_as,
    )
    from b2b_platform.lib.settings import Settings, check_report_directory
    from b2b_platform.lib.warehouse.connection import warehouse_connection
    from b2b_platform.lib.warehouse.schema import table_exists

    settings = Settings.from_env()
    # where the workbook and page are said to be: written by `b2b run`, read-only here
    check_report_directory(settings.report_dir, writable=False)
    names = _report_names(args, list(REPORT_ORDER))
    if not settings.warehouse.exists():
        raise UserError(
            f"warehouse {settings.warehouse.describe()} does not exist: run `b2b run` first"
        )
    window_start, _ = report_window(settings.as_of)
    reports = []
    with warehouse_connection(
        settings.warehouse, read_only=True, on_wait=lambda m: print(m, file=sys.stderr)
    ) as conn:
        context = report_context(
            conn, settings.as_of, window_start, settings.first_month,
            same_point_last_month(settings.load_cutoff), settings.attribution_days,
        )  # fmt: skip
        for name in names:
            if not table_exists(conn, f"reports.{name}"):
                raise UserError(f"report {name} has not been built: run `b2b run`")
            reports.append(_of_month(read_report(conn, name), args.month))
    if args.format in ("csv", "json"):  # for programs: the rows only
        print(_for_programs(reports, context, args.format))
        return 0
    heading = "## " if args.format == "markdown" else ""
    bullet = "- " if args.format == "markdown" else ""
    print(f"{heading}As of {settings.as_of:%d %b %Y}, window {context.window}")
    for note in general_notes(context):
        _print_note(f"{bullet}note: " if bullet else "note: ", note)
    print()
    for report in reports:
        print(
            f"{heading}{report.name} ({len(report.rows)} row{'s' if len(report.rows) != 1 else ''})"
        )
        print(report_as(report, args.format))
        for note in report_notes(report, context):
            _print_note(f"{bullet}note: " if bullet else "  note: ", note)
        print()
    workbook, page = settings.report_dir / WORKBOOK_NAME, settings.report_dir / HTML_NAME
    if workbook.exists():
        print(f"Workbook: {workbook.absolute()} (CSV files next to it)")
    if page.exists():
        print(f"Charts:   {page.absolute().as_uri()} (opens in a browser, no network needed)")
    return 0


def _report_names(args: argparse.Namespace, every: list[str]) -> list[str]:
    """The reports asked for; --month picks a month of monthly_sales, the one report by
    month (the others cover the whole window), and csv prints one report."""
    if args.month is not None:
        if args.name not in (None, "monthly_sales"):
            raise UserError(
                f"{args.name} covers the whole window: --month picks a month of monthly_sales"
            )
        return ["monthly_sales"]
    if args.format == "csv" and args.name is None:
        raise UserError(
            "--format csv prints one report: name it, e.g. `b2b report monthly_sales --format csv`"
        )
    return [args.name] if args.name else every


def _of_month(report: Report, month: str | None) -> Report:
    """The report's row of `month` (YYYY-MM) when one is asked for."""
    if month is None:
        return report
    if not re.fullmatch(r"\d{4}-\d{2}", month):
        raise UserError(f"--month {month!r} is not a month: use YYYY-MM")
    index = report.columns.index("month")
    rows = [row for row in report.rows if f"{row[index]:%Y-%m}" == month]
    if not rows:
        raise UserError(
            f"--month {month} is not in the report window: see `b2b report monthly_sales`"
        )
    return replace(report, rows=rows)


def _for_programs(reports: list[Report], context: ReportContext, fmt: str) -> str:
    from b2b_platform.lib.report_files.output import report_as

    if fmt == "csv":
        (report,) = reports
        return report_as(report, "csv")
    documents = [json.loads(report_as(report, "json")) for report in reports]
    return json.dumps(
        {"as_of": context.as_of.isoformat(), "window_start": context.window_start.isoformat(),
         "reports": {d["report"]: d["rows"] for d in documents}},
        ensure_ascii=False, indent=1,
    )  # fmt: skip


def _print_note(prefix: str, note: str) -> None:
    from b2b_platform.lib.report_files.output import TERMINAL_WIDTH

    # a note can quote a check's message about the data: printed as text
    print(textwrap.fill(terminal_text(note), TERMINAL_WIDTH, initial_indent=prefix,
                        subsequent_indent=" " * len(prefix)))  # fmt: skip


def quarantine_command(args: argparse.Namespace) -> int:
    from b2b_platform.lib.report_files.output import report_as
    from b2b_platform.lib.report_files.quarantine_view import (
        quarantine_reasons,
        quarantined_records,
    )
    from b2b_platform.lib.settings import Settings
    from b2b_platform.lib.warehouse.connection import warehouse_connection

    settings = Settings.from_env()
    if not settings.warehouse.exists():
        raise UserError(
            f"warehouse {settings.warehouse.describe()} does not exist: run `b2b run` first"
        )
    with warehouse_connection(
        settings.warehouse, read_only=True, on_wait=lambda m: print(m, file=sys.stderr)
    ) as conn:
        records, total = quarantined_records(conn, args.source, args.reason, args.month, args.limit)
        reasons = quarantine_reasons(conn) if args.reason and not total else []
    if args.format in ("csv", "json"):
        print(report_as(records, args.format))
        return 0
    if args.format == "table":
        print("\n".join(_record_lines(row) for row in records.rows) or "  (no records)")
    else:
        print(report_as(records, args.format))
    shown = len(records.rows)
    if total > shown:
        print(
            f"{shown} of {total:,} records shown: narrow with --source, --reason or --month,"
            " or raise --limit"
        )
    else:
        print(f"{total:,} record{'s' if total != 1 else ''}")
    if reasons and args.reason not in reasons:
        held = terminal_text(", ".join(reasons))
        print(f"no record has reason {args.reason!r}; the quarantine holds: {held}")
    return 0


def _record_lines(row: tuple) -> str:
    """A held-back record in three lines: where and why, what was wrong, and the start of
    the original (all of it with --format csv or json). A record holds what a source
    sent, file names included: it prints as text, its control characters as escapes."""
    from b2b_platform.lib.report_files.quarantine_view import NO_MONTH

    month, source, entity, key, reason, action, detail, original = row
    month = month or NO_MONTH
    key = str(key)
    if "/" in key:  # a file's path: its name says enough here
        key = key.rsplit("/", 1)[1]
    where = terminal_text(f"  {month:<8}  {source}/{entity}  {reason} ({action})  {key}")
    return f"{where}\n      {_shorten(detail or '', 110)}\n      {_shorten(original or '', 110)}"


def _shorten(text: str, width: int) -> str:
    """The text on one line of at most `width` characters, as the terminal shows it."""
    text = terminal_text(" ".join(str(text).split()))
    return text if len(text) <= width else text[: width - 1] + "…"
