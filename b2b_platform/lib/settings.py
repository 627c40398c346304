"""Configuration from the B2B_* environment variables, validated once with clear errors."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from b2b_common.dates import add_months, load_cutoff
from b2b_common.errors import UserError
from b2b_platform.lib.warehouse.location import (
    WarehouseLocation,
    default_lake_writers,
    parse_location,
)

if TYPE_CHECKING:
    from b2b_platform.lib.warehouse.slice_versions import VersionBasis

DEFAULT_DATA_DIR = Path("data")
# where `b2b run` keeps the Dagster instance when DAGSTER_HOME is unset
DEFAULT_DAGSTER_HOME = DEFAULT_DATA_DIR / "dagster_home"
DEFAULT_DAGSTER_URL = "http://127.0.0.1:3000"  # what `make ui` serves
DEFAULT_ATTRIBUTION_DAYS = 90
DEFAULT_SENSOR_INTERVAL_SECONDS = 60
# The calendar's range: the platform's data starts long after 2000, and dates far
# outside it overflow the month arithmetic (year 0, year 10000) instead of being refused.
EARLIEST_DAY = dt.date(2000, 1, 1)
LATEST_DAY = dt.date(2099, 12, 31)
PSEUDONYM_KEY_VAR = "B2B_PSEUDONYM_KEY"
PSEUDONYM_KEY_FILE = "pseudonym.key"  # in DAGSTER_HOME, generated when the variable is unset
AGGREGATES_DIR = "source_aggregates"  # in DAGSTER_HOME: see SourceDatabaseResource.fetch_aggregate
# A shorter key (a word, a PIN) could be guessed and the pseudonyms then recomputed.
MIN_PSEUDONYM_KEY_CHARS = 16
# Proxies whose X-Forwarded-For entries are looked through to find a request's client:
# loopback, the RFC 1918 private ranges, link-local and IPv6 unique-local addresses. A
# public address is never trusted by default, so a client cannot pass as one of these.
DEFAULT_TRUSTED_PROXIES: tuple[str, ...] = (
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
)


@dataclass(frozen=True)
class Settings:
    """Where the sources, warehouse and reports live, and the reporting calendar."""

    source_db_url: str
    log_dir: Path
    leads_dir: Path
    warehouse: WarehouseLocation  # a DuckDB file, or a DuckLake (B2B_WAREHOUSE)
    report_dir: Path
    as_of: dt.date
    as_of_is_fixed: bool  # B2B_AS_OF set: the calendar does not move with the clock
    first_month: dt.date  # first day of the first monthly partition
    max_reject_rate: float = 0.10  # blocking checks fail above this share of rejected records
    # The HMAC key of the document pseudonym in core.dim_customer is never held here:
    # when B2B_PSEUDONYM_KEY is set the resource reads it from the environment itself,
    # otherwise it reads (or first creates) the key file, whose path is not a secret.
    pseudonym_key_in_env: bool = False
    pseudonym_key_file: Path = DEFAULT_DAGSTER_HOME / PSEUDONYM_KEY_FILE
    # the source's fingerprint queries answered from here while a SQLite file is unchanged
    aggregates_dir: Path = DEFAULT_DAGSTER_HOME / AGGREGATES_DIR
    # sensors, the schedule and declarative automation start running in a new instance
    automation_on: bool = True
    # CIDRs of the proxies in front of the web servers (B2B_TRUSTED_PROXIES)
    trusted_proxies: tuple[str, ...] = DEFAULT_TRUSTED_PROXIES
    # the webserver `b2b run` submits its runs through when a daemon serves the instance
    dagster_url: str = DEFAULT_DAGSTER_URL
    # steps that may write a lake at once (B2B_LAKE_WRITERS); a file takes one writer
    lake_writers: int = field(default_factory=default_lake_writers)
    # days after a lead's capture in which its company's orders count for its campaign
    attribution_days: int = DEFAULT_ATTRIBUTION_DAYS
    # how often the file sensors look at the directories (automation: at most 30 s)
    sensor_interval_seconds: int = DEFAULT_SENSOR_INTERVAL_SECONDS

    @property
    def load_cutoff(self) -> dt.datetime:
        """Records stamped from this moment on are not loaded yet (see dates.load_cutoff)."""
        now = None if self.as_of_is_fixed else dt.datetime.now(dt.UTC).replace(tzinfo=None)
        return load_cutoff(self.as_of, now)

    @property
    def warehouse_writers(self) -> int:
        """The limit of the warehouse's Dagster pool: one for a file, more for a lake."""
        return self.lake_writers if self.warehouse.is_lake else 1

    def version_digests(self) -> dict[str, str]:
        """The settings that shape data, each by the variable that sets it, as a digest (a
        URL may hold a password): a refresh can say which one changed."""
        # here, not at the top: the settings are read before Dagster is imported (its
        # 0.5 s of imports overlap the sources' probes in `b2b run`)
        from b2b_platform.lib.warehouse.slice_versions import digest

        values = {
            "B2B_SOURCE_DB_URL": self.source_db_url,
            "B2B_LOG_DIR": str(self.log_dir),
            "B2B_LEADS_DIR": str(self.leads_dir),
            "B2B_REPORT_DIR": str(self.report_dir),
            "B2B_FIRST_MONTH": self.first_month,
            "B2B_MAX_REJECT_RATE": self.max_reject_rate,
            "B2B_TRUSTED_PROXIES": self.trusted_proxies,
            "B2B_ATTRIBUTION_DAYS": self.attribution_days,
        }
        return {name: digest(value) for name, value in values.items()}

    def version_basis(self) -> VersionBasis:
        """What every slice's version starts from with these settings, now."""
        from b2b_platform.lib.warehouse.slice_versions import VersionBasis

        return VersionBasis.of(
            self.version_digests(), str(self.as_of),
            self.pseudonym_key_variable, self.pseudonym_key_file,
        )  # fmt: skip

    @property
    def pseudonym_key_variable(self) -> str:
        """The variable holding the pseudonym key, or "" when the key is in its file."""
        return PSEUDONYM_KEY_VAR if self.pseudonym_key_in_env else ""

    def check_directories(self) -> None:
        """What `b2b run` reads and writes, checked before any work, so a mistake is one
        line now rather than a failure at the end of the build."""
        check_input_directory(self.log_dir, "B2B_LOG_DIR", "the access logs")
        check_input_directory(self.leads_dir, "B2B_LEADS_DIR", "the lead workbooks")
        check_report_directory(self.report_dir, writable=True)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        data = DEFAULT_DATA_DIR
        as_of_text = env.get("B2B_AS_OF", "").strip()
        as_of = parse_date(as_of_text, f"B2B_AS_OF={as_of_text!r}") if as_of_text else _today()
        first_month_text = env.get("B2B_FIRST_MONTH", "").strip()
        first_month = (
            _parse_month(first_month_text)
            if first_month_text
            else max(add_months(as_of.replace(day=1), -12), EARLIEST_DAY)
        )
        if first_month > as_of:
            raise UserError(
                f"B2B_FIRST_MONTH {first_month:%Y-%m} is after B2B_AS_OF {as_of}: "
                "set an earlier first month"
            )
        url = _check_source_url(env.get("B2B_SOURCE_DB_URL", "").strip()) or (
            f"sqlite:///{data / 'source' / 'b2b_platform.db'}"
        )
        return cls(
            source_db_url=url,
            log_dir=Path(env.get("B2B_LOG_DIR", "").strip() or data / "weblogs"),
            leads_dir=Path(env.get("B2B_LEADS_DIR", "").strip() or data / "leads"),
            warehouse=parse_location(
                env.get("B2B_WAREHOUSE", "").strip() or env.get("B2B_WAREHOUSE_PATH", ""),
                env.get("B2B_LAKE_DATA_PATH", ""),
            ),
            report_dir=Path(env.get("B2B_REPORT_DIR", "").strip() or data / "reports"),
            as_of=as_of,
            as_of_is_fixed=bool(as_of_text),
            first_month=first_month,
            max_reject_rate=_parse_rate(env.get("B2B_MAX_REJECT_RATE", "").strip() or "0.10"),
            pseudonym_key_in_env=_pseudonym_key_in_env(env),
            pseudonym_key_file=_dagster_home(env) / PSEUDONYM_KEY_FILE,
            aggregates_dir=_dagster_home(env) / AGGREGATES_DIR,
            automation_on=_parse_switch(env.get("B2B_AUTOMATION", "").strip() or "on"),
            trusted_proxies=parse_trusted_proxies(env.get("B2B_TRUSTED_PROXIES", "")),
            dagster_url=_parse_url(env.get("B2B_DAGSTER_URL", "").strip() or DEFAULT_DAGSTER_URL),
            lake_writers=_parse_count(
                env, "B2B_LAKE_WRITERS", default_lake_writers(), 1, 64, "writers"
            ),
            attribution_days=_parse_count(
                env, "B2B_ATTRIBUTION_DAYS", DEFAULT_ATTRIBUTION_DAYS, 1, 3650, "days"
            ),
            sensor_interval_seconds=_parse_count(
                env,
                "B2B_SENSOR_INTERVAL_SECONDS",
                DEFAULT_SENSOR_INTERVAL_SECONDS,
                5,
                3600,
                "seconds",
            ),
        )


