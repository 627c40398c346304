"""`b2b forget-missing-files SOURCE`: the one way rows of input files leave the warehouse.

A run never removes the rows of a file gone from its directory (a server's retention, an
unmounted share, a moved directory look the same from here); an operator who knows the
files are gone for good says so with this command.
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

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
    found = _present(args.source, settings)
    source, directory = found.source, found.directory
    if not settings.warehouse.exists():
        print(f"warehouse {settings.warehouse.describe()} does not exist yet: nothing to forget")
        return 0
    if not args.yes:
        with warehouse_connection(settings.warehouse, read_only=True) as conn:
            missing = missing_files(conn, source, found.paths | found.renamed(conn))
        for path, _, status, rows in missing:
            print(f"  {path} ({rows:,} rows, {status})")
        print(
            f"{len(missing)} file(s) with rows in the warehouse are not in {directory};"
            + (" add --yes to remove their rows" if missing else " nothing to forget")
        )
        return 0
    run_id = f"forget-missing-files-{uuid.uuid4()}"
    with warehouse_step(settings.warehouse, run_id, source.asset_key, None) as step:
        present = found.paths | found.renamed(step.conn)
        forgotten = forget_missing_files(step, source, present, found.record_name)
    rows = sum(n for _, n in forgotten)
    print(
        f"removed {rows:,} rows of {len({path for path, _ in forgotten})} file(s) no longer in {directory}"
        + ("; `b2b run` rebuilds what read them" if forgotten else "")
    )
    return 0


@dataclass(frozen=True)
class _Present:
    """What of a source's files is in its directory now, as the source's loader sees it."""

    source: FileSource
    directory: Path
    paths: set[str]  # every entry, read or skipped (none if the directory does not exist)
    renamed: Callable[[duckdb.DuckDBPyConnection], set[str]]  # loaded paths now renamed
    record_name: Callable[[str], str]  # how its quarantine findings name a file


def _present(name: str, settings: Settings) -> _Present:
    from b2b_platform.lib.input_files.file_manifest import list_input_files
    from b2b_platform.lib.input_files.gone_files import present_paths

    if name == "weblogs":
        from b2b_platform.defs.weblogs.loading import record_name
        from b2b_platform.defs.weblogs.log_files import LOG_FILES, list_log_files, present_log_paths
        from b2b_platform.defs.weblogs.renamed_files import followed_paths
        from b2b_platform.lib.resources import DirectoryResource

        directory = settings.log_dir
        names = partial(record_name, root=directory)
        if not directory.is_dir():
            return _Present(LOG_FILES, directory, set(), lambda conn: set(), names)
        logs = list_log_files(DirectoryResource(path=str(directory)))  # servers' too
        renamed = partial(followed_paths, heads=logs.heads)  # rotated, not missing
        return _Present(LOG_FILES, directory, present_log_paths(logs), renamed, names)
    from b2b_platform.defs.leads.raw import LEAD_FILES, is_lead_workbook

    directory = settings.leads_dir
    paths = (
        present_paths(list_input_files(directory, is_lead_workbook))
        if directory.is_dir()
        else set()
    )
    return _Present(LEAD_FILES, directory, paths, lambda conn: set(), lambda path: Path(path).name)
