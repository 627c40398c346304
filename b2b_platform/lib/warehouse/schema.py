"""The warehouse's own tables and macros (schemas, etl.*, quarantine, the privacy and
CUIT macros), created once, and the two small query helpers everything uses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from b2b_common.cuit import cuit_is_valid_sql
from b2b_platform.lib.warehouse import slice_versions
from b2b_platform.lib.warehouse.sql import quote_identifier

SCHEMAS: tuple[str, ...] = ("raw", "staging", "core", "reports", "quarantine", "etl")

ETL_DDL = """
CREATE TABLE IF NOT EXISTS quarantine.rejected_records (
    source VARCHAR NOT NULL,
    entity VARCHAR NOT NULL,
    record_key VARCHAR,
    reason_code VARCHAR NOT NULL,
    action VARCHAR NOT NULL,        -- rejected | flagged | merged
    detail VARCHAR,
    raw_record VARCHAR,
    partition_key VARCHAR,
    run_id VARCHAR,
    detected_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS etl.run_log (
    run_id VARCHAR NOT NULL,
    asset_key VARCHAR NOT NULL,
    partition_key VARCHAR,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    broken_at TIMESTAMP,
    status VARCHAR NOT NULL,        -- running | succeeded | failed | interrupted
    rows_read BIGINT,
    rows_written BIGINT,
    rows_rejected BIGINT,
    error VARCHAR,
    pid INTEGER,
    hostname VARCHAR
);
CREATE TABLE IF NOT EXISTS etl.file_manifest (
    source VARCHAR NOT NULL,
    path VARCHAR NOT NULL,
    partition_key VARCHAR,
    size_bytes BIGINT,
    modified_at TIMESTAMP,
    content_hash VARCHAR,
    status VARCHAR NOT NULL,        -- loaded | failed | removed
    rows_read BIGINT,
    rows_loaded BIGINT,
    rows_rejected BIGINT,
    loaded_at TIMESTAMP,
    run_id VARCHAR,
    error VARCHAR,
    load_cutoff TIMESTAMP,          -- the cutoff a web-log file was loaded with, and where
    held_from TIMESTAMP,            -- its lines stood against it: the first held back as
    loaded_until TIMESTAMP,         -- future, the last loaded
    first_line_hash VARCHAR,        -- a web-log file's identity: the same file under any name
    text_bytes BIGINT               -- the length of its text when loaded
);
CREATE TABLE IF NOT EXISTS etl.record_accounting (
    source VARCHAR NOT NULL,
    entity VARCHAR NOT NULL,
    partition_key VARCHAR,
    rows_read BIGINT NOT NULL,
    rows_loaded BIGINT NOT NULL,
    rows_rejected BIGINT NOT NULL,
    rows_merged BIGINT NOT NULL,
    rows_flagged BIGINT NOT NULL,
    run_id VARCHAR,
    recorded_at TIMESTAMP
);
"""

# The key the warehouse's pseudonyms are made with, by a fingerprint (see pseudonym_key):
# one row, recorded by the first step that pseudonymizes.
PSEUDONYM_KEY_DDL = """
CREATE TABLE IF NOT EXISTS etl.pseudonym_key (
    fingerprint VARCHAR NOT NULL,   -- HMAC of a constant under the key, never the key
    recorded_at TIMESTAMP NOT NULL
)
"""

# columns etl.file_manifest gained after its first release
ADD_MANIFEST_COLUMNS = """
ALTER TABLE etl.file_manifest ADD COLUMN IF NOT EXISTS load_cutoff TIMESTAMP;
ALTER TABLE etl.file_manifest ADD COLUMN IF NOT EXISTS held_from TIMESTAMP;
ALTER TABLE etl.file_manifest ADD COLUMN IF NOT EXISTS loaded_until TIMESTAMP;
ALTER TABLE etl.file_manifest ADD COLUMN IF NOT EXISTS first_line_hash VARCHAR;
ALTER TABLE etl.file_manifest ADD COLUMN IF NOT EXISTS text_bytes BIGINT;
"""

# RE2 patterns (DuckDB's), matched within a text: four dotted numbers, not right after
# a word and a slash (Chrome/120.0.0.0 is a version; the character before is kept, as
# \1); eight colon-separated hex groups, or groups around a `::` (not Foo::Bar)
_IPV4 = r"(^|[^0-9A-Za-z./]|[^0-9A-Za-z]/)[0-9]{1,3}(?:\.[0-9]{1,3}){3}\b"
_HEX = "[0-9A-Fa-f]{1,4}"
_IPV6 = (
    rf"\b(?:{_HEX}:){{7}}{_HEX}\b"
    rf"|\b(?:{_HEX}:)*{_HEX}::(?:{_HEX}(?::{_HEX})*\b)?"
    rf"|\B::{_HEX}(?::{_HEX})*\b"
)

# What the quarantine and analyst-facing tables show of personal data: enough for an
# operator to see what was wrong (its shape, first and last character), never the value.
PRIVACY_MACROS = (
    """mask_text(x) AS CASE
           WHEN x IS NULL THEN NULL
           WHEN length(x::VARCHAR) <= 2 THEN repeat('*', length(x::VARCHAR))
           ELSE left(x::VARCHAR, 1) || repeat('*', length(x::VARCHAR) - 2) || right(x::VARCHAR, 1)
       END""",
    # CUITs of people (prefixes 20, 23, 24, 27: the middle digits are their DNI)
    """is_personal_cuit(x) AS
       left(regexp_replace(x::VARCHAR, '[^0-9]', '', 'g'), 2) IN ('20', '23', '24', '27')""",
    """mask_personal(x) AS
       CASE WHEN main.is_personal_cuit(x) THEN main.mask_text(x) ELSE x END""",
    # a birth date shows its year only
    """mask_date(x) AS left(x::VARCHAR, 4) || '-**-**'""",
    # every IPv4- or IPv6-looking token of a text (a log line's client, its forwarded-for
    # list, an address in its URL) replaced by *.*.*.* or *::*; the rest is left as it was
    rf"""mask_addresses(x) AS regexp_replace(
           regexp_replace(x::VARCHAR, '{_IPV4}', '\1*.*.*.*', 'g'), '{_IPV6}', '*::*', 'g')""",
)
# the newest macro: a warehouse without it gets them all again
LAST_MACRO = "mask_addresses"


def ensure_warehouse_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the schemas, etl tables and macros a step relies on (idempotent).

    Cheap once the etl tables exist: then only catalogue lookups, no DDL.
    """
    if not table_exists(conn, "etl.slice_versions"):
        for schema in SCHEMAS:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(schema)}")
        conn.execute(ETL_DDL)
        conn.execute(slice_versions.DDL)
    elif not _has_column(conn, "etl", "file_manifest", "loaded_until"):
        conn.execute(ADD_MANIFEST_COLUMNS)  # a warehouse from before they were recorded
    if not table_exists(conn, "etl.pseudonym_key"):  # new, or from before it was kept
        conn.execute(PSEUDONYM_KEY_DDL)
    if not _has_macro(conn, LAST_MACRO):  # a lake's connection made them already
        create_macros(conn, temporary=False)


