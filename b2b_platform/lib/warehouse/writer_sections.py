"""Work that only one writer may do at a time, even on a lake.

A lake lets writers commit side by side, and refuses a commit whose deletes collide
with another's. It cannot see two writers *inserting* the same new key: two months
staged at once would both find a user agent new and both add it to the shared lookup.
Such a read-then-add runs inside `exclusive_section`: free on a DuckDB file, which has
one writer anyway; on a lake, a PostgreSQL advisory lock in the catalog database,
which the server releases when its holder's session ends, killed or not.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from b2b_platform.lib.warehouse.location import WarehouseLocation


@contextmanager
def exclusive_section(location: WarehouseLocation | None, name: str) -> Iterator[None]:
    """Hold the warehouse-wide lock called `name` for the duration of the block."""
    if location is None or not location.is_lake:
        yield
        return
    import psycopg2

    conn = psycopg2.connect(location.catalog_conninfo)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(hashtext(%s))", [f"b2b:{name}"])
        yield
    finally:
        conn.close()  # the session's end releases the lock