def missing_directory(what: str, path: Path, variable: str) -> str:
    """Why an input directory cannot be listed (absent, or something else at its path),
    and what to do."""
    if path.exists():
        return f"{what} directory {path} is not a directory: point {variable} at one"
    return f"{what} directory {path} does not exist: run `b2b generate` or set {variable}"


def check_input_directory(path: Path, variable: str, holding: str) -> None:
    """An input directory, if there is something at its path, must be a directory (a
    missing one is its step's to report: a new deployment may have no files yet)."""
    if path.exists() and not path.is_dir():
        raise UserError(
            f"{variable} {path} is not a directory: point {variable} at the directory of {holding}"
        )


def check_report_directory(path: Path, *, writable: bool) -> None:
    """B2B_REPORT_DIR must be a directory, or a path where one can be made; with
    `writable`, its parent must take new entries: an export is written beside the
    report directory and then swapped in (see report_directory)."""
    target = Path(os.path.realpath(path))
    if target == target.parent:
        raise UserError(
            f"B2B_REPORT_DIR {path} is the filesystem root: point it at a directory of its own"
        )
    if target.exists() and not target.is_dir():
        raise UserError(
            f"B2B_REPORT_DIR {path} is not a directory: point it at a directory (made if missing)"
        )
    existing = next(parent for parent in target.parents if parent.exists())  # "/" exists
    if not existing.is_dir():
        raise UserError(f"B2B_REPORT_DIR {path} cannot be made: {existing} is not a directory")
    if not writable:
        return
    try:  # tried rather than judged by permission bits, which say nothing for root
        os.rmdir(tempfile.mkdtemp(prefix=".b2b-write-check-", dir=existing))
    except OSError as exc:
        raise UserError(
            f"B2B_REPORT_DIR {path} cannot be written: nothing can be made in {existing}"
            f" ({exc.strerror}); exports are written beside the report directory"
        ) from None


