"""Report SQL at the edges of the window, on core tables written by hand (no pipeline)."""

import datetime as dt
from decimal import Decimal

import duckdb
import pytest

from b2b_common.dates import load_cutoff, report_window, same_point_last_month
from b2b_platform.defs.reports import monthly_sales, top_devices
from b2b_platform.lib.report_step import window_variables
from b2b_platform.lib.warehouse.sql import bind_variables


def monthly_sales_query(conn: duckdb.DuckDBPyConnection, as_of: dt.date, first: dt.date) -> str:
    """The report's SQL file, its variables bound on `conn` as the asset binds them for
    a run with B2B_AS_OF=`as_of` (the load cutoff is the end of that day)."""
    start, end = report_window(as_of)
    compared_with = same_point_last_month(load_cutoff(as_of))
    bind_variables(conn, monthly_sales.monthly_sales_variables(start, end, first, compared_with))
    return monthly_sales.QUERY


def top_devices_query(conn: duckdb.DuckDBPyConnection, start: dt.date, end: dt.date) -> str:
    bind_variables(conn, {**window_variables(start, end), "top": top_devices.TOP})
    return top_devices.QUERY


AS_OF = dt.date(2026, 11, 25)
WINDOW = report_window(AS_OF)  # 1 Nov 2025 to the end of 25 Nov 2026


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


def _sales(conn: duckdb.DuckDBPyConnection, as_of: dt.date, first: dt.date) -> list[tuple]:
    query = monthly_sales_query(conn, as_of, first)
    return conn.execute(f"SELECT * FROM ({query}) ORDER BY month").fetchall()


def test_monthly_sales_window_start_and_undefined_change(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(
        """INSERT INTO core.fct_order_lines VALUES
           (1, '2025-10-31 23:59:59', 1, 100.00),  -- the month before the window
           (2, '2025-11-01 00:00:00', 2, 50.00),   -- first instant of the window
           (2, '2025-11-01 00:00:00', 1, 25.00),   -- same order, second line
           (3, '2026-01-14 10:00:00', 1, 10.00),   -- after an empty December
           (6, '2026-10-20 08:00:00', 1, 4.00),    -- inside 1-25 October
           (7, '2026-10-26 00:00:00', 1, 100.00),  -- October, after its 25th
           (4, '2026-11-25 23:59:59', 1, 5.00),    -- last second of the window
           (5, '2026-11-26 00:00:00', 9, 999.00)   -- the day after the as-of date"""
    )
    rows = _sales(conn, AS_OF, dt.date(2025, 10, 1))
    # the 12 complete months December 2025 to October 2026 before it, and November to date
    assert len(rows) == 13 and rows[0][0] == dt.date(2025, 11, 1)
    november, december, january = rows[0], rows[1], rows[2]
    # -25% against October 2025, which was loaded but lies outside the window
    assert november == (dt.date(2025, 11, 1), 1, 3, Decimal("75.00"), Decimal("75.00"),
                        Decimal("-25.00"), False)  # fmt: skip
    assert december[1:4] == (0, 0, Decimal("0.00")) and december[5] == Decimal("-100.00")
    assert january[5] is None  # no change can be computed from a month with no revenue
    to_date = rows[-1]
    # like for like: 1-25 November (5.00) against 1-25 October (4.00), not all of October
    assert to_date == (dt.date(2026, 11, 1), 1, 1, Decimal("5.00"), Decimal("5.00"),
                       Decimal("25.00"), True)  # fmt: skip


def test_monthly_sales_complete_as_of_month_is_not_partial(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    rows = _sales(conn, dt.date(2026, 11, 30), dt.date(2025, 11, 1))
    assert [row[0] for row in rows] == [dt.date(2025, 12, 1)] + [
        dt.date(2026, month, 1) for month in range(1, 12)
    ]
    assert not any(row[6] for row in rows)


@pytest.mark.parametrize(
    ("as_of", "first_month", "last_month", "rows", "partial"),
    [
        (dt.date(2026, 12, 1), dt.date(2025, 12, 1), dt.date(2026, 12, 1), 13, True),
        (dt.date(2026, 12, 6), dt.date(2025, 12, 1), dt.date(2026, 12, 1), 13, True),
        (dt.date(2026, 12, 31), dt.date(2026, 1, 1), dt.date(2026, 12, 1), 12, False),
        (dt.date(2027, 1, 1), dt.date(2026, 1, 1), dt.date(2027, 1, 1), 13, True),
        (dt.date(2028, 2, 29), dt.date(2027, 3, 1), dt.date(2028, 2, 1), 12, False),
        (dt.date(2028, 2, 28), dt.date(2027, 2, 1), dt.date(2028, 2, 1), 13, True),
    ],
)
def test_the_past_year_on_any_day(
    conn: duckdb.DuckDBPyConnection, as_of, first_month, last_month, rows, partial
) -> None:
    """The 12 most recent complete months, and the month to date unless the as-of day is
    the last of its month, on the first days of a month, at a year's turn, in February."""
    sales = _sales(conn, as_of, first_month)
    assert len(sales) == rows
    assert (sales[0][0], sales[-1][0]) == (first_month, last_month)
    assert [row[6] for row in sales] == [False] * (rows - 1) + [partial]


def test_a_month_to_date_compares_with_the_same_days_before(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    conn.execute(
        """INSERT INTO core.fct_order_lines VALUES
           (1, '2028-02-10 12:00:00', 1, 80.00),   -- February, inside 1-30
           (2, '2028-02-29 23:00:00', 1, 20.00),   -- the leap day: still inside 1-30
           (3, '2028-03-30 23:59:59', 1, 150.00),  -- March to date
           (4, '2026-12-01 00:00:00', 1, 10.00),   -- day 1 of December to date
           (5, '2026-11-01 23:59:59', 1, 40.00),   -- day 1 of November
           (6, '2026-11-02 00:00:00', 1, 999.00)   -- day 2 of November: not compared"""
    )
    # 30 March against the whole of February (it has no 30th): +50%
    march = _sales(conn, dt.date(2028, 3, 30), dt.date(2027, 3, 1))[-1]
    assert march[0] == dt.date(2028, 3, 1) and march[5] == Decimal("50.00") and march[6]
    # 1 December against 1 November: -75%
    december = _sales(conn, dt.date(2026, 12, 1), dt.date(2025, 12, 1))[-1]
    assert december[3] == Decimal("10.00") and december[5] == Decimal("-75.00")


def test_top_devices_window_and_population(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(
        """INSERT INTO core.fct_web_requests VALUES
           (1, 'iPhone', 'mobile', false, '2025-11-01 00:00:00'),
           (1, 'iPhone', 'mobile', false, '2025-10-31 23:59:59'),   -- before the window
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
