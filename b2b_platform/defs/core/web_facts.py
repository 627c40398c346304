"""Web facts: every loaded request, and the logins among them."""

import dagster as dg
import duckdb

from b2b_platform.defs.core.common import (
    CORE_NO_PII,
    core_asset,
    core_checks,
    core_key,
    core_table_checks,
    monthly_core_asset,
    staging_key,
)
from b2b_platform.lib import checks
from b2b_platform.lib.asset_step import (
    AssetEvents,
    materialize_months,
    materialize_table,
)
from b2b_platform.lib.checks import Check
from b2b_platform.lib.warehouse.resource import WarehouseResource
from b2b_platform.lib.warehouse.sql import sql_file

WEB_REQUESTS_KEY = core_key("fct_web_requests")
LOGINS_KEY = core_key("fct_logins")
LOGINS = "core.fct_logins"


FCT_WEB_REQUESTS_VIEW = sql_file(__file__, "fct_web_requests_view")


@dg.asset(
    key=WEB_REQUESTS_KEY,
    deps=[staging_key("web_requests"), core_key("dim_device")],
    **core_asset(),
    check_specs=core_checks("fct_web_requests"),
)
def fct_web_requests(context: dg.AssetExecutionContext, duckdb: WarehouseResource) -> AssetEvents:
    """Web traffic: one row per loaded access-log line, with user, company, country,
    device and bot flag, and whether it was a login or a product page view.

    A view over staging (no copy of tens of millions of lines): it is always exactly the
    loaded lines. Usernames and IP addresses stay in staging; here the user is its id
    and the address its country.
    """
    table = "core.fct_web_requests"
    yield from materialize_table(
        context,
        duckdb,
        table,
        FCT_WEB_REQUESTS_VIEW,
        view=True,
        table_checks=core_table_checks("fct_web_requests", ["source_file", "line_number"]),
        # a log file belongs to one month (raw/weblogs' manifest_consistent), so checking
        # the months that changed keeps the key unique across the whole view
        checks_follow=staging_key("web_requests"),
    )


def _login_query(partition_key: str) -> str:
    return """
        SELECT source_file, line_number, requested_at, CAST(requested_at AS DATE) AS login_date,
               user_id, company_id, country_code,
               coalesce(md5(user_agent), 'unknown') AS device_key, device_label, status,
               partition_key
        FROM staging.web_requests
        WHERE partition_key = getvariable('partition_key') AND is_login
    """


UNIQUE_LOGIN = checks.UNIQUE_KEY.described("One row per log line.")
USER_KNOWN = Check("user_known", "Every login belongs to a known platform user.")
LOGIN_CHECKS = (UNIQUE_LOGIN, USER_KNOWN, CORE_NO_PII)


def _login_checks(conn: duckdb.DuckDBPyConnection, partition_key: str) -> list[dg.AssetCheckResult]:
    month = {"where": "partition_key = ?", "params": [partition_key]}
    return [
        checks.unique_key(conn, LOGINS_KEY, LOGINS, ["source_file", "line_number"], **month,
                          check=UNIQUE_LOGIN),
        checks.references_resolve(conn, LOGINS_KEY, USER_KNOWN, LOGINS, "user_id",
                                  "staging.platform_users", "user_id", **month),
        checks.no_pii_columns(conn, LOGINS_KEY, LOGINS, **month, check=CORE_NO_PII),
    ]  # fmt: skip


def build_fct_logins(months: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """core/fct_logins over the code location's months (see partitions)."""
    return dg.asset(
        key=LOGINS_KEY,
        deps=[staging_key("web_requests")],
        partitions_def=months,
        **monthly_core_asset(),
        check_specs=[check.spec(LOGINS_KEY) for check in LOGIN_CHECKS],
    )(fct_logins)


def fct_logins(context: dg.AssetExecutionContext, duckdb: WarehouseResource) -> AssetEvents:
    """Successful logins: `POST /login` (query string ignored) answered 2xx/3xx, by a
    known platform user, with the country of the address it came from (empty when the
    address has none, e.g. a private network)."""
    yield from materialize_months(context, duckdb, LOGINS, _login_query, _login_checks)
