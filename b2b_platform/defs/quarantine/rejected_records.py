"""The quarantine as an asset: every record the warehouse held back, counted."""

import dagster as dg
import duckdb

from b2b_platform.lib.asset_step import (
    WAREHOUSE_POOL,
    AssetEvents,
    materialize_table,
)
from b2b_platform.lib.checks import Check
from b2b_platform.lib.follow_upstream import FOLLOW_UPSTREAM
from b2b_platform.lib.report_files.output import Report, markdown_table
from b2b_platform.lib.report_files.quarantine_view import accounting, rejects_by_month
from b2b_platform.lib.warehouse.resource import WarehouseResource
from b2b_platform.lib.warehouse.sql import sql_file

KEY = dg.AssetKey(["quarantine", "rejected_records"])
# the steps that file findings: the quarantine follows them
FILED_BY = [
    dg.AssetKey(["raw", "weblogs"]),
    *(dg.AssetKey(["staging", name]) for name in
      ("companies", "customers", "orders", "order_lines", "leads")),
]  # fmt: skip
EVERY_SOURCE_ADDS_UP = Check(
    "every_source_adds_up",
    "Per source and entity, over all months: records read = loaded + rejected + merged.",
    blocking=False,
)


def _adds_up(conn: duckdb.DuckDBPyConnection) -> dg.AssetCheckResult:
    rows = accounting(conn).rows
    broken = [f"{source}/{entity}" for source, entity, *_, adds_up in rows if not adds_up]
    return EVERY_SOURCE_ADDS_UP.result(
        KEY,
        passed=not broken,
        metadata={"entities": len(rows), "not_adding_up": ", ".join(broken) or "none"},
    )


def _counts(conn: duckdb.DuckDBPyConnection) -> dict[str, dg.MetadataValue]:
    """Per source, entity, reason and action, the records held back, for the asset page."""
    by_month = rejects_by_month(conn)
    totals: dict[tuple, int] = {}
    for _, source, entity, reason, action, records in by_month.rows:
        key = (source, entity, reason, action)
        totals[key] = totals.get(key, 0) + records
    rows = sorted(((*key, n) for key, n in totals.items()), key=lambda r: (r[0], r[1], -r[4]))
    by_reason = Report("quarantine", ["source", "entity", "reason", "action", "records"],
                       ["VARCHAR"] * 4 + ["BIGINT"], rows)  # fmt: skip
    return {
        "dagster/row_count": dg.MetadataValue.int(sum(totals.values())),
        "by_reason": dg.MetadataValue.md(markdown_table(by_reason, limit=100, totals=False)),
        "by_month": dg.MetadataValue.md(markdown_table(by_month, limit=60, totals=False)),
        "see_the_records": dg.MetadataValue.text(
            "b2b quarantine [--source S] [--reason R] [--month YYYY-MM]"
        ),
    }


REJECTS_BY_MONTH = "quarantine.rejects_by_month"
REJECTS_BY_MONTH_VIEW = sql_file(__file__, "rejects_by_month_view")


@dg.asset(
    key=KEY,
    deps=FILED_BY,
    kinds={"duckdb"},
    pool=WAREHOUSE_POOL,
    automation_condition=FOLLOW_UPSTREAM,
    check_specs=[EVERY_SOURCE_ADDS_UP.spec(KEY)],
)
def rejected_records(context: dg.AssetExecutionContext, duckdb: WarehouseResource) -> AssetEvents:
    """Every record the warehouse did not load as it came: rejected (unusable, not
    loaded), flagged (loaded with the bad field emptied) or merged (a duplicate folded into
    its survivor), with the reason, what was done, the detail and the original record
    (personal data masked). The rows are written by the steps that find them, each in the
    transaction that publishes its slice; here they are counted by source, reason and
    month (quarantine.rejects_by_month, a view), and `b2b quarantine` prints them."""
    yield from materialize_table(
        context,
        duckdb,
        REJECTS_BY_MONTH,
        REJECTS_BY_MONTH_VIEW,
        view=True,
        table_checks=[_adds_up],
        extra_metadata=_counts,
    )
