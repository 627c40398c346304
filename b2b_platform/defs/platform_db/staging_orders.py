"""Staged orders and order lines, a month at a time: every order and line valid or
quarantined with the first rule it breaks."""

from functools import partial

import dagster as dg
import duckdb

from b2b_common.orders import VALID_STATUSES
from b2b_platform.defs.partitions import BY_MONTH
from b2b_platform.defs.platform_db.staging_common import (
    SOURCE,
    TAGS,
    row_count,
    staging_check_specs,
    staging_key,
)
from b2b_platform.lib import checks
from b2b_platform.lib.asset_step import (
    SINGLE_RUN,
    WAREHOUSE_POOL,
    AssetEvents,
    CheckAudit,
    asset_step,
    blocked,
    month_metadata,
    months_markdown,
)
from b2b_platform.lib.checks import Check
from b2b_platform.lib.metadata import column_schemas
from b2b_platform.lib.resources import CalendarResource, QualityThresholds
from b2b_platform.lib.sql import bind_variables, sql_file
from b2b_platform.lib.warehouse import AuditFailed
from b2b_platform.lib.warehouse_resource import WarehouseResource
from b2b_platform.lib.warehouse_writes import Accounting, QuarantineSlice, TableSlice

# ---------------------------------------------------------------- orders and lines


ORDERS_REJECT_RATE = checks.reject_rate(
    "orders", "Rejected orders stay under the configured share.", blocking=True
)
COMPANY_KNOWN = Check("company_known", "Every order's company is a staged company.")
ORDER_LINES_REJECT_RATE = checks.reject_rate(
    "order_lines", "Rejected lines stay under the configured share.", blocking=True
)
ORDER_KNOWN = Check("order_known", "Every line belongs to a staged order.")


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            key=staging_key("orders"),
            deps=[
                dg.AssetKey(["raw", "orders"]),
                staging_key("companies"),
                staging_key("customers"),
            ],
            kinds={"duckdb"},
            tags={**TAGS, **BY_MONTH},
            description="Valid orders of the month: status normalized, buyer and customer "
            "resolved to surviving records, dates inside the partition range and not in the future.",
        ),
        dg.AssetSpec(
            key=staging_key("order_lines"),
            deps=[dg.AssetKey(["raw", "order_items"]), staging_key("products")],
            kinds={"duckdb"},
            tags={**TAGS, **BY_MONTH},
            description="Valid lines of valid orders, with revenue = quantity x unit price x "
            "(1 - discount). A rejected order takes all its lines with it.",
        ),
    ],
    backfill_policy=SINGLE_RUN,
    check_specs=[
        *staging_check_specs(
            "orders",
            checks.UNIQUE_KEY,
            checks.ACCOUNTING_IDENTITY,
            ORDERS_REJECT_RATE,
            COMPANY_KNOWN,
        ),
        *staging_check_specs(
            "order_lines",
            checks.UNIQUE_KEY,
            checks.ACCOUNTING_IDENTITY,
            ORDER_LINES_REJECT_RATE,
            ORDER_KNOWN,
        ),
    ],
    pool=WAREHOUSE_POOL,
)
def staging_orders(
    context: dg.AssetExecutionContext,
    duckdb: WarehouseResource,
    calendar: CalendarResource,
    quality: QualityThresholds,
) -> AssetEvents:
    months: dict[str, dict[str, dict[str, int]]] = {"orders": {}, "order_items": {}}
    results: list[tuple[str, dg.AssetCheckResult]] = []
    for partition_key in context.partition_keys:
        audit = CheckAudit(
            context,
            partial(_month_checks, partition_key=partition_key, threshold=quality.max_reject_rate),
        )
        try:
            counts = _stage_month(context, duckdb, calendar, quality, partition_key, audit)
        except AuditFailed as error:
            yield from blocked([audit], error)
        for entity, values in counts.items():
            months[entity][partition_key] = values
        results += [(partition_key, r) for r in audit.results]
    combined = checks.combine_months(results)
    schemas = column_schemas(
        duckdb.location(), duckdb.connection_config, ["staging.orders", "staging.order_lines"]
    )
    for entity, key in (
        ("orders", staging_key("orders")),
        ("order_items", staging_key("order_lines")),
    ):
        per_month = months[entity]
        month_metadata(context, per_month, "rows_loaded", key)
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "dagster/column_schema": schemas[f"staging.{key.path[-1]}"],
                "months": months_markdown(per_month),
            },
            check_results=[r for r in combined if r.asset_key == key],
        )