def _parse_count(
    env: Mapping[str, str], variable: str, default: int, low: int, high: int, unit: str
) -> int:
    """A whole number of `unit` from `low` to `high` (`default` when unset)."""
    value = env.get(variable, "").strip()
    if not value:
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise UserError(
            f"{variable}={value!r} is not a number of {unit}: use {low} to {high} {unit}"
        )
    return int(value)


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def parse_date(value: str, label: str) -> dt.date:
    """A YYYY-MM-DD date in the calendar's range; `label` names where it came from in
    the one-line error."""
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise UserError(f"{label} is not a date: use YYYY-MM-DD") from None
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise UserError(f"{label} is out of range: use a day from {EARLIEST_DAY} to {LATEST_DAY}")
    return day


def _check_source_url(url: str) -> str:
    """B2B_SOURCE_DB_URL as given ("" when unset), refused now if it is no database URL
    the source reader takes, rather than by the first step that reads it."""
    if url:
        from source_db.database import SourceDatabase  # polars: only when the URL is set

        try:
            SourceDatabase(url)
        except UserError as exc:  # its message shows the URL with the password masked
            raise UserError(f"B2B_SOURCE_DB_URL: {exc}") from None
    return url


def _parse_rate(value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        rate = -1.0
    if not 0.0 < rate <= 1.0:
        raise UserError(f"B2B_MAX_REJECT_RATE={value!r} is not a share: use a number in (0, 1]")
    return rate


def _parse_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise UserError(
            f"B2B_DAGSTER_URL={value!r} is not a web address: use http://host:port of the webserver"
        )
    return value.rstrip("/")


def _parse_switch(value: str) -> bool:
    if value.lower() not in {"on", "off"}:
        raise UserError(f"B2B_AUTOMATION={value!r} is not a switch: use on or off")
    return value.lower() == "on"


def parse_trusted_proxies(value: str) -> tuple[str, ...]:
    """B2B_TRUSTED_PROXIES: comma-separated CIDRs; blank means the defaults, `none` no proxy.

    A bare address is one host (/32 or /128). A network with host bits set (10.1.0.0/8)
    is refused rather than widened: it is more likely a typo than meant.
    """
    value = value.strip()
    if not value:
        return DEFAULT_TRUSTED_PROXIES
    if value.lower() == "none":
        return ()
    networks = []
    for item in (part.strip() for part in value.split(",")):
        try:
            networks.append(str(ipaddress.ip_network(item)))
        except ValueError as exc:
            raise UserError(
                f"B2B_TRUSTED_PROXIES has {item!r}, not a network ({exc}): "
                "use comma-separated CIDRs like 10.0.0.0/8,2001:db8::/32"
            ) from None
    return tuple(networks)


def _pseudonym_key_in_env(env: Mapping[str, str]) -> bool:
    if env.get("B2B_PSEUDONYM_SALT"):
        # a deployment that set the old secret must not silently switch to a generated key
        raise UserError(
            "B2B_PSEUDONYM_SALT is no longer read: pseudonyms are keyed with "
            f"{PSEUDONYM_KEY_VAR} (see docs/operations.md on rotating the pseudonym key); unset it"
        )
    key = env.get(PSEUDONYM_KEY_VAR)
    if key is not None and not key:
        # set but empty (a secret that did not arrive): not the same as unset, which
        # makes or reads a key file, whose pseudonyms would differ from the secret's
        raise UserError(
            f"{PSEUDONYM_KEY_VAR} is set but empty: set it to the key, or unset it to use "
            f"the key file {PSEUDONYM_KEY_FILE} in DAGSTER_HOME"
        )
    return bool(check_pseudonym_key(key or ""))


def check_pseudonym_key(key: str) -> str:
    """B2B_PSEUDONYM_KEY as given ("" when unset); too short a key is refused."""
    if key and len(key) < MIN_PSEUDONYM_KEY_CHARS:
        raise UserError(
            f"{PSEUDONYM_KEY_VAR} has {len(key)} characters: use a random secret of at least "
            f"{MIN_PSEUDONYM_KEY_CHARS} (e.g. `openssl rand -hex 32`), or unset it to use "
            f"a generated key file"
        )
    return key


def _dagster_home(env: Mapping[str, str]) -> Path:
    # absolute, so a run started from another directory finds the same key and results
    return Path(env.get("DAGSTER_HOME", "").strip() or DEFAULT_DAGSTER_HOME).absolute()


def _parse_month(value: str) -> dt.date:
    if not re.fullmatch(r"\d{4}-\d{2}", value):
        raise UserError(f"B2B_FIRST_MONTH={value!r} is not a month: use YYYY-MM")
    try:
        month = dt.date.fromisoformat(f"{value}-01")
    except ValueError:
        raise UserError(f"B2B_FIRST_MONTH={value!r} is not a month: use YYYY-MM") from None
    if not EARLIEST_DAY <= month <= LATEST_DAY:
        raise UserError(
            f"B2B_FIRST_MONTH={value!r} is out of range: use a month from "
            f"{EARLIEST_DAY:%Y-%m} to {LATEST_DAY:%Y-%m}"
        )
    return month
