"""What every core asset shares: keys, owners, tags, checks and how it is written."""

from functools import partial
from typing import Any

import dagster as dg

from b2b_platform.defs.partitions import BY_MONTH
from b2b_platform.lib import checks
from b2b_platform.lib.asset_step import SINGLE_RUN, WAREHOUSE_POOL, TableCheck
from b2b_platform.lib.follow_upstream import FOLLOW_UPSTREAM


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


# What every core table checks: a unique key and no personal data.
CORE_UNIQUE_KEY = checks.UNIQUE_KEY.described("One row per key.")
CORE_NO_PII = checks.NO_PII


def core_checks(name: str) -> list[dg.AssetCheckSpec]:
    """The checks every core table declares: a unique key and no personal data."""
    return [CORE_UNIQUE_KEY.spec(core_key(name)), CORE_NO_PII.spec(core_key(name))]


def core_table_checks(name: str, key_columns: list[str]) -> list[TableCheck]:
    """The checks of core_checks, bound to core.<name>."""
    key, table = core_key(name), f"core.{name}"
    return [
        partial(
            checks.unique_key, asset_key=key, table=table, key=key_columns, check=CORE_UNIQUE_KEY
        ),
        partial(checks.no_pii_columns, asset_key=key, table=table, check=CORE_NO_PII),
    ]


def monthly_core_asset() -> dict[str, Any]:
    """@dg.asset arguments of a monthly core fact but its `partitions_def` (its sources'
    jobs run it by month)."""
    return {
        "kinds": {"duckdb"}, "tags": BY_MONTH, "backfill_policy": SINGLE_RUN,
        "pool": WAREHOUSE_POOL,
    }  # fmt: skip
