"""What every core asset shares: keys, owners, tags, checks and how it is written."""

from functools import partial
from typing import Any

import dagster as dg

from b2b_platform.defs.partitions import BY_MONTH
from b2b_platform.lib import checks
from b2b_platform.lib.asset_step import FOLLOW_UPSTREAM, SINGLE_RUN, WAREHOUSE_POOL, TableCheck


def core_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["core", name])


def staging_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["staging", name])


def core_asset(**overrides: Any) -> dict[str, Any]:
    """@dg.asset arguments of an unpartitioned core table (it follows its inputs)."""
    return {
        "kinds": {"duckdb"},
        "pool": WAREHOUSE_POOL, "automation_condition": FOLLOW_UPSTREAM, **overrides,
    }  # fmt: skip


def core_checks(name: str) -> list[dg.AssetCheckSpec]:
    """The checks every core table declares: a unique key and no personal-data columns."""
    descriptions = {
        "unique_key": "One row per key.",
        "no_pii_columns": "No raw personal-data column (document, birth date, email, phone,"
        " name, username, IP) reaches core.",
    }
    return [
        dg.AssetCheckSpec(check, asset=core_key(name), blocking=True, description=text)
        for check, text in descriptions.items()
    ]


def core_table_checks(name: str, key_columns: list[str]) -> list[TableCheck]:
    """The checks of core_checks, bound to core.<name>."""
    key, table = core_key(name), f"core.{name}"
    return [
        partial(checks.unique_key, asset_key=key, table=table, key=key_columns),
        partial(checks.no_pii_columns, asset_key=key, table=table),
    ]


def monthly_core_asset() -> dict[str, Any]:
    """@dg.asset arguments of a monthly core fact (its sources' jobs run it by month)."""
    return {
        "kinds": {"duckdb"}, "tags": BY_MONTH, "backfill_policy": SINGLE_RUN,
        "pool": WAREHOUSE_POOL,
    }  # fmt: skip
