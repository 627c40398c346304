"""Which months of orders changed in the source since they were last extracted.

One grouped pass over the source gives, per monthly partition, a fingerprint of its
orders and of their lines:

- orders: how many, the latest `updated_at` (the platform bumps it on every change, a
  late status update included) and a checksum of ids, amounts and text lengths;
- order lines: how many, and a checksum of every column (lines carry no `updated_at`,
  so a corrected quantity or price must change the checksum itself).

Lines whose order does not exist count in the last month, where they are extracted.
The fingerprint is recorded with the month's raw slice, in the same transaction; a
month whose fingerprint is unchanged is not extracted again. A change that keeps every
count, the latest `updated_at` and every checksum the same is the one kind this misses;
emptying `etl.source_fingerprints` makes the next run extract every month again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from b2b_platform.lib.asset_step import month_bounds
from b2b_platform.lib.resources import SourceDatabaseResource
from b2b_platform.lib.warehouse.schema import table_exists
from b2b_platform.lib.warehouse.slice_versions import digest
from b2b_platform.lib.warehouse.sql import qualified_name
from b2b_platform.lib.warehouse.writes import TableSlice
from source_db.columns import PLATFORM_COLUMNS

TABLE = "etl.source_fingerprints"

ORDER_TERMS = (
    "o.order_id * 7 + o.company_id * 31 + o.customer_id * 17 + coalesce(o.user_id, 0) * 13"
    " + length(o.status) * 101 + length(coalesce(o.shipping_city, '')) * 3"
    " + length(coalesce(o.shipping_province, '')) * 5"
)
LINE_TERMS = (
    "i.order_id * 7 + i.line_number * 131 + i.product_id * 31 + i.supplier_id * 17"
    " + i.quantity * 1009 + CAST(round(coalesce(i.unit_price, 0) * 100) AS BIGINT) * 13"
    " + CAST(round(coalesce(i.discount_pct, 0) * 100) AS BIGINT) * 3"
)
DAY = "substr(CAST(o.ordered_at AS TEXT), 1, 10)"  # an order's day, as YYYY-MM-DD text
# the load cutoff's parameter, bound as a timestamp in each source dialect: SQLite keeps
# timestamps as ISO text, PostgreSQL casts the text it is given
CUTOFF_PARAMETER = {"sqlite": "?", "postgresql": "CAST($1 AS TIMESTAMP)"}


@dataclass(frozen=True)
class MonthFingerprint:
    orders: int
    order_items: int
    text: str  # everything compared, counts included
    # lines whose order exists nowhere (the last month's only): when there are none, its
    # extraction need not look through every line of the source for them
    orphan_items: int = 0


def month_of_day(day: str | None, partition_keys: Sequence[str]) -> str:
    """The monthly partition of a day (its YYYY-MM-DD text), open-ended at both ends as
    the extraction's predicate is: earlier days in the first month, later days, text
    that is not a date and lines without an order in the last."""
    if day is not None:
        for key in partition_keys[:-1]:
            if day < f"{month_bounds(key)[1]:%Y-%m-%d}":
                return key
    return partition_keys[-1]


def source_fingerprints(
    source_db: SourceDatabaseResource, partition_keys: Sequence[str], cutoff: dt.datetime
) -> dict[str, MonthFingerprint]:
    """Every month's fingerprint, from two aggregate queries over the source, run at once.

    Both group by day (a few hundred groups), which the source computes faster than a
    month expression; the days are summed into months here. The orders after the load
    cutoff are counted too: staging rejects them as future_order, so when the clock
    passes one of them its month must be read again.
    """
    orders_table = qualified_name(source_db.qualified("orders"))
    items_table = qualified_name(source_db.qualified("order_items"))
    queries = [
        f"SELECT {DAY} AS day, count(*) AS n, max(o.updated_at) AS latest,"
        f" sum({ORDER_TERMS}) AS checksum,"
        f" sum(CASE WHEN o.ordered_at >= {CUTOFF_PARAMETER[source_db.database.dialect]}"
        " THEN 1 ELSE 0 END)"
        f" AS after_cutoff FROM {orders_table} o GROUP BY 1",
        # lines summed per order first (in key order), then their orders looked up once
        # each; a line without an order has no day: it belongs to the last month
        f"SELECT {DAY} AS day, sum(l.n) AS n, sum(l.checksum) AS checksum FROM"
        f" (SELECT i.order_id, count(*) AS n, sum({LINE_TERMS}) AS checksum FROM {items_table} i"
        f" GROUP BY i.order_id) l LEFT JOIN {orders_table} o ON o.order_id = l.order_id GROUP BY 1",
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        cutoff_text = cutoff.isoformat(sep=" ")
        order_days, line_days = pool.map(
            lambda q, p: source_db.fetch_aggregate(q, p).to_pylist(), queries, [[cutoff_text], []]
        )
    months = {key: [0, None, 0, 0, 0, 0] for key in partition_keys}  # orders, latest, ...
    for row in order_days:
        month = months[month_of_day(row["day"], partition_keys)]
        month[0] += int(row["n"])  # PostgreSQL's sums arrive as decimals (or text)
        if row["latest"] is not None and (month[1] is None or row["latest"] > month[1]):
            month[1] = row["latest"]
        month[2] += int(row["checksum"] or 0)
        month[3] += int(row["after_cutoff"] or 0)
    orphans = 0
    for row in line_days:
        month = months[month_of_day(row["day"], partition_keys)]
        month[4] += int(row["n"])
        month[5] += int(row["checksum"] or 0)
        if row["day"] is None:  # no order to give it a day
            orphans += int(row["n"])
    return {
        key: MonthFingerprint(
            orders=int(parts[0]),
            order_items=int(parts[4]),
            text=repr([str(p) for p in parts]),
            orphan_items=orphans if key == partition_keys[-1] else 0,
        )
        for key, parts in months.items()
    }


def _column_terms(table: str) -> str:
    """Portable checksum terms over every column of a snapshot table (SQLite and
    PostgreSQL alike): numbers by value, dates and times by their digits, text by
    length. Weights differ per column, so a value moved between columns changes it."""
    terms = []
    for weight, (column, kind) in enumerate(PLATFORM_COLUMNS[table].items(), start=3):
        if kind == "bool":  # PostgreSQL casts a boolean to INTEGER only
            value = f"coalesce(CAST({column} AS INTEGER), 0)"
        elif kind == "int":
            value = f"coalesce(CAST({column} AS BIGINT), 0) % 1000003"
        elif kind == "decimal":
            value = f"CAST(round(coalesce({column}, 0) * 100) AS BIGINT) % 1000003"
        elif kind in ("date", "timestamp"):
            digits = f"substr(CAST({column} AS TEXT), 1, 19)"
            for sign in ("-", ":", " ", "T"):
                digits = f"replace({digits}, '{sign}', '')"
            value = f"CAST(coalesce({digits}, '0') AS BIGINT) % 1000003"
        else:
            value = f"length(coalesce({column}, ''))"
        terms.append(f"sum({value}) * {weight * 7919 % 1009}")
    return " + ".join(terms)


COLUMN_TERMS = {table: _column_terms(table) for table in PLATFORM_COLUMNS}
# the latest `updated_at` of a table that has one
LATEST = {
    table: "max(updated_at)" if "updated_at" in columns else "NULL"
    for table, columns in PLATFORM_COLUMNS.items()
}


def table_fingerprint(source_db: SourceDatabaseResource, table: str) -> tuple[int, str]:
    """A snapshot table's version: row count, latest `updated_at` when it has one, and a
    checksum of every column (with the row count), in one aggregate query. Like the orders' fingerprint, it
    misses only a change that keeps all of them equal."""
    row = source_db.fetch_aggregate(
        f"SELECT count(*) AS n, {LATEST[table]} AS latest, {COLUMN_TERMS[table]} AS checksum"
        f" FROM {qualified_name(source_db.qualified(table))}"
    ).to_pylist()[0]
    return int(row["n"]), digest(table, row["n"], str(row["latest"]), str(row["checksum"]))


def recorded_fingerprints(conn: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """partition key -> the fingerprint its raw orders slice was extracted at."""
    if not table_exists(conn, TABLE):
        return {}
    rows = conn.execute(
        f"SELECT partition_key, fingerprint FROM {TABLE} WHERE entity = 'orders'"
    ).fetchall()
    return dict(rows)


def fingerprint_slice(
    conn: duckdb.DuckDBPyConnection, partition_key: str, fingerprint: MonthFingerprint
) -> TableSlice:
    """The month's fingerprint row, replaced in the same transaction as its raw slice."""
    conn.register(
        "month_fingerprint",
        pa.table({
            "entity": ["orders"], "partition_key": [partition_key],
            "fingerprint": [fingerprint.text],
        }),
    )  # fmt: skip
    return TableSlice(
        TABLE,
        "SELECT *, current_timestamp::TIMESTAMP AS recorded_at FROM month_fingerprint",
        where="entity = 'orders' AND partition_key = ?",
        params=[partition_key],
    )
