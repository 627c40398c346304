"""Glue between a Dagster asset execution and a recorded warehouse step."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from dagster_duckdb import DuckDBResource

from b2b_platform.lib.settings import Settings, add_months
from b2b_platform.lib.warehouse import WarehouseStep, warehouse_step

WAREHOUSE_POOL = "duckdb_warehouse"


def monthly_partitions(settings: Settings) -> dg.MonthlyPartitionsDefinition:
    """Months from B2B_FIRST_MONTH to the as-of month (to the current month if not fixed)."""
    start = settings.first_month.isoformat()
    # end_offset=1 admits the month in progress; end_date stops at a fixed as-of month.
    end = add_months(settings.as_of, 1).isoformat() if settings.as_of_is_fixed else None
    return dg.MonthlyPartitionsDefinition(start_date=start, end_date=end, end_offset=1)


def month_bounds(partition_key: str) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a monthly partition key (YYYY-MM-DD)."""
    start = dt.date.fromisoformat(partition_key)
    return (
        dt.datetime.combine(start, dt.time(0)),
        dt.datetime.combine(add_months(start, 1), dt.time(0)),
    )


def step_name(context: dg.AssetExecutionContext) -> str:
    return ",".join(sorted(key.to_user_string() for key in context.selected_asset_keys))


@contextmanager
def asset_step(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, partition_key: str | None = None
) -> Iterator[WarehouseStep]:
    """Open a recorded warehouse step for this asset execution (and one of its partitions).

    Partitioned assets run a range of months in one Dagster run (single-run backfill
    policy) and open one step per month, so each month commits and is recorded alone.
    """
    instance = context.instance

    def last_event_time(run_id: str) -> dt.datetime | None:
        # The last thing the dead run told Dagster is the best estimate of when it broke.
        try:
            records = instance.get_records_for_run(run_id, ascending=False, limit=1).records
        except Exception:
            return None
        if not records:
            return None
        return dt.datetime.fromtimestamp(records[0].timestamp, dt.UTC).replace(tzinfo=None)

    with warehouse_step(
        duckdb.database,
        context.run.run_id,
        step_name(context),
        partition_key,
        config=duckdb.connection_config,
        last_event_time=last_event_time,
        log=context.log.info,
    ) as step:
        yield step


SINGLE_RUN = dg.BackfillPolicy.single_run()


def months_markdown(rows: dict[str, dict[str, int]]) -> dg.MetadataValue:
    """A per-month table for the metadata of a run that covered several months."""
    if not rows:
        return dg.MetadataValue.md("no months")
    columns = list(next(iter(rows.values())))
    lines = ["| month | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += [
        f"| {month[:7]} | " + " | ".join(f"{values[c]:,}" for c in columns) + " |"
        for month, values in rows.items()
    ]
    return dg.MetadataValue.md("\n".join(lines))
