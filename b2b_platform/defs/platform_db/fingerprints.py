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
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from b2b_platform.lib.asset_step import month_bounds
from b2b_platform.lib.resources import SourceDatabaseResource
from b2b_platform.lib.slice_versions import digest
from b2b_platform.lib.warehouse import TableSlice, table_exists
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


@dataclass(frozen=True)
class MonthFingerprint:
    orders: int
    order_items: int
    text: str  # everything compared, counts included


def month_bucket(column: str, partition_keys: Sequence[str]) -> str:
    """The monthly partition a timestamp falls in, open-ended at both ends (portable SQL:
    the same text in SQLite and PostgreSQL, like the extraction's own predicate)."""
    whens = " ".join(
        f"WHEN {column} < '{month_bounds(key)[1]:%Y-%m-%d}' THEN '{key}'"
        for key in partition_keys[:-1]
    )
    return f"CASE {whens} ELSE '{partition_keys[-1]}' END" if whens else f"'{partition_keys[-1]}'"


def source_fingerprints(
    source_db: SourceDatabaseResource, partition_keys: Sequence[str], cutoff: dt.datetime
) -> dict[str, MonthFingerprint]:
    """Every month's fingerprint, from three aggregate queries over the source.

    The orders after the load cutoff are counted too: staging rejects them as
    future_order, so when the clock passes one of them its month must be read again.
    """
    orders, items = source_db.qualified("orders"), source_db.qualified("order_items")
    bucket = month_bucket("o.ordered_at", partition_keys)
    by_month: dict[str, dict[str, tuple]] = {key: {} for key in partition_keys}
    order_rows = source_db.fetch_arrow(
        f"SELECT {bucket} AS month, count(*) AS n, max(o.updated_at) AS latest,"
        f" sum({ORDER_TERMS}) AS checksum,"
        f" sum(CASE WHEN o.ordered_at >= '{cutoff.isoformat(sep=' ')}' THEN 1 ELSE 0 END)"
        f" AS after_cutoff FROM {orders} o GROUP BY 1"
    ).to_pylist()
    line_rows = source_db.fetch_arrow(
        f"SELECT {bucket} AS month, count(*) AS n, sum({LINE_TERMS}) AS checksum"
        f" FROM {items} i JOIN {orders} o ON o.order_id = i.order_id GROUP BY 1"
    ).to_pylist()
    orphans = source_db.fetch_arrow(
        f"SELECT count(*) AS n, sum({LINE_TERMS}) AS checksum FROM {items} i"
        f" WHERE NOT EXISTS (SELECT 1 FROM {orders} o WHERE o.order_id = i.order_id)"
    ).to_pylist()[0]
    for row in order_rows:
        by_month[row["month"]]["orders"] = (
            row["n"], str(row["latest"]), str(row["checksum"]), row["after_cutoff"]
        )  # fmt: skip
    for row in line_rows:
        by_month[row["month"]]["order_items"] = (row["n"], str(row["checksum"]))
    by_month[partition_keys[-1]]["orphan_items"] = (orphans["n"], str(orphans["checksum"]))
    result = {}
    for key, parts in by_month.items():
        result[key] = MonthFingerprint(
            orders=int(parts.get("orders", (0,))[0]),
            order_items=int(parts.get("order_items", (0,))[0])
            + int(parts.get("orphan_items", (0,))[0]),
            text=repr(sorted(parts.items())),
        )
    return result


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


def table_fingerprint(source_db: SourceDatabaseResource, table: str) -> tuple[int, str]:
    """A snapshot table's version: row count, latest `updated_at` when it has one, and a
    checksum of every column (with the row count), in one aggregate query. Like the orders' fingerprint, it
    misses only a change that keeps all of them equal."""
    latest = "max(updated_at)" if "updated_at" in PLATFORM_COLUMNS[table] else "NULL"
    row = source_db.fetch_arrow(
        f"SELECT count(*) AS n, {latest} AS latest, {_column_terms(table)} AS checksum"
        f" FROM {source_db.qualified(table)}"
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
