"""`b2b status`: the last runs, quarantine by reason, files by status, accounting.

Step names, errors and file names can hold anything a file was named or a source held:
each prints through terminal_text (tables through text_table), so its control
characters show as escapes instead of acting on the terminal."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from b2b_platform.lib.literal_text import terminal_lines, terminal_text
from b2b_platform.lib.report_files.output import Report, text_table
from b2b_platform.lib.warehouse.lake import lake_summary
from b2b_platform.lib.warehouse.location import WarehouseLocation
from b2b_platform.lib.warehouse.run_log import AUDIT_FAILED_PREFIX, held_slices
from b2b_platform.lib.warehouse.schema import table_exists


def _table(conn: duckdb.DuckDBPyConnection, title: str, sql: str) -> str:
    relation = conn.sql(sql)
    report = Report(title, relation.columns, [str(t) for t in relation.types], relation.fetchall())
    if not report.rows:
        return f"{title}\n  (none)\n"
    return f"{title}\n{text_table(report)}\n"


# What `b2b status` shows, in order: a title and the query that fills its table.
STATUS_TABLES: tuple[tuple[str, str], ...] = (
    (
        "Step runs by status",
        """
            SELECT status, count(*) AS steps,
                   max(coalesce(finished_at, broken_at, started_at))::TIMESTAMP(0) AS latest
            FROM etl.run_log GROUP BY status ORDER BY status""",
    ),
    (
        "Last 15 steps (errors of failing steps below)",
        """
            SELECT strftime(started_at, '%m-%d %H:%M:%S') AS started, asset_key,
                   coalesce(partition_key[:7], '') AS month, status,
                   rows_read AS "read", rows_written AS written, rows_rejected AS rejected,
                   round(epoch(coalesce(finished_at, broken_at) - started_at), 1) AS seconds
            FROM etl.run_log ORDER BY started_at DESC LIMIT 15""",
    ),
    (
        "Quarantine by reason",
        """
            SELECT source, entity, reason_code, action, count(*) AS records
            FROM quarantine.rejected_records GROUP BY ALL ORDER BY source, entity, records DESC""",
    ),
    (
        "Record accounting (read = loaded + rejected + merged)",
        """
            SELECT source, entity, sum(rows_read) AS read, sum(rows_loaded) AS loaded,
                   sum(rows_rejected) AS rejected, sum(rows_merged) AS merged,
                   sum(rows_flagged) AS flagged,
                   CASE WHEN sum(rows_read) = sum(rows_loaded + rows_rejected + rows_merged)
                        THEN 'ok' ELSE 'BROKEN' END AS identity
            FROM etl.record_accounting GROUP BY ALL ORDER BY source, entity""",
    ),
    (
        "Files",
        """
            SELECT source, status, count(DISTINCT path) AS files, sum(rows_read) AS rows_read,
                   sum(rows_loaded) AS rows_loaded, sum(rows_rejected) AS rows_rejected,
                   max(loaded_at)::TIMESTAMP(0) AS last_loaded
            FROM etl.file_manifest GROUP BY ALL ORDER BY source, status""",
    ),
)


def status_report(conn: duckdb.DuckDBPyConnection, warehouse: WarehouseLocation) -> str:
    if not table_exists(conn, "etl.run_log"):
        return f"warehouse {warehouse.describe()} has no runs yet: run `b2b run`"
    parts = ["\n".join(_warehouse_lines(conn, warehouse)) + "\n"]
    parts += [_table(conn, title, sql) for title, sql in STATUS_TABLES]
    failing = conn.execute(
        """SELECT asset_key, coalesce(partition_key[:7], '') AS month,
                  broken_at::TIMESTAMP(0) AS failed_at, error
           FROM etl.run_log r
           WHERE status IN ('failed', 'interrupted') AND NOT starts_with(error, ?)
             AND NOT EXISTS (
               SELECT 1 FROM etl.run_log later
               WHERE (later.asset_key = r.asset_key OR r.asset_key = '(run)')
                 AND (later.partition_key IS NOT DISTINCT FROM r.partition_key
                      OR r.asset_key = '(run)')
                 AND later.status = 'succeeded' AND later.started_at > r.started_at)
           ORDER BY broken_at DESC LIMIT 20""",
        [AUDIT_FAILED_PREFIX],
    ).fetchall()
    held = held_slices(conn)
    if held:  # the operator's first question: what stopped it, with the figures
        parts.append(
            "Held now: a blocking check stopped these slices; reports use what was"
            " published before\n"
            + "\n".join(
                f"  {terminal_text(h.where)} since {h.since:%Y-%m-%d %H:%M}:"
                f" {terminal_lines(h.reason)}"
                for h in held
            )
        )
    if failing:  # a blocked check names itself in the error: the operator's first question
        parts.append(
            "Steps failing now (no success since), with the check or error that stopped them\n"
            + "\n".join(
                f"  {terminal_text(key)}{' ' + terminal_text(month) if month else ''} at {at}:"
                f" {terminal_lines(str(error))}"
                for key, month, at, error in failing
            )
        )
    for status, title in (
        ("failed", "Files that could not be read"),
        ("skipped", "Directory entries skipped (not regular files; never read)"),
    ):
        rows = conn.execute(  # a log file read by two months has a row in each: once here
            "SELECT path, any_value(error) FROM etl.file_manifest WHERE status = ?"
            " GROUP BY path ORDER BY path",
            [status],
        ).fetchall()
        if rows:
            parts.append(
                title
                + "\n"
                + "\n".join(f"  {terminal_text(p)}: {terminal_lines(str(e))}" for p, e in rows)
            )
    gone = conn.execute(
        "SELECT source, path, coalesce(sum(rows_loaded), 0) FROM etl.file_manifest"
        " WHERE status = 'gone' GROUP BY source, path ORDER BY source, path"
    ).fetchall()
    if gone:
        parts.append(
            "Files gone from their directory (their rows stay; `b2b forget-missing-files"
            " SOURCE` removes them)\n"
            + "\n".join(f"  {source}: {terminal_text(p)} ({n:,} rows)" for source, p, n in gone)
        )
    return "\n".join(parts)


def _warehouse_lines(conn: duckdb.DuckDBPyConnection, warehouse: WarehouseLocation) -> list[str]:
    """Where the warehouse is and how big: a file's size, or a lake's snapshot and size."""
    if warehouse.is_lake:
        return [f"Warehouse {terminal_text(warehouse.describe())}", *lake_summary(conn).lines()]
    size = warehouse.file_path.stat().st_size if warehouse.file_path.exists() else 0
    return [f"Warehouse {terminal_text(warehouse.describe())} ({size / 2**20:,.1f} MiB)"]


def pending_failures_report(pending: Path | None) -> str:
    """Run breaks (failed or interrupted) that could not be written while another process held
    the warehouse: they are written by the next step, and shown here until then."""
    if pending is None:
        return ""
    lines = []
    for file in sorted(pending.parent.glob(pending.name + "*")):
        for line in file.read_text(encoding="utf-8").splitlines():
            failure = json.loads(line)
            month = f" {failure['partition_key'][:7]}" if failure.get("partition_key") else ""
            error = (
                str(failure.get("error", "")).splitlines()[0][:100] if failure.get("error") else ""
            )
            lines.append(
                terminal_text(
                    f"  run {failure['run_id'][:8]}{month} {failure.get('status', 'failed')}"
                    f" at {failure['failed_at'][:19]}: {error}"
                )
            )
    if not lines:
        return ""
    return "Run breaks not yet in etl.run_log (written by the next warehouse step)\n" + "\n".join(
        lines
    )
