"""`b2b forget-missing-files SOURCE`: the one way rows of input files leave the warehouse.

A run never removes the rows of a file gone from its directory (a server's retention, an
unmounted share, a moved directory look the same from here); an operator who knows the
files are gone for good says so with this command.
"""

from __future__ import annotations

import argparse
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from b2b_platform.lib.input_files.gone_files import FileSource
    from b2b_platform.lib.settings import Settings

SOURCES = ("weblogs", "leads")


def add_forget_command(commands: argparse._SubParsersAction) -> None:
    forget = commands.add_parser(
        "forget-missing-files",
        help="remove the rows of the files no longer in the log or leads directory (runs "
        "keep them); lists them unless --yes",
    )
    forget.add_argument("source", choices=SOURCES, help="whose directory to compare")
    forget.add_argument("--yes", action="store_true", help="remove them (else only list them)")
    forget.set_defaults(handler=forget_command)


def forget_command(args: argparse.Namespace) -> int:
    from b2b_platform.lib.input_files.gone_files import forget_missing_files, missing_files
    from b2b_platform.lib.settings import Settings
    from b2b_platform.lib.warehouse.connection import warehouse_connection
    from b2b_platform.lib.warehouse.step import warehouse_step

    settings = Settings.from_env()
    source, directory, present = _present(args.source, settings)
    if not settings.warehouse.exists():
        print(f"warehouse {settings.warehouse.describe()} does not exist yet: nothing to forget")
        return 0
    if not args.yes:
        with warehouse_connection(settings.warehouse, read_only=True) as conn:
            missing = missing_files(conn, source, present)
        for path, _, status, rows in missing:
            print(f"  {path} ({rows:,} rows, {status})")
        print(
            f"{len(missing)} file(s) with rows in the warehouse are not in {directory};"
            + (" add --yes to remove their rows" if missing else " nothing to forget")
        )
        return 0
    run_id = f"forget-missing-files-{uuid.uuid4()}"
    with warehouse_step(settings.warehouse, run_id, source.asset_key, None) as step:
        forgotten = forget_missing_files(step, source, present)
    rows = sum(n for _, n in forgotten)
    print(
        f"removed {rows:,} rows of {len(forgotten)} file(s) no longer in {directory}"
        + ("; `b2b run` rebuilds what read them" if forgotten else "")
    )
    return 0


def _present(name: str, settings: Settings) -> tuple[FileSource, Path, set[str]]:
    """The source, its directory, and the paths in it now (none if it does not exist)."""
    from b2b_platform.lib.input_files.file_manifest import list_input_files
    from b2b_platform.lib.input_files.gone_files import present_paths

    if name == "weblogs":
        from b2b_platform.defs.weblogs.log_files import LOG_FILES, is_log_name

        source, directory, wanted = LOG_FILES, settings.log_dir, is_log_name
    else:
        from b2b_platform.defs.leads.raw import LEAD_FILES, is_lead_workbook

        source, directory, wanted = LEAD_FILES, settings.leads_dir, is_lead_workbook
    if not directory.is_dir():
        return source, directory, set()
    return source, directory, present_paths(list_input_files(directory, wanted))
