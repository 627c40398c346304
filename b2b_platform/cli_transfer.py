"""`b2b export-warehouse` and `b2b import-warehouse`: a warehouse moved whole, for
instance a DuckDB file into a lake."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_transfer_commands(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser(
        "export-warehouse",
        help="write every warehouse table to DIR as Parquet (the first step of moving a "
        "warehouse file into a lake)",
    )
    export.add_argument("dir", metavar="DIR", help="a new or empty directory")
    export.set_defaults(handler=export_command)
    load = commands.add_parser(
        "import-warehouse",
        help="load a directory written by export-warehouse into the warehouse B2B_WAREHOUSE "
        "names (an empty file or lake), in one transaction",
    )
    load.add_argument("dir", metavar="DIR", help="a directory written by export-warehouse")
    load.set_defaults(handler=import_command)


def export_command(args: argparse.Namespace) -> int:
    from b2b_platform.lib.settings import Settings
    from b2b_platform.lib.warehouse.connection import warehouse_connection
    from b2b_platform.lib.warehouse_transfer import export_warehouse

    settings = Settings.from_env()
    target = Path(args.dir)
    with warehouse_connection(
        settings.warehouse, read_only=True, on_wait=lambda m: print(m, file=sys.stderr)
    ) as conn:
        manifest = export_warehouse(conn, target)
    rows = sum(manifest["tables"].values())
    print(f"exported {len(manifest['tables'])} tables ({rows:,} rows) and"
          f" {len(manifest['views'])} views of {settings.warehouse.describe()} to {target}")  # fmt: skip
    return 0


def import_command(args: argparse.Namespace) -> int:
    from b2b_platform.defs.warehouse_contents import warehouse_contents
    from b2b_platform.lib.settings import Settings
    from b2b_platform.lib.warehouse.connection import warehouse_connection
    from b2b_platform.lib.warehouse_transfer import import_warehouse, open_export, writable_paths

    settings = Settings.from_env()
    source = Path(args.dir)
    contents = warehouse_contents()
    created = not settings.warehouse.is_lake and not settings.warehouse.exists()
    # every file is checked before the warehouse is even opened
    with open_export(source, contents) as export:
        try:
            with warehouse_connection(
                settings.warehouse, on_wait=lambda m: print(m, file=sys.stderr)
            ) as conn:
                rows = import_warehouse(
                    conn, export, contents, writable_paths(conn, settings.warehouse)
                )
        except BaseException:
            if created:  # a failed import leaves no warehouse file behind it
                for leftover in (
                    settings.warehouse.file_path,
                    Path(f"{settings.warehouse.file_path}.wal"),
                ):
                    leftover.unlink(missing_ok=True)
            raise
    print(f"imported {len(rows)} tables ({sum(rows.values()):,} rows) and"
          f" {len(contents.views)} views from {source} into {settings.warehouse.describe()}")  # fmt: skip
    return 0
