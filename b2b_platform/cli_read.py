"""The read-only commands, `b2b status` and `b2b report`: they wait for a writer, never
write, and load no Dagster code."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap

from b2b_common.errors import UserError


def status_command(args: argparse.Namespace) -> int:
    from b2b_platform.lib.run_log import pending_failures_file
    from b2b_platform.lib.settings import DEFAULT_DAGSTER_HOME, Settings
    from b2b_platform.lib.status import pending_failures_report, status_report
    from b2b_platform.lib.warehouse_connection import warehouse_connection

    settings = Settings.from_env()
    with warehouse_connection(
        settings.warehouse, read_only=True, on_wait=lambda m: print(m, file=sys.stderr)
    ) as conn:
        print(status_report(conn, settings.warehouse))
    home = os.environ.get("DAGSTER_HOME") or str(DEFAULT_DAGSTER_HOME)
    if pending := pending_failures_report(pending_failures_file(home)):
        print(pending)
    return 0


def report_command(args: argparse.Namespace) -> int:
    from b2b_common.dates import report_window, same_point_last_month
    from b2b_platform.lib.report_notes import general_notes, report_context, report_notes
    from b2b_platform.lib.report_output import (
        HTML_NAME,
        REPORT_ORDER,
        TERMINAL_WIDTH,
        WORKBOOK_NAME,
        read_report,
        text_table,
    )
    from b2b_platform.lib.settings import Settings
    from b2b_platform.lib.warehouse_connection import warehouse_connection
    from b2b_platform.lib.warehouse_schema import table_exists

    settings = Settings.from_env()
    if not settings.warehouse.exists():
        raise UserError(
            f"warehouse {settings.warehouse.describe()} does not exist: run `b2b run` first"
        )
    names = [args.name] if args.name else list(REPORT_ORDER)
    window_start, _ = report_window(settings.as_of)
    with warehouse_connection(
        settings.warehouse, read_only=True, on_wait=lambda m: print(m, file=sys.stderr)
    ) as conn:
        context = report_context(
            conn, settings.as_of, window_start, settings.first_month,
            same_point_last_month(settings.load_cutoff), settings.attribution_days,
        )  # fmt: skip
        print(f"As of {settings.as_of:%d %b %Y}, window {context.window}")
        for note in general_notes(context):
            print(textwrap.fill(note, TERMINAL_WIDTH, initial_indent="note: ",
                                subsequent_indent="      "))  # fmt: skip
        print()
        for name in names:
            if not table_exists(conn, f"reports.{name}"):
                raise UserError(f"report {name} has not been built: run `b2b run`")
            report = read_report(conn, name)
            print(f"{name} ({len(report.rows)} rows)")
            print(text_table(report) if report.rows else "  (no rows)")
            for note in report_notes(report, context):
                print(textwrap.fill(note, TERMINAL_WIDTH, initial_indent="  note: ",
                                    subsequent_indent="        "))  # fmt: skip
            print()
    workbook, page = settings.report_dir / WORKBOOK_NAME, settings.report_dir / HTML_NAME
    if workbook.exists():
        print(f"Workbook: {workbook.absolute()} (CSV files next to it)")
    if page.exists():
        print(f"Charts:   {page.absolute().as_uri()} (opens in a browser, no network needed)")
    return 0
