"""What the platform database's staging assets share: their source tag, keys, check
specs and the statuses an order may have.

The rules (docs/data-contracts.md, quality rules): master data that facts still need is
kept with the bad field set to NULL (`flagged`); duplicates fold into the lowest id
(`merged`) and the `*_merges` tables let facts follow them; unusable records are
`rejected`. Every finding lands in quarantine.rejected_records with the original record
as JSON.
"""

import dagster as dg

from b2b_platform.lib.warehouse_schema import scalar

SOURCE = "platform_db"
TAGS = {"source": SOURCE}


def staging_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["staging", name])


def staging_check_specs(name: str, *checks_: tuple[str, str, bool]) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(check, asset=staging_key(name), description=text, blocking=blocking)
        for check, text, blocking in checks_
    ]


UNIQUE = ("unique_key", "The business key is unique and never null.", True)
ACCOUNTED = (
    "accounting_identity",
    "Records read = loaded + rejected + merged (nothing vanishes).",
    True,
)


def row_count(conn: object, table: str) -> int:
    return int(scalar(conn, f"SELECT count(*) FROM {table}"))
