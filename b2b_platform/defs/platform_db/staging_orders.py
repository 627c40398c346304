"""Staged orders and order lines, a month at a time: every order and line valid or
quarantined with the first rule it breaks."""

from functools import partial

import dagster as dg
import duckdb

from b2b_common.orders import VALID_STATUSES
from b2b_platform.defs.partitions import BY_MONTH, all_month_keys
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
    MonthsOfStep,
    month_metadata,
    months_markdown,
)
from b2b_platform.lib.checks import Check
from b2b_platform.lib.metadata import column_schemas
from b2b_platform.lib.resources import CalendarResource, QualityThresholds
from b2b_platform.lib.warehouse.resource import MonthStep, WarehouseResource
from b2b_platform.lib.warehouse.sql import bind_variables, sql_file
from b2b_platform.lib.warehouse.step import AuditFailed
from b2b_platform.lib.warehouse.writes import (
    Accounting,
    QuarantineSlice,
    TableSlice,
    recorded_accounting,
)

# ---------------------------------------------------------------- orders and lines


ORDERS_REJECT_RATE = checks.reject_rate(
    "orders", "Rejected orders stay under the configured share.", blocking=True
)
COMPANY_KNOWN = Check("company_known", "Every order's company is a staged company.")
ORDER_LINES_REJECT_RATE = checks.reject_rate(
    "order_lines", "Rejected lines stay under the configured share.", blocking=True
)
ORDER_KNOWN = Check("order_known", "Every line belongs to a staged order.")
IN_MONTH = "partition_key = getvariable('partition_key')"  # the step binds the month it writes


def build_staging_orders(months: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """staging/orders and staging/order_lines over the code location's months (see
    partitions)."""
    return dg.multi_asset(
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
                description="Valid orders of the month: status normalized, buyer and "
                "customer resolved to surviving records, dates inside the partition range and "
                "not in the future.",
            ),
            dg.AssetSpec(
                key=staging_key("order_lines"),
                deps=[dg.AssetKey(["raw", "order_items"]), staging_key("products")],
                kinds={"duckdb"},
                tags={**TAGS, **BY_MONTH},
                description="Valid lines of valid orders, with revenue = quantity x unit price "
                "x (1 - discount). A rejected order takes all its lines with it.",
            ),
        ],
        partitions_def=months,
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
    )(staging_orders)


def staging_orders(
    context: dg.AssetExecutionContext,
    duckdb: WarehouseResource,
    calendar: CalendarResource,
    quality: QualityThresholds,
) -> AssetEvents:
    months: dict[str, dict[str, dict[str, int]]] = {"orders": {}, "order_items": {}}
    step_months = MonthsOfStep(context)
    # lines without an order are extracted with the last month, and accounted apart
    orphans_month = all_month_keys(context)[-1]

    def month(month_step: MonthStep, partition_key: str) -> None:
        holds_orphans = partition_key == orphans_month
        audit = CheckAudit(
            context,
            partial(
                _month_checks,
                partition_key=partition_key,
                threshold=quality.max_reject_rate,
                holds_orphans=holds_orphans,
            ),
        )
        try:
            counts = _stage_month(
                context, month_step, calendar, partition_key, audit, holds_orphans
            )
        except AuditFailed as error:
            step_months.hold(partition_key, audit, error)
            return
        for entity, values in counts.items():
            months[entity][partition_key] = values
        step_months.checked(partition_key, audit)

    duckdb.each_month(context, month)
    schemas = column_schemas(duckdb, ["staging.orders", "staging.order_lines"])
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
                **step_months.metadata(),
            },
            check_results=step_months.check_results(key),
        )


def _stage_month(
    context: dg.AssetExecutionContext,
    month_step: MonthStep,
    calendar: CalendarResource,
    partition_key: str,
    audit: CheckAudit,
    holds_orphans: bool,
) -> dict[str, dict[str, int]]:
    """Validate one month of orders and lines, published if its checks pass; returns
    accounting per entity.

    Lines whose order exists nowhere belong to no month: the month that holds them (the
    last, where they are extracted) files them under no partition, with accounting of
    their own, so they never tip a month's reject rate.
    """
    with month_step(partition_key) as step:
        conn = step.conn
        if step.up_to_date:  # its raw month and what it resolves in did not change
            step.commit(audit=audit)  # the checks, again, on what is published
            return recorded_accounting(conn, SOURCE, ["orders", "order_items"], partition_key)
        bind_variables(conn, {
            "load_cutoff": calendar.load_cutoff,
            "first_month": calendar.first_month_start,
            "valid_statuses": list(VALID_STATUSES),
        })  # fmt: skip
        conn.execute(sql_file(__file__, "orders_checked"))
        conn.execute(sql_file(__file__, "lines_checked"))
        rejected_lines_query = sql_file(__file__, "order_lines_rejected")
        quarantine = [
            QuarantineSlice(SOURCE, "orders", partition_key, sql_file(__file__, "orders_rejected")),
            QuarantineSlice(
                SOURCE, "order_items", partition_key,
                f"SELECT * FROM ({rejected_lines_query}) WHERE order_known",
            ),
        ]  # fmt: skip
        accounting = [
            Accounting(
                SOURCE, "orders", partition_key, row_count(conn, "orders_checked"),
                f"SELECT count(*) FROM staging.orders WHERE {IN_MONTH}",
            ),
            Accounting(
                SOURCE, "order_items", partition_key,
                row_count(conn, "lines_checked", "order_known"),
                f"SELECT count(*) FROM staging.order_lines WHERE {IN_MONTH}",
            ),
        ]  # fmt: skip
        if holds_orphans:
            quarantine.append(
                QuarantineSlice(
                    SOURCE, "order_items", None,
                    f"SELECT * FROM ({rejected_lines_query}) WHERE NOT order_known",
                )
            )  # fmt: skip
            accounting.append(
                Accounting(
                    SOURCE, "order_items", None,
                    row_count(conn, "lines_checked", "NOT order_known"), "SELECT 0",
                )
            )  # fmt: skip
        result = step.commit(
            [
                TableSlice("staging.orders", sql_file(__file__, "orders_staged"), IN_MONTH),
                TableSlice(
                    "staging.order_lines", sql_file(__file__, "order_lines_staged"), IN_MONTH
                ),
            ],
            quarantine=quarantine,
            accounting=accounting,
            audit=audit,
        )
        return result.by_entity


def _month_checks(
    conn: duckdb.DuckDBPyConnection, partition_key: str, threshold: float, holds_orphans: bool
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
        checks.accounting_holds(
            conn, lines_key, SOURCE, ["order_items"], partition_key, orphans=holds_orphans
        ),
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
