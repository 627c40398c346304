"""Resources for every external thing the warehouse touches, built from the environment."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pyarrow as pa
from dagster_duckdb import DuckDBResource

from b2b_platform.lib.settings import Settings, add_months
from source_db import SourceDatabase, SourceDatabaseError


class SourceDatabaseResource(dg.ConfigurableResource):
    """The B2B platform's database (SQLite file or PostgreSQL schema b2b), read through ADBC."""

    url: str

    @property
    def database(self) -> SourceDatabase:
        return SourceDatabase(self.url)

    def qualified(self, table: str) -> str:
        return self.database.qualified(table)

    def fetch_arrow(self, query: str) -> pa.Table:
        """Run a query and return the whole result as one Arrow table (no Python rows)."""
        try:
            with self.database.connect() as conn:
                cur = conn.cursor()
                cur.execute(query)
                return cur.fetch_arrow_table()
        except SourceDatabaseError as exc:
            # A wrong URL or missing file will not fix itself: do not spend retries on it.
            raise dg.Failure(description=str(exc), allow_retries=False) from exc


class DirectoryResource(dg.ConfigurableResource):
    """A directory of input files (web logs or lead workbooks)."""

    path: str

    @property
    def directory(self) -> Path:
        # absolute, so a file keeps its manifest identity however the directory was given
        return Path(self.path).expanduser().absolute()


class CalendarResource(dg.ConfigurableResource):
    """The reporting calendar: the as-of day, the first partition month, the load cutoff."""

    as_of: str  # YYYY-MM-DD
    as_of_is_fixed: bool
    first_month: str  # YYYY-MM-DD, first day of the first monthly partition

    @property
    def as_of_date(self) -> dt.date:
        return dt.date.fromisoformat(self.as_of)

    @property
    def first_month_start(self) -> dt.date:
        return dt.date.fromisoformat(self.first_month)

    @property
    def load_cutoff(self) -> dt.datetime:
        end_of_as_of = dt.datetime.combine(self.as_of_date + dt.timedelta(days=1), dt.time(0))
        if self.as_of_is_fixed:
            return end_of_as_of
        return min(end_of_as_of, dt.datetime.now(dt.UTC).replace(tzinfo=None))

    @property
    def report_window(self) -> tuple[dt.date, dt.date]:
        """DESIGN 7: [first day of the month 11 months before the as-of month, as-of + 1 day)."""
        return add_months(self.as_of_date, -11), self.as_of_date + dt.timedelta(days=1)


class Pseudonymizer(dg.ConfigurableResource):
    """Turns personal identifiers into stable salted hashes before they reach `core`."""

    salt: str

    def hash_sql(self, *parts: str) -> str:
        """SQL for the SHA-256 of salt and the given SQL expressions (NULL if any is NULL)."""
        salt = self.salt.replace("'", "''")
        return f"sha256('{salt}' || '|' || " + " || '|' || ".join(parts) + ")"


class QualityThresholds(dg.ConfigurableResource):
    """Reject-rate ceilings above which a blocking check stops bad data reaching reports."""

    # The first and last months also carry what lies outside the range (old, future and
    # orphaned orders), so their share of rejects runs higher than a middle month's.
    max_reject_rate: float = 0.10


class LogParsing(dg.ConfigurableResource):
    """How web-log lines are parsed: whose X-Forwarded-For entries are believed."""

    # CIDRs of the proxies in front of the web servers (B2B_TRUSTED_PROXIES): a line's
    # client is the right-most forwarded address outside them
    trusted_proxies: list[str]


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "duckdb": DuckDBResource(
            database=str(settings.warehouse_path),
            # bounded memory on a 2-core machine (spills beyond it); checkpoint when the WAL
            # reaches 1GB rather than 16MB, so a month's commit does not rewrite the file;
            # no query here relies on insertion order, and dropping it lets inserts run in
            # parallel (3x faster on a month of web requests)
            connection_config={
                "memory_limit": "1GB",
                "threads": 2,
                "checkpoint_threshold": "1GB",
                "preserve_insertion_order": False,
            },
        ),
        "source_db": SourceDatabaseResource(url=settings.source_db_url),
        "leads_dir": DirectoryResource(path=str(settings.leads_dir)),
        "log_dir": DirectoryResource(path=str(settings.log_dir)),
        "calendar": CalendarResource(
            as_of=settings.as_of.isoformat(),
            as_of_is_fixed=settings.as_of_is_fixed,
            first_month=settings.first_month.isoformat(),
        ),
        "quality": QualityThresholds(max_reject_rate=settings.max_reject_rate),
        "pseudonymizer": Pseudonymizer(salt=settings.pseudonym_salt),
        "log_parsing": LogParsing(trusted_proxies=list(settings.trusted_proxies)),
        "report_dir": DirectoryResource(path=str(settings.report_dir)),
    }