def create_macros(conn: duckdb.DuckDBPyConnection, *, temporary: bool) -> None:
    """The CUIT and privacy macros: kept in a warehouse file, so analysts can call them in
    their own queries too; a lake stores no functions, so each connection creates them
    in its temporary catalog, where `main.<name>` finds them all the same."""
    create = "CREATE OR REPLACE TEMP MACRO " if temporary else "CREATE OR REPLACE MACRO main."
    conn.execute(f"{create}cuit_is_valid(c) AS {cuit_is_valid_sql('c')}")
    for statement in PRIVACY_MACROS:
        conn.execute(create + statement)


def _has_column(conn: duckdb.DuckDBPyConnection, schema: str, table: str, column: str) -> bool:
    return bool(
        scalar(
            conn,
            "SELECT count(*) FROM information_schema.columns"
            " WHERE table_schema = ? AND table_name = ? AND column_name = ?",
            [schema, table, column],
        )
    )


def _has_macro(conn: duckdb.DuckDBPyConnection, name: str) -> bool:
    # calling it is ~100x cheaper than listing duckdb_functions()
    try:
        conn.execute(f"SELECT main.{quote_identifier(name)}(NULL)").fetchall()
    except duckdb.CatalogException:
        return False
    return True


def scalar(conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None) -> Any:
    """The one value a query returns (the first column of its first row). The result is
    read to its end: DuckDB refuses a relation on a connection with a result half read."""
    return conn.execute(sql, list(params or [])).fetchall()[0][0]


def table_exists(conn: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = table.split(".")
    return bool(
        scalar(
            conn,
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [schema, name],
        )  # type: ignore[index]
    )
