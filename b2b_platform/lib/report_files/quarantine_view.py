"""The quarantine as people read it: the records the warehouse held back, filtered by
source, reason and month, and their counts by month beside the record accounting.
`b2b quarantine`, the page's data-quality section and the quarantine asset in the UI
all read them here. Records are shown as the quarantine stores them: personal fields
already masked."""

from __future__ import annotations

import re

import duckdb

from b2b_common.errors import UserError
from b2b_platform.lib.report_files.output import Report
from b2b_platform.lib.warehouse.schema import table_exists

QUARANTINE = "quarantine.rejected_records"
NO_MONTH = "no month"  # what records of no month (orphan order lines, whole tables) show
MONTH = re.compile(r"\d{4}-\d{2}")
# the records matching a source, a reason and a month, each of them optional (NULL)
MATCHING = """(? IS NULL OR source = ?) AND (? IS NULL OR reason_code = ?)
    AND (? IS NULL OR (? = 'none' AND partition_key IS NULL) OR partition_key[:7] = ?)"""


def _report(conn: duckdb.DuckDBPyConnection, name: str, sql: str, params: list) -> Report:
    relation = conn.execute(sql, params)
    columns = [d[0] for d in relation.description]
    types = [str(d[1]) for d in relation.description]
    return Report(name, columns, types, relation.fetchall())


def quarantined_records(
    conn: duckdb.DuckDBPyConnection,
    source: str | None = None,
    reason: str | None = None,
    month: str | None = None,
    limit: int = 50,
) -> tuple[Report, int]:
    """The records held back that match, at most `limit` of them, and how many match.
    `month` is YYYY-MM, or `none` for the records of no month (whose month is NULL)."""
    if month is not None and month != "none" and not MONTH.fullmatch(month):
        raise UserError(f"--month {month!r} is not a month: use YYYY-MM (or none)")
    if not table_exists(conn, QUARANTINE):
        return Report("quarantine", [], [], []), 0
    params = [source, source, reason, reason, month, month, month]
    total = conn.execute(f"SELECT count(*) FROM {QUARANTINE} WHERE {MATCHING}", params).fetchall()
    report = _report(
        conn,
        "quarantine",
        f"""SELECT partition_key[:7] AS month, source, entity,
                   record_key, reason_code AS reason, action, detail, raw_record
            FROM {QUARANTINE} WHERE {MATCHING}
            ORDER BY source, entity, partition_key NULLS FIRST, reason_code, record_key
            LIMIT ?""",
        [*params, limit],
    )
    return report, int(total[0][0])


def quarantine_reasons(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """The reason codes the quarantine holds now."""
    if not table_exists(conn, QUARANTINE):
        return []
    rows = conn.execute(f"SELECT DISTINCT reason_code FROM {QUARANTINE} ORDER BY 1").fetchall()
    return [reason for (reason,) in rows]


def rejects_by_month(conn: duckdb.DuckDBPyConnection) -> Report:
    """Records held back per month, source, reason and action."""
    if not table_exists(conn, QUARANTINE):
        return Report("rejects_by_month", [], [], [])
    return _report(
        conn,
        "rejects_by_month",
        f"""SELECT month, source, entity, reason, action, count(*) AS records
            FROM (SELECT coalesce(partition_key[:7], '{NO_MONTH}') AS month, source, entity,
                         reason_code AS reason, action FROM {QUARANTINE})
            GROUP BY ALL
            ORDER BY month, source, entity, records DESC, reason""",  # 'no month' sorts last
        [],
    )


def accounting(conn: duckdb.DuckDBPyConnection) -> Report:
    """Records read = loaded + rejected + merged, per source and entity, all months."""
    if not table_exists(conn, "etl.record_accounting"):
        return Report("accounting", [], [], [])
    return _report(
        conn,
        "accounting",
        """SELECT source, entity, sum(rows_read) AS records_read,
                  sum(rows_loaded) AS loaded, sum(rows_rejected) AS rejected,
                  sum(rows_merged) AS merged, sum(rows_flagged) AS flagged,
                  sum(rows_read) = sum(rows_loaded + rows_rejected + rows_merged) AS adds_up
           FROM etl.record_accounting GROUP BY ALL ORDER BY source, entity""",
        [],
    )