def _stage_month(
    context: dg.AssetExecutionContext,
    duckdb: WarehouseResource,
    calendar: CalendarResource,
    quality: QualityThresholds,
    partition_key: str,
    audit: CheckAudit,
) -> dict[str, dict[str, int]]:
    """Validate one month of orders and lines, published if its checks pass; returns
    accounting per entity."""
    with asset_step(context, duckdb, partition_key) as step:
        conn = step.conn
        bind_variables(conn, {
            "load_cutoff": calendar.load_cutoff,
            "first_month": calendar.first_month_start,
            "valid_statuses": list(VALID_STATUSES),
        })  # fmt: skip
        conn.execute(sql_file(__file__, "orders_checked"))
        conn.execute(sql_file(__file__, "lines_checked"))
        in_month = "partition_key = getvariable('partition_key')"
        result = step.commit(
            [
                TableSlice("staging.orders", sql_file(__file__, "orders_staged"), in_month),
                TableSlice(
                    "staging.order_lines", sql_file(__file__, "order_lines_staged"), in_month
                ),
            ],
            quarantine=[
                QuarantineSlice(
                    SOURCE, "orders", partition_key, sql_file(__file__, "orders_rejected")
                ),
                QuarantineSlice(
                    SOURCE, "order_items", partition_key, sql_file(__file__, "order_lines_rejected")
                ),
            ],
            accounting=[
                Accounting(
                    SOURCE, "orders", partition_key, row_count(conn, "orders_checked"),
                    f"SELECT count(*) FROM staging.orders WHERE {in_month}",
                ),
                Accounting(
                    SOURCE, "order_items", partition_key, row_count(conn, "lines_checked"),
                    f"SELECT count(*) FROM staging.order_lines WHERE {in_month}",
                ),
            ],
            audit=audit,
        )  # fmt: skip
        return result.by_entity


def _month_checks(
    conn: duckdb.DuckDBPyConnection, partition_key: str, threshold: float
) -> list[dg.AssetCheckResult]:
    """The checks of one staged month of orders and lines (run before it is published)."""
    where = "partition_key = ?"
    orders_key, lines_key = staging_key("orders"), staging_key("order_lines")
    in_slice = {"where": where, "params": [partition_key]}
    orders_checks = [
        checks.unique_key(conn, orders_key, "staging.orders", ["order_id"], **in_slice),
        checks.accounting_holds(conn, orders_key, SOURCE, ["orders"], partition_key),
        checks.reject_rate_below(
            conn, orders_key, SOURCE, "orders", partition_key, threshold, ORDERS_REJECT_RATE
        ),
        checks.references_resolve(
            conn,
            orders_key,
            COMPANY_KNOWN,
            "staging.orders",
            "company_id",
            "staging.companies",
            "company_id",
            where="t.partition_key = ?",
            params=[partition_key],
        ),
    ]
    lines_checks = [
        checks.unique_key(
            conn, lines_key, "staging.order_lines", ["order_id", "line_number"], **in_slice
        ),
        checks.accounting_holds(conn, lines_key, SOURCE, ["order_items"], partition_key),
        checks.reject_rate_below(
            conn,
            lines_key,
            SOURCE,
            "order_items",
            partition_key,
            threshold,
            ORDER_LINES_REJECT_RATE,
        ),
        checks.references_resolve(
            conn,
            lines_key,
            ORDER_KNOWN,
            "staging.order_lines",
            "order_id",
            "staging.orders",
            "order_id",
            where="t.partition_key = ?",
            params=[partition_key],
        ),
    ]
    return orders_checks + lines_checks
