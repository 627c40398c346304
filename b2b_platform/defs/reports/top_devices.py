"""The devices B2B client users work from."""

import dagster as dg
import duckdb

from b2b_platform.lib.asset_step import AssetEvents
from b2b_platform.lib.checks import Check
from b2b_platform.lib.report_step import (
    materialize_report,
    report_asset,
    report_check_specs,
    report_key,
)
from b2b_platform.lib.resources import CalendarResource
from b2b_platform.lib.warehouse.resource import WarehouseResource
from b2b_platform.lib.warehouse.sql import sql_file

NAME = "top_devices"
KEY = report_key(NAME)
TOP = 5


# The population is requests by known platform users, bots excluded, in the window. A
# device label can span device types (an unknown device may be a phone or not); the type
# shown is the one most of the label's requests had, ties alphabetically.
QUERY = sql_file(__file__, NAME)


RANKED_TOP_FIVE = Check(
    "ranked_top_five", f"At most {TOP} devices, ranked 1.. without gaps or ties.", blocking=False
)


def _ranked(conn: duckdb.DuckDBPyConnection) -> dg.AssetCheckResult:
    rows, ranks_ok = conn.execute(
        "SELECT count(*), coalesce(bool_and(rank BETWEEN 1 AND ?), true)"
        " AND count(DISTINCT rank) = count(*) FROM reports.top_devices",
        [TOP],
    ).fetchall()[0]
    return RANKED_TOP_FIVE.result(
        KEY,
        passed=bool(ranks_ok) and rows <= TOP,
        metadata={"rows": int(rows)},
    )


@dg.asset(
    key=KEY,
    deps=[dg.AssetKey(["core", "fct_web_requests"])],
    **report_asset(),
    check_specs=report_check_specs(NAME, RANKED_TOP_FIVE),
)
def top_devices(
    context: dg.AssetExecutionContext, duckdb: WarehouseResource, calendar: CalendarResource
) -> AssetEvents:
    """The five devices most B2B client users work from in the past 12 months.

    Counts signed-in platform users (not bots, not anonymous visitors), ranked by how
    many distinct users used the device, then by requests; share_of_users is the part of
    all signed-in users who used it (a user with two devices counts for both).
    """
    yield from materialize_report(
        context, duckdb, calendar, NAME, QUERY, [_ranked], {"top": TOP},
    )  # fmt: skip
