"""One pseudonym key per warehouse.

The pseudonyms in core.dim_customer are an HMAC under a key kept outside the warehouse
(B2B_PSEUDONYM_KEY, or the key file in DAGSTER_HOME). Two deployments writing one
warehouse with two keys (say two DAGSTER_HOMEs, each making its own key file) would
rebuild it with each key in turn, and its pseudonyms would change from run to run. So
the warehouse keeps its key's fingerprint in etl.pseudonym_key, an HMAC of a constant
under the key (which tells nothing of the key), recorded by the first step that
pseudonymizes; a step or a `b2b run` with another key is refused. Rotating the key on
purpose records the new one in its place (`b2b run --new-pseudonym-key`).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from contextlib import suppress

import duckdb

from b2b_common.errors import UserError
from b2b_platform.lib.warehouse.connection import warehouse_connection
from b2b_platform.lib.warehouse.location import WarehouseLocation
from b2b_platform.lib.warehouse.schema import ensure_warehouse_schema, table_exists
from b2b_platform.lib.warehouse.write_conflicts import retry_on_conflict
from b2b_platform.lib.warehouse.writer_sections import exclusive_section
from b2b_platform.lib.warehouse.writes import utc_now

TABLE = "etl.pseudonym_key"
ANOTHER_KEY = (
    "this warehouse was built with another pseudonym key: set B2B_PSEUDONYM_KEY or"
    " DAGSTER_HOME to the one it was built with (rotating it: `b2b run --new-pseudonym-key`)"
)


def key_fingerprint(key: bytes) -> str:
    """Which key this is, as a keyed digest of a constant: never the key."""
    return hmac.new(key, b"b2b warehouse pseudonym key", "sha256").hexdigest()[:32]


def recorded_fingerprint(conn: duckdb.DuckDBPyConnection) -> str | None:
    """The fingerprint of the key the warehouse's pseudonyms are made with; None before
    the first step that pseudonymizes."""
    if not table_exists(conn, TABLE):
        return None
    rows = conn.execute(f"SELECT fingerprint FROM {TABLE} ORDER BY recorded_at DESC LIMIT 1")
    found = rows.fetchall()
    return found[0][0] if found else None


def check_key(recorded: str | None, key: bytes | None) -> None:
    """Refuse a key other than the recorded one; `key` None is a key file not made yet,
    whose new key would be another."""
    if recorded is not None and (key is None or key_fingerprint(key) != recorded):
        raise UserError(ANOTHER_KEY)


def claim_key(
    location: WarehouseLocation,
    load_key: Callable[[], bytes],
    key_exists: bool,
    *,
    replace: bool = False,
) -> bytes:
    """The key to pseudonymize the warehouse with: `load_key()` (which may make a key
    file), refused unless it is the warehouse's key, and recorded as that when the
    warehouse has none yet or, with `replace`, in place of the one it has. A key that
    does not exist yet (`key_exists` False) is not made for a warehouse that has one."""
    with warehouse_connection(location) as conn:
        with exclusive_section(location, "table definitions"):  # see create_missing_tables
            ensure_warehouse_schema(conn)
        # on a lake, two writers with two keys must not both find none recorded
        with exclusive_section(location, "pseudonym key"):
            recorded = None if replace else recorded_fingerprint(conn)
            if not key_exists:
                check_key(recorded, None)
            key = load_key()
            check_key(recorded, key)
            if recorded is None:
                retry_on_conflict(lambda: _record(conn, key_fingerprint(key)))
    return key


def _record(conn: duckdb.DuckDBPyConnection, fingerprint: str) -> None:
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(f"DELETE FROM {TABLE}")
        conn.execute(f"INSERT INTO {TABLE} VALUES (?, ?)", [fingerprint, utc_now()])
        conn.execute("COMMIT")
    except BaseException:
        with suppress(duckdb.TransactionException):  # a failed COMMIT has rolled back
            conn.execute("ROLLBACK")
        raise


def check_warehouse_key(
    location: WarehouseLocation, key: bytes | None, *, wait_seconds: float = 2.0
) -> None:
    """Refuse, before a run does any work, a key other than the warehouse's (None: a key
    file not made yet). A warehouse busy with another writer is not waited for: the
    step that pseudonymizes checks again."""
    try:
        with warehouse_connection(location, read_only=True, wait_seconds=wait_seconds) as conn:
            recorded = recorded_fingerprint(conn)
    except UserError:  # no warehouse yet (its first step records the key), or busy
        return
    check_key(recorded, key)
