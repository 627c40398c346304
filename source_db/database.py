"""Open the platform database from a URL, create its schema, bulk-load and read tables.

Both dialects go through ADBC so that loading and extraction move Arrow batches
(PostgreSQL COPY, SQLite prepared batches), never Python rows.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import polars as pl

from b2b_common.errors import UserError
from b2b_common.password_masking import mask_secrets, passwords_of

DDL_DIR = Path(__file__).parent / "ddl"
# a SQLite file's state is trusted once it has not changed for this long (file_state):
# on file systems keeping fractions of a second, and on those keeping whole seconds
SETTLED_SECONDS = 0.1
COARSE_SETTLED_SECONDS = 2.0

# Load order respects the enforced references (companies before suppliers, ...).
PLATFORM_TABLES: tuple[str, ...] = (
    "companies",
    "suppliers",
    "products",
    "supplier_products",
    "customers",
    "platform_users",
    "orders",
    "order_items",
)


class SourceDatabaseError(UserError):
    """A user-fixable problem with the source database URL or server."""


@dataclass(frozen=True)
class SourceDatabase:
    """A platform database addressed by `sqlite:///path` or `postgresql://...`."""

    url: str

    def __post_init__(self) -> None:
        try:
            scheme = urlparse(self.url).scheme
        except ValueError as exc:  # a stray bracket ("Invalid IPv6 URL")
            raise SourceDatabaseError(
                f"source database URL {redact_url(self.url)!r} is not a URL: {exc}"
            ) from None
        if scheme not in ("sqlite", "postgresql", "postgres"):
            raise SourceDatabaseError(
                f"source database URL {redact_url(self.url)!r} must start with sqlite:/// "
                "or postgresql://"
            )
        if scheme == "sqlite" and not self.sqlite_path.name:
            raise SourceDatabaseError(
                f"source database URL {redact_url(self.url)!r} names no file: "
                "use sqlite:///path/to/file.db"
            )

    @property
    def dialect(self) -> str:
        return "sqlite" if urlparse(self.url).scheme == "sqlite" else "postgresql"

    @property
    def sqlite_path(self) -> Path:
        # sqlite:///relative/path and sqlite:////absolute/path, as SQLAlchemy reads them.
        return Path(self.url.removeprefix("sqlite:///"))

    @property
    def schema(self) -> str | None:
        return "b2b" if self.dialect == "postgresql" else None

    def file_state(self) -> str | None:
        """What changes whenever a SQLite file's content may have: the identity, size and
        times of the file and of its write-ahead log, the database header's change
        counter (bumped by every commit outside WAL mode) and the log's header (new
        salts whenever the log starts over; each commit in WAL mode grows the log).

        None for PostgreSQL, for a missing file, and for a file changed too recently: a
        later write within the same tick of the file system's clock could leave every
        time as it is (git calls such entries racy). Too recently is SETTLED_SECONDS
        where the times carry fractions of a second (Linux's file systems: a tick is at
        most 10 ms), COARSE_SETTLED_SECONDS where they are whole seconds.
        """
        if self.dialect != "sqlite":
            return None
        parts: list[str] = []
        times: list[int] = []
        wal = self.sqlite_path.with_name(self.sqlite_path.name + "-wal")
        # the database's change counter (bytes 24-27 of its header), the whole log header
        for path, header_bytes in ((self.sqlite_path, slice(24, 28)), (wal, slice(0, 32))):
            try:
                # not blocking on a FIFO, never reading what is not a regular file
                fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            except FileNotFoundError:
                if path == wal:
                    parts.append("no-wal")
                    continue
                return None
            except OSError:
                return None
            try:
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode):
                    return None  # the connection names what is wrong with it
                header = os.pread(fd, header_bytes.stop, 0)[header_bytes]
            except OSError:
                return None
            finally:
                os.close(fd)
            parts.append(
                f"{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}"
                f":{info.st_ctime_ns}:{header.hex()}"
            )
            times += [info.st_mtime_ns, info.st_ctime_ns]
        fine = any(t % 1_000_000_000 for t in times)
        settle = SETTLED_SECONDS if fine else COARSE_SETTLED_SECONDS
        if time.time_ns() - max(times) < settle * 1e9:
            return None
        return ";".join(parts)

    def qualified(self, table: str) -> str:
        return f"{self.schema}.{table}" if self.schema else table

    @contextmanager
    def connect(self, *, create: bool = False) -> Iterator[Any]:
        """An ADBC DB-API connection; raises SourceDatabaseError when unreachable.

        Without `create`, a missing SQLite file is an error (SQLite would silently
        create an empty database and extraction would find no tables).
        """
        if self.dialect == "sqlite" and not create and not self.sqlite_path.is_file():
            raise SourceDatabaseError(
                f"source database {self.sqlite_path.absolute()} does not exist: run `b2b generate` "
                "or set B2B_SOURCE_DB_URL"
            )
        try:
            if self.dialect == "sqlite":
                import adbc_driver_sqlite.dbapi as driver

                conn = driver.connect(str(self.sqlite_path))
            else:
                import adbc_driver_postgresql.dbapi as driver

                conn = driver.connect(self.url.replace("postgres://", "postgresql://", 1))
        except Exception as exc:  # driver errors carry multi-line server text
            text = str(exc).strip() or repr(exc)
            # the driver's text can quote part of the URL (libpq echoes a bad escape):
            # masked whole before its first line is taken, and kept as the cause only
            # when it holds no password
            masked = redact_text(text, self.url)
            first_line = masked.splitlines()[0]
            cause = exc if masked == text else None
            raise SourceDatabaseError(
                f"cannot open source database {self.redacted_url}: {first_line}"
            ) from cause
        try:
            yield conn
        finally:
            conn.close()

    @property
    def redacted_url(self) -> str:
        return redact_url(self.url)

    def create_schema(self, *, drop_existing: bool = False) -> None:
        """Create the platform tables (optionally dropping an existing copy first)."""
        if self.dialect == "sqlite":
            self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        ddl = (DDL_DIR / f"{self.dialect}.sql").read_text()
        if drop_existing:
            ddl = (DDL_DIR / f"{self.dialect}_drop.sql").read_text() + ddl
        with self.connect(create=True) as conn:
            cur = conn.cursor()
            for statement in _split_statements(ddl):
                cur.execute(statement)
            conn.commit()

    def load_tables(self, frames: Mapping[str, pl.DataFrame]) -> dict[str, int]:
        """Append each frame to its table in one transaction; returns rows per table."""
        with self.loader() as load:
            load(frames)
        return load.counts

    @contextmanager
    def loader(self) -> Iterator[TableLoader]:
        """A TableLoader on one connection, committed when the block ends without error.

        For tables generated in batches (orders a month at a time): each batch is appended
        as it comes, and a failure part-way leaves no half-loaded database behind.
        """
        with self.connect() as conn:
            load = TableLoader(self, conn.cursor())
            yield load
            conn.commit()

    def read_table(self, query: str) -> pl.DataFrame:
        """Run a query and return the result as a polars frame (Arrow end to end)."""
        with self.connect() as conn:
            cur = conn.cursor()
            cur.execute(query)
            return pl.from_arrow(cur.fetch_arrow_table())  # type: ignore[return-value]

    def _adapt_types(self, frame: pl.DataFrame) -> pl.DataFrame:
        if self.dialect == "sqlite":
            # SQLite has no decimal type; NUMERIC affinity stores REAL anyway.
            return frame.with_columns(pl.col(pl.Decimal).cast(pl.Float64))
        # COPY BINARY needs the exact column type: every id and count is INTEGER (int4).
        return frame.with_columns(pl.col(pl.Int64).cast(pl.Int32))


class TableLoader:
    """Appends batches of platform tables inside one open transaction (see loader())."""

    def __init__(self, database: SourceDatabase, cursor: Any) -> None:
        self._database = database
        self._cursor = cursor
        self.counts: dict[str, int] = {}  # rows appended so far, per table in load order

    def __call__(self, frames: Mapping[str, pl.DataFrame]) -> None:
        """Append each frame to its table, in PLATFORM_TABLES order."""
        db = self._database
        for table in PLATFORM_TABLES:
            if table not in frames:
                continue
            frame = db._adapt_types(frames[table])
            if frame.height:
                self._cursor.adbc_ingest(
                    table, frame.to_arrow(), mode="append", db_schema_name=db.schema
                )
            self.counts[table] = self.counts.get(table, 0) + frame.height


def redact_url(url: str) -> str:
    """The URL with its password, if any, shown as *** (postgresql://user:***@host/db)."""
    return redact_text(url, url)


def redact_text(text: str, url: str) -> str:
    """`text` (say a driver's error) with the URL's password replaced by ***."""
    return mask_secrets(text, *passwords_of(url))


def _split_statements(ddl: str) -> list[str]:
    lines = [line for line in ddl.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
