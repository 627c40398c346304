"""What a warehouse built by this code holds: each table with its columns and types,
and each view with the SQL that defines it. `b2b import-warehouse` accepts nothing else:
an export is data to check against this, never code to run.

The table shapes live in warehouse_tables.json, written from a built warehouse by
`python -m b2b_platform_tests.warehouse_tables WAREHOUSE` (a test checks that the graph
builds exactly these tables, so the file cannot drift from the code). The views are the
.sql files their assets publish.
"""

from __future__ import annotations

import json
from pathlib import Path

from b2b_platform.lib.warehouse_transfer import WarehouseContents

DEFS = Path(__file__).parent
TABLES_FILE = DEFS / "warehouse_tables.json"
VIEW_FILES = {
    "staging.web_requests": DEFS / "weblogs" / "web_requests_view.sql",
    "core.fct_web_requests": DEFS / "core" / "fct_web_requests_view.sql",
    "quarantine.rejects_by_month": DEFS / "quarantine" / "rejects_by_month_view.sql",
}


def warehouse_contents() -> WarehouseContents:
    """The tables (name -> (column, type) pairs) and views this code builds."""
    tables = json.loads(TABLES_FILE.read_text(encoding="utf-8"))
    return WarehouseContents(
        tables={name: tuple((c, t) for c, t in columns) for name, columns in tables.items()},
        views={name: path.read_text(encoding="utf-8") for name, path in VIEW_FILES.items()},
    )
