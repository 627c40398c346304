"""Resources for every external thing the warehouse touches, built from the environment."""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import os
import secrets
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
from pydantic import Field, PrivateAttr

from b2b_common.dates import (
    add_months,
    load_cutoff,
    months_between,
    report_window,
    same_point_last_month,
)
from b2b_common.errors import UserError
from b2b_platform.lib.settings import PSEUDONYM_KEY_VAR, Settings, check_pseudonym_key
from b2b_platform.lib.warehouse.private_files import private_umask
from b2b_platform.lib.warehouse.pseudonym_key import claim_key
from b2b_platform.lib.warehouse.resource import VersionSettings, WarehouseResource
from b2b_platform.lib.warehouse.sql import SqlFragment, concatenation
from source_db import SourceDatabase, SourceDatabaseError

SOURCE_DB_URL_VAR = "B2B_SOURCE_DB_URL"


class SourceDatabaseResource(dg.ConfigurableResource):
    """The B2B platform's database (SQLite file or PostgreSQL schema b2b), read through ADBC."""

    # dg.EnvVar("B2B_SOURCE_DB_URL") when set there (it may hold a password: the UI then
    # shows the variable's name), else the default SQLite path
    url: str
    # where fetch_aggregate keeps results over a SQLite file (None: never kept)
    aggregates_dir: str | None = None

    @property
    def database(self) -> SourceDatabase:
        # an EnvVar arrives as written in the environment, untrimmed
        return SourceDatabase(self.url.strip())

    def qualified(self, table: str) -> str:
        return self.database.qualified(table)

    def fetch_arrow(self, query: str, params: Sequence[Any] = ()) -> pa.Table:
        """Run a query (values bound as `params`) and return the whole result as one Arrow
        table (no Python rows)."""
        try:
            with self.database.connect() as conn:
                cur = conn.cursor()
                cur.execute(query, list(params) or None)
                return cur.fetch_arrow_table()
        except SourceDatabaseError as exc:
            # A wrong URL or missing file will not fix itself: do not spend retries on it.
            raise dg.Failure(description=str(exc), allow_retries=False) from exc

    def fetch_aggregate(self, query: str, params: Sequence[Any] = ()) -> pa.Table:
        """A small aggregate query's result (a fingerprint): over a SQLite file unchanged
        since the same query last ran with the same values, the result kept then in
        `aggregates_dir`. At scale these full scans of the source were most of a `b2b run`
        that finds nothing new (2-3 s of SQLite at `large`); PostgreSQL is always asked."""
        database = self.database
        state = database.file_state() if self.aggregates_dir else None
        if state is None:
            return self.fetch_arrow(query, params)
        name = hashlib.blake2b(
            f"{database.sqlite_path.absolute()}\0{query}".encode(), digest_size=12
        )
        path = Path(str(self.aggregates_dir)) / f"{name.hexdigest()}.arrow"
        stamp = json.dumps([state, [str(value) for value in params]]).encode()
        kept = _kept_result(path, stamp)
        if kept is not None:
            return kept
        result = self.fetch_arrow(query, params)
        if database.file_state() == state:  # nothing wrote to the file while it ran
            _keep_result(path, stamp, result)
        return result


_STAMP = b"b2b_source_state"


def _kept_result(path: Path, stamp: bytes) -> pa.Table | None:
    """The result kept at `path` for exactly this source state and these values."""
    try:
        with pa.memory_map(str(path)) as source:
            table = pa.ipc.open_file(source).read_all()
    except (OSError, pa.ArrowInvalid):  # none kept yet, or a torn file: asked again
        return None
    if (table.schema.metadata or {}).get(_STAMP) != stamp:
        return None
    return table.replace_schema_metadata(None)


