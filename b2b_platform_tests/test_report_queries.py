"""Report SQL at the edges of the window, on core tables written by hand (no pipeline)."""

import datetime as dt
from decimal import Decimal

import duckdb
import pytest

from b2b_platform.defs.reports import monthly_sales, top_devices
from b2b_platform.lib.report_step import window_variables
from b2b_platform.lib.sql import bind_variables


def monthly_sales_query(
    conn: duckdb.DuckDBPyConnection, start: dt.date, end: dt.date, first: dt.date
) -> str:
    """The report's SQL file, its variables bound on `conn` as the asset binds them."""
    bind_variables(conn, monthly_sales.monthly_sales_variables(start, end, first))
    return monthly_sales.QUERY


def top_devices_query(conn: duckdb.DuckDBPyConnection, start: dt.date, end: dt.date) -> str:
    bind_variables(conn, {**window_variables(start, end), "top": top_devices.TOP})
    return top_devices.QUERY


WINDOW = (dt.date(2025, 12, 1), dt.date(2026, 11, 26))  # as-of 2026-11-25


@pytest.fixture
def conn() -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect()
    conn.execute("CREATE SCHEMA core")
    conn.execute(
        "CREATE TABLE core.fct_order_lines (order_id BIGINT, ordered_at TIMESTAMP,"
        " quantity BIGINT, revenue DECIMAL(18, 2))"
    )
    conn.execute(
        "CREATE TABLE core.fct_web_requests (user_id BIGINT, device_label VARCHAR,"
        " device_type VARCHAR, is_bot BOOLEAN, requested_at TIMESTAMP)"
    )
    return conn


def test_monthly_sales_window_start_and_undefined_change(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(
        """INSERT INTO core.fct_order_lines VALUES
           (1, '2025-11-30 23:59:59', 1, 100.00),  -- the month before the window
           (2, '2025-12-01 00:00:00', 2, 50.00),   -- first instant of the window
           (2, '2025-12-01 00:00:00', 1, 25.00),   -- same order, second line
           (3, '2026-02-14 10:00:00', 1, 10.00),   -- after an empty January
           (4, '2026-11-25 23:59:59', 1, 5.00),    -- last second of the window
           (5, '2026-11-26 00:00:00', 9, 999.00)   -- the day after the as-of date"""
    )
    rows = conn.execute(
        f"SELECT * FROM ({monthly_sales_query(conn, *WINDOW, dt.date(2025, 11, 1))}) ORDER BY month"
    ).fetchall()
    assert len(rows) == 12
    december, january, february = rows[0], rows[1], rows[2]
    # -25% against November, which was loaded but lies outside the window
    assert december == (dt.date(2025, 12, 1), 1, 3, Decimal("75.00"), Decimal("75.00"),
                        Decimal("-25.00"), False)  # fmt: skip
    assert january == (dt.date(2026, 1, 1), 0, 0, Decimal("0.00"), Decimal("0.00"),
                       Decimal("-100.00"), False)  # fmt: skip
    assert february[5] is None  # no change can be computed from a month with no revenue
    november = rows[-1]
    assert november[1:4] == (1, 1, Decimal("5.00")) and november[6] is True


def test_monthly_sales_complete_as_of_month_is_not_partial(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    window = (dt.date(2025, 12, 1), dt.date(2026, 12, 1))  # as-of 2026-11-30
    rows = conn.execute(monthly_sales_query(conn, *window, dt.date(2025, 12, 1))).fetchall()
    assert len(rows) == 12
    assert {row[0] for row in rows} == {dt.date(2025, 12, 1)} | {
        dt.date(2026, month, 1) for month in range(1, 12)
    }
    assert not any(row[6] for row in rows)


def test_top_devices_window_and_population(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(
        """INSERT INTO core.fct_web_requests VALUES
           (1, 'iPhone', 'mobile', false, '2025-12-01 00:00:00'),
           (1, 'iPhone', 'mobile', false, '2025-11-30 23:59:59'),   -- before the window
           (2, 'Pixel 7', 'mobile', false, '2026-11-25 23:59:59'),
           (3, 'Pixel 7', 'mobile', false, '2026-11-26 00:00:00'),  -- after the window
           (NULL, 'iPad', 'tablet', false, '2026-05-01'),           -- anonymous
           (NULL, 'iPad', 'tablet', false, '2026-05-01'),
           (4, 'Spider', 'other', true, '2026-05-01'),              -- a bot
           (5, 'Unknown device', 'mobile', false, '2026-05-01'),
           (5, 'Unknown device', 'other', false, '2026-05-02'),
           (6, 'Unknown device', 'mobile', false, '2026-05-03')"""
    )
    rows = conn.execute(
        f"SELECT * FROM ({top_devices_query(conn, *WINDOW)}) ORDER BY rank"
    ).fetchall()
    assert rows == [
        # the type most of the label's requests had
        (1, "Unknown device", "mobile", 2, 3, Decimal("0.5000")),
        (2, "Pixel 7", "mobile", 1, 1, Decimal("0.2500")),
        (3, "iPhone", "mobile", 1, 1, Decimal("0.2500")),
    ]
