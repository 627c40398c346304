"""Write the warehouse's table shapes from a built warehouse:
`python -m b2b_platform_tests.warehouse_tables WAREHOUSE` rewrites
b2b_platform/defs/warehouse_tables.json (without an argument it builds nothing and
prints the usage). test_warehouse_transfer fails when the file and the graph differ."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from b2b_platform.defs.warehouse_contents import TABLES_FILE
from b2b_platform.lib.warehouse.connection import warehouse_connection
from b2b_platform.lib.warehouse_transfer import table_shapes


def tables_json(shapes: dict[str, list[list[str]]]) -> str:
    """One table a line, so a change to a table is a one-line diff."""
    lines = [f" {json.dumps(name)}: {json.dumps(columns)}" for name, columns in shapes.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    with warehouse_connection(Path(argv[0]), read_only=True) as conn:
        shapes = table_shapes(conn)
    TABLES_FILE.write_text(tables_json(shapes), encoding="utf-8")
    print(f"wrote {len(shapes)} tables to {TABLES_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