def _keep_result(path: Path, stamp: bytes, result: pa.Table) -> None:
    """Keep a result for the next run; written whole or not at all (two runs may race),
    and the owner's only, like the warehouse it describes."""
    try:
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        table = result.replace_schema_metadata({_STAMP: stamp})
        with private_umask():
            path.parent.mkdir(parents=True, exist_ok=True)
            with pa.OSFile(str(partial), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
                w.write_table(table)
        os.replace(partial, path)
    except OSError:  # a read-only home only costs the next run the query
        return


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
    # days after a lead's capture in which its company's orders are its campaign's
    attribution_days: int = 90
    # the clock as a run read it when it started (B2B_AS_OF unset): every step of a run
    # cuts off at the same instant, whatever the time it runs at
    _run_started_at: dt.datetime | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # when the run started, as Dagster recorded it: the same in every step's process
        record = (
            context.instance.get_run_record_by_id(context.run_id)
            if context.instance is not None and context.run_id
            else None
        )
        started = record.start_time if record is not None else None
        self._run_started_at = (
            dt.datetime.fromtimestamp(started, dt.UTC).replace(tzinfo=None)
            if started
            else _utc_now()
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> CalendarResource:
        return cls(
            as_of=settings.as_of.isoformat(),
            as_of_is_fixed=settings.as_of_is_fixed,
            first_month=settings.first_month.isoformat(),
            attribution_days=settings.attribution_days,
        )

    def monthly_partitions(self) -> dg.MonthlyPartitionsDefinition:
        """Months from the first month to the as-of month (to the current month if the
        as-of day is not fixed): the partitions of every monthly asset and job."""
        # end_offset=1 admits the month in progress; end_date stops at a fixed as-of month.
        # Dagster ends the partitions at the real clock's month plus end_offset, so a fixed
        # as-of day later than today (a replay, a demo dated ahead) needs the offset to
        # reach it; end_date still stops there.
        if not self.as_of_is_fixed:
            return dg.MonthlyPartitionsDefinition(start_date=self.first_month, end_offset=1)
        ahead = months_between(_utc_now().date(), self.as_of_date)
        return dg.MonthlyPartitionsDefinition(
            start_date=self.first_month,
            end_date=add_months(self.as_of_date, 1).isoformat(),
            end_offset=max(ahead, 0) + 1,
        )

    @property
    def as_of_date(self) -> dt.date:
        return dt.date.fromisoformat(self.as_of)

    @property
    def first_month_start(self) -> dt.date:
        return dt.date.fromisoformat(self.first_month)

    @property
    def load_cutoff(self) -> dt.datetime:
        """Records stamped at or after this are not loaded yet (future_order,
        future_request): the end of the as-of day, or now when that is earlier (a run
        during the as-of day without B2B_AS_OF set)."""
        if self.as_of_is_fixed:
            return load_cutoff(self.as_of_date)
        return load_cutoff(self.as_of_date, self._run_started_at or _utc_now())

    @property
    def report_window(self) -> tuple[dt.date, dt.date]:
        """The report window, [first day, as-of + 1 day): the 12 most recent complete
        months, plus the as-of month to date unless the as-of day is its last."""
        return report_window(self.as_of_date)

    @property
    def month_to_date_compared_with(self) -> dt.datetime:
        """Where the previous month's like-for-like part ends: as far into it as the load
        cutoff is into the as-of month (the whole previous month once that is complete)."""
        return same_point_last_month(self.load_cutoff)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# The one-row relation (registered on the step's connection) the HMAC SQL reads its
# padded keys from: the key travels as bound data, never as text in the SQL.
PSEUDONYM_KEYS = "pseudonym_keys"
HMAC_BLOCK_BYTES = 64  # SHA-256's block size (RFC 2104)


class Pseudonymizer(dg.ConfigurableResource):
    """Turns personal identifiers into keyed pseudonyms (HMAC-SHA256) before they reach `core`.

    A document number has so few possible values that an unkeyed or publicly salted
    hash is reversed by trying them all; without the secret key nobody can. The key is
    never in this resource's config (which the UI shows): `key` is
    dg.EnvVar("B2B_PSEUDONYM_KEY"), resolved in the run, or else `key_file` names the
    file in DAGSTER_HOME that holds it (created on first use).
    """

    # masked in the UI should anyone configure it as a literal instead of an EnvVar
    key: str | None = Field(default=None, json_schema_extra={"dagster__is_secret": True})
    key_file: str | None = None

    def secret_key(self, warehouse: WarehouseResource | None = None) -> bytes:
        """The key; for a `warehouse`, only the one its pseudonyms are made with, which
        it records when it has none (see pseudonym_key)."""
        if warehouse is None:
            return self._load_key()
        exists = bool(self.key) or bool(self.key_file and os.path.lexists(self.key_file))
        return claim_key(warehouse.location(), self._load_key, exists)

    def _load_key(self) -> bytes:
        if self.key:
            return check_pseudonym_key(self.key).encode()
        if self.key_file:
            return load_or_create_key_file(Path(self.key_file))
        raise UserError(f"no pseudonym key: set {PSEUDONYM_KEY_VAR} or a key file")

    def key_relations(self, warehouse: WarehouseResource | None = None) -> dict[str, pa.Table]:
        """The relation `hmac_sql` reads, to register on the connection running it; with
        the key of `warehouse` only (see secret_key)."""
        try:
            inner, outer = hmac_pads(self.secret_key(warehouse))
        except UserError as exc:
            # a missing or unsafe key will not fix itself: say what to do, do not retry
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        return {
            PSEUDONYM_KEYS: pa.table(
                {"inner_pad": pa.array([inner], pa.binary()),
                 "outer_pad": pa.array([outer], pa.binary())}
            )
        }  # fmt: skip

    @staticmethod
    def hmac_sql(*parts: SqlFragment) -> str:
        """SQL for the hex HMAC-SHA256 of the SQL expressions joined by '|' (NULL if any is).

        HMAC(K, m) = sha256((K xor opad) || sha256((K xor ipad) || m)), set-based in
        DuckDB; the message is the UTF-8 bytes of the joined text.
        """
        message = concatenation(parts, "|")
        return (
            f"sha256((SELECT outer_pad FROM {PSEUDONYM_KEYS}) || unhex(sha256("
            f"(SELECT inner_pad FROM {PSEUDONYM_KEYS}) || encode(CAST(({message}) AS VARCHAR)))))"
        )


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC's two padded keys, K xor ipad and K xor opad (RFC 2104)."""
    if len(key) > HMAC_BLOCK_BYTES:
        key = hashlib.sha256(key).digest()
    key = key.ljust(HMAC_BLOCK_BYTES, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def load_or_create_key_file(path: Path) -> bytes:
    """The key in `path`, created (random, mode 0600) and announced when missing."""
    try:
        return read_key_file(path)
    except FileNotFoundError:
        pass
    if create_key_file(path):
        _announce_new_key(path)
    return read_key_file(path)


def read_key_file(path: Path) -> bytes:
    """The key a key file holds; refuses a symlink, a non-file or one others can read.

    Opened without following a symlink and checked on the open descriptor, so the file
    checked is the file read.
    """
    try:
        # O_NONBLOCK: a FIFO put in its place is refused below instead of hanging the run
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UserError(
                f"pseudonym key file {path} is a symlink: replace it with the key file itself"
            ) from None
        raise UserError(f"cannot read pseudonym key file {path} ({exc.strerror})") from None
    try:
        _check_key_file_mode(path, os.fstat(fd))
        text = os.read(fd, 4096)  # a key file is 65 bytes
    finally:
        os.close(fd)
    return _parse_key(path, text)


def _check_key_file_mode(path: Path, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"pseudonym key file {path} is not a regular file: remove it")
    if info.st_mode & 0o077:
        raise UserError(
            f"pseudonym key file {path} is open to group or others "
            f"(mode {stat.S_IMODE(info.st_mode):04o}): run `chmod 600 {path}`"
        )


def _parse_key(path: Path, text: bytes) -> bytes:
    try:
        key = bytes.fromhex(text.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        key = b""
    if len(key) < 16:
        raise UserError(
            f"pseudonym key file {path} does not hold a key (at least 32 hex digits): "
            "restore it from the backup"
        )
    return key


def create_key_file(path: Path) -> bool:
    """Write a new random 32-byte key (hex) to `path` unless it exists; True if this call did.

    The key is written to a private temporary file (O_EXCL, mode 0600) and hard-linked
    into place, which fails if the file exists: two runs starting at once end up with
    the same key, and no reader ever sees a half-written file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, path)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        raise UserError(f"cannot create pseudonym key file {path} ({exc.strerror})") from None
    finally:
        temporary.unlink(missing_ok=True)


def current_key(settings: Settings) -> bytes | None:
    """The pseudonym key runs with these settings use (B2B_PSEUDONYM_KEY as this process
    has it, or the key file): None for a key file not made yet."""
    if settings.pseudonym_key_in_env:
        return check_pseudonym_key(os.environ.get(PSEUDONYM_KEY_VAR, "")).encode()
    try:
        return read_key_file(settings.pseudonym_key_file)
    except FileNotFoundError:
        return None


def made_key(settings: Settings) -> bytes:
    """current_key, the key file made (and announced) if there is none yet."""
    return current_key(settings) or load_or_create_key_file(settings.pseudonym_key_file)


def _announce_new_key(path: Path) -> None:
    message = (
        f"created pseudonym key {path}: keep it and back it up, the pseudonyms in "
        f"core.dim_customer stay the same only with this key (or set {PSEUDONYM_KEY_VAR})"
    )
    # stderr reaches the `b2b run` terminal; the Dagster log reaches the run's event log
    print(f"b2b: {message}", file=sys.stderr)
    dg.get_dagster_logger().warning(message)


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


# The resource fields each setting sets: a run the daemon executes is built with the
# daemon's settings, so `b2b run` compares these with the daemon's code location before it
# queues runs there, and names the variables that differ. (The warehouse itself,
# duckdb.database, decides whether the queue is used at all.)
SETTING_FIELDS: dict[tuple[str, str], str] = {
    ("source_db", "url"): "B2B_SOURCE_DB_URL",
    ("log_dir", "path"): "B2B_LOG_DIR",
    ("leads_dir", "path"): "B2B_LEADS_DIR",
    ("report_dir", "path"): "B2B_REPORT_DIR",
    ("calendar", "as_of"): "B2B_AS_OF",
    ("calendar", "as_of_is_fixed"): "B2B_AS_OF",
    ("calendar", "first_month"): "B2B_FIRST_MONTH",
    ("calendar", "attribution_days"): "B2B_ATTRIBUTION_DAYS",
    ("quality", "max_reject_rate"): "B2B_MAX_REJECT_RATE",
    ("pseudonymizer", "key"): PSEUDONYM_KEY_VAR,
    ("pseudonymizer", "key_file"): PSEUDONYM_KEY_VAR,
    ("log_parsing", "trusted_proxies"): "B2B_TRUSTED_PROXIES",
    ("duckdb", "lake_data_path"): "B2B_LAKE_DATA_PATH",
}


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "duckdb": WarehouseResource(
            database=_by_reference("B2B_WAREHOUSE", settings.warehouse.target),
            lake_data_path=settings.warehouse.data_path,
            versions=VersionSettings(
                settings=settings.version_digests(),
                as_of=str(settings.as_of),
                pseudonym_key_variable=settings.pseudonym_key_variable,
                pseudonym_key_file=str(settings.pseudonym_key_file),
            ),
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
        "source_db": SourceDatabaseResource(
            url=_by_reference(SOURCE_DB_URL_VAR, settings.source_db_url),
            aggregates_dir=str(settings.aggregates_dir),
        ),
        "leads_dir": DirectoryResource(path=str(settings.leads_dir)),
        "log_dir": DirectoryResource(path=str(settings.log_dir)),
        "calendar": CalendarResource.from_settings(settings),
        "quality": QualityThresholds(max_reject_rate=settings.max_reject_rate),
        "pseudonymizer": _pseudonymizer(settings),
        "log_parsing": LogParsing(trusted_proxies=list(settings.trusted_proxies)),
        "report_dir": DirectoryResource(path=str(settings.report_dir)),
    }


def _by_reference(variable: str, value: str) -> str:
    """The value by reference to its variable when it came from there (a URL or a lake's
    conninfo may hold a password, which the UI must not show)."""
    if os.environ.get(variable, "").strip() == value:
        return dg.EnvVar(variable)
    return value


def _pseudonymizer(settings: Settings) -> Pseudonymizer:
    if settings.pseudonym_key_in_env:
        return Pseudonymizer(key=dg.EnvVar(PSEUDONYM_KEY_VAR))
    return Pseudonymizer(key_file=str(settings.pseudonym_key_file))
