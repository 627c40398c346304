"""What the platform database's staging assets share: their source tag, keys, check
specs and the statuses an order may have.

The rules (docs/data-contracts.md, quality rules): master data that facts still need is
kept with the bad field set to NULL (`flagged`); duplicates fold into the lowest id
(`merged`) and the `*_merges` tables let facts follow them; unusable records are
`rejected`. Every finding lands in quarantine.rejected_records with the original record
as JSON.
"""

import dagster as dg

from b2b_platform.lib.checks import Check
from b2b_platform.lib.warehouse.schema import scalar
from b2b_platform.lib.warehouse.sql import SqlFragment, qualified_name

SOURCE = "platform_db"
TAGS = {"source": SOURCE}


def staging_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["staging", name])


def staging_check_specs(name: str, *checks_: Check) -> list[dg.AssetCheckSpec]:
    return [check.spec(staging_key(name)) for check in checks_]


def row_count(conn: object, table: str, where: SqlFragment | None = None) -> int:
    """The rows of a table or view (a dotted name), those `where` holds for if given."""
    if where:
        return int(scalar(conn, f"SELECT count(*) FROM {qualified_name(table)} WHERE {where}"))
    return int(scalar(conn, f"SELECT count(*) FROM {qualified_name(table)}"))
