"""Where the warehouse lives: one DuckDB file (one writer at a time), or a DuckLake, whose
catalog is a PostgreSQL database and whose data are Parquet files (many writers at once).

`B2B_WAREHOUSE` chooses: a file path, or `ducklake:postgres:<libpq conninfo>` with
`B2B_LAKE_DATA_PATH` the directory of the Parquet files. Every step, check and reader
opens the warehouse through `open_warehouse`, so the same SQL runs against either: in
lake mode the lake is attached and made the default catalog, and the macros the SQL
calls are created in the connection's temporary catalog (DuckLake stores no functions).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb

from b2b_common.errors import UserError
from b2b_common.password_masking import mask_secrets, passwords_of
from b2b_platform.lib.warehouse.sql import quote_literal

LAKE_PREFIX = "ducklake:"
LAKE_CATALOG = "warehouse"  # the name the lake is attached under
# the DuckDB extensions lake mode loads, as the wheels of the lake profile ship them
LAKE_EXTENSIONS = ("ducklake", "postgres_scanner")
OBJECT_STORE_PREFIX = "s3://"
DEFAULT_WAREHOUSE = Path("data") / "warehouse" / "b2b.duckdb"
MAX_DEFAULT_LAKE_WRITERS = 4  # B2B_LAKE_WRITERS sets more

# writers committing at the same moment race for the next snapshot id; DuckLake tries
# again with a growing pause, by default only 10 times: too few for a busy lake
SNAPSHOT_RETRIES = 30


def default_lake_writers() -> int:
    """How many steps write a lake at once when B2B_LAKE_WRITERS is unset: one per core
    this process may use, at most MAX_DEFAULT_LAKE_WRITERS. A writer keeps about one
    core busy (parsing, Parquet), and writers past the cores only add their runs' fixed
    work: the `large` full build on 2 cores took 161.7 s with 1 writer, 138.7 s with 2
    and 157.6 s with 4. The cap: a container limited to 2 CPUs may still see every core
    of its host, and each writer is a process of its own."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_LAKE_WRITERS))


@dataclass(frozen=True)
class WarehouseLocation:
    """A DuckDB file path, or a DuckLake catalog (`ducklake:postgres:...`) and data path."""

    target: str
    data_path: str = ""

    @property
    def is_lake(self) -> bool:
        return self.target.startswith(LAKE_PREFIX)

    @property
    def on_object_store(self) -> bool:
        """A lake whose Parquet files are on S3 or an S3-compatible server."""
        return self.data_path.startswith(OBJECT_STORE_PREFIX)

    @property
    def file_path(self) -> Path:
        """The DuckDB file (file mode only)."""
        if self.is_lake:
            raise ValueError(f"{self.describe()} is a lake, not a file")
        return Path(self.target)

    @property
    def catalog_conninfo(self) -> str:
        """The PostgreSQL conninfo of a lake's catalog database."""
        return self.target[len(LAKE_PREFIX) :].removeprefix("postgres:")

    def exists(self) -> bool:
        """Whether there is a warehouse to read: a file on disk, or a lake its catalog
        holds (asked read-only, which never creates one)."""
        if not self.is_lake:
            return Path(self.target).exists()
        try:
            open_lake(self, read_only=True, config={}).close()
        except LakeMissing:
            return False
        return True

    @property
    def secrets(self) -> tuple[str, ...]:
        """The catalog's password in every form DuckDB or libpq may quote it back, and
        the object store's secret key."""
        object_store = os.environ.get("AWS_SECRET_ACCESS_KEY", "") if self.on_object_store else ""
        return passwords_of(self.target) + ((object_store,) if object_store else ())

    def describe(self) -> str:
        """The location as messages and `b2b status` show it, passwords masked."""
        return self.mask(self.target)

    def mask(self, text: str) -> str:
        """`text` (say DuckDB's error about this location) with its passwords masked."""
        return mask_secrets(text, *self.secrets)


class LakeMissing(UserError):
    """A reader found no lake in the catalog: nothing was written to it yet."""


def parse_location(target: str, data_path: str = "") -> WarehouseLocation:
    """Check a `B2B_WAREHOUSE` value; errors name the variable and what to set."""
    target = target.strip()
    if target.startswith(LAKE_PREFIX):
        catalog = target[len(LAKE_PREFIX) :]
        if not catalog.startswith("postgres:"):
            # masked before it is cut short: a password cut in two is no longer recognised
            shown = WarehouseLocation(target=target).describe()[:40]
            raise UserError(
                f"B2B_WAREHOUSE={shown!r}...: only a PostgreSQL catalog is supported;"
                " use ducklake:postgres:dbname=... host=..."
            )
        return WarehouseLocation(target=target, data_path=data_path.strip())
    return WarehouseLocation(target=target or str(DEFAULT_WAREHOUSE))


def extension_file(name: str) -> Path:
    """The binary of a DuckDB extension inside its installed `duckdb-ext-*` wheel."""
    try:
        import duckdb_ext  # the lake profile's wheels; a namespace package
    except ImportError:
        raise UserError(
            "lake mode needs the DuckLake extensions: install the lake profile"
            " (`make install-lake`) and run its .venv-lake/bin/b2b"
        ) from None
    version = f"v{duckdb.__version__}"
    for root in duckdb_ext.__path__:
        found = sorted(Path(root).glob(f"extensions/{version}/*/{name}.duckdb_extension"))
        if found:
            return found[0]
    raise UserError(
        f"no {name} extension for DuckDB {duckdb.__version__} is installed: install the lake"
        " profile (`make install-lake`), whose DuckDB matches its extension wheels"
    )


def object_store_secret(env: Mapping[str, str]) -> str:
    """The DuckDB secret (temporary: never stored) that reaches the lake's data on S3 or
    an S3-compatible server. Key and endpoint come from the variables AWS's own tools
    read (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION,
    AWS_ENDPOINT_URL; without the last, AWS S3 itself), never from a setting the UI
    shows; a missing key is a UserError that names them."""
    key_id, key = env.get("AWS_ACCESS_KEY_ID", ""), env.get("AWS_SECRET_ACCESS_KEY", "")
    if not key_id or not key:
        raise UserError(
            "B2B_LAKE_DATA_PATH is on an object store (s3://): set AWS_ACCESS_KEY_ID and"
            " AWS_SECRET_ACCESS_KEY, and AWS_ENDPOINT_URL for a server other than AWS S3"
        )
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    options = [
        "TYPE s3",
        f"KEY_ID {quote_literal(key_id)}",
        f"SECRET {quote_literal(key)}",
        f"REGION {quote_literal(region)}",
    ]
    if env.get("AWS_SESSION_TOKEN"):
        options.append(f"SESSION_TOKEN {quote_literal(env['AWS_SESSION_TOKEN'])}")
    if env.get("AWS_ENDPOINT_URL"):
        endpoint = urlsplit(env["AWS_ENDPOINT_URL"])
        if endpoint.scheme not in ("http", "https") or not endpoint.netloc:
            raise UserError(
                f"AWS_ENDPOINT_URL={env['AWS_ENDPOINT_URL']!r} is not a URL: set it to"
                " http(s)://host:port of the S3-compatible server"
            )
        options += [
            f"ENDPOINT {quote_literal(endpoint.netloc)}",
            f"USE_SSL {str(endpoint.scheme == 'https').lower()}",
            "URL_STYLE 'path'",  # what S3-compatible servers (MinIO, Ceph, moto) answer
        ]
    # each option's value quoted above, as the ATTACH's options are
    return "CREATE OR REPLACE TEMPORARY SECRET b2b_lake_data (" + ", ".join(options) + ")"


def open_lake(
    location: WarehouseLocation, *, read_only: bool, config: dict[str, Any]
) -> duckdb.DuckDBPyConnection:
    """A connection of its own to the lake, attached as its default catalog.

    Loading the extensions and attaching the catalog cost 0.2-0.35 s, more than most
    steps: the first connection of a process to a lake does it, in an in-memory DuckDB
    kept for the process's life (its memory bounded by `config`), and every connection
    after is a new connection to that instance, with its own transactions. An instance
    a fatal error invalidated is dropped (see `forget_lake`).
    """
    key = (
        os.getpid(),
        location.target,
        location.data_path,
        read_only,
        repr(sorted(config.items())),
    )
    with _lakes_lock:
        instance = _lakes.get(key)
        if instance is None:
            instance = _lakes[key] = _attach_lake(location, read_only=read_only, config=config)
        conn = instance.cursor()
    try:
        # the default catalog and the retry count are each connection's own
        conn.execute(f"USE {LAKE_CATALOG}")
        conn.execute(f"SET ducklake_max_retry_count = {SNAPSHOT_RETRIES}")
    except BaseException:
        conn.close()
        raise
    return conn


def forget_lake(location: WarehouseLocation) -> None:
    """Drop this process's instances of a lake (after a fatal error, which leaves a
    DuckDB instance unusable): the next connection attaches it again."""
    with _lakes_lock:
        for key in [k for k in _lakes if k[1] == location.target]:
            with suppress(duckdb.Error):
                _lakes.pop(key).close()


# each process's instances of the lakes it opened, by (pid, target, data path,
# read-only, config); the pid keeps a forked child from using its parent's
_lakes: dict[tuple[int, str, str, bool, str], duckdb.DuckDBPyConnection] = {}
_lakes_lock = threading.Lock()


def _attach_lake(
    location: WarehouseLocation, *, read_only: bool, config: dict[str, Any]
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake attached.

    Extensions load from the installed wheels only: DuckDB never downloads one here.
    """
    conn = duckdb.connect(
        ":memory:",
        config={
            **config,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        },
    )
    try:
        object_store = ("httpfs",) if location.on_object_store else ()
        for name in LAKE_EXTENSIONS + object_store:
            conn.execute(f"LOAD {quote_literal(str(extension_file(name)))}")
        options = []
        if location.on_object_store:
            conn.execute(object_store_secret(os.environ))
        elif location.data_path:
            Path(location.data_path).mkdir(parents=True, exist_ok=True)
        if location.data_path:
            options.append(f"DATA_PATH {quote_literal(location.data_path)}")
        if read_only:
            options.append("READ_ONLY")
        attach = f"ATTACH {quote_literal(location.target)} AS {LAKE_CATALOG}"
        conn.execute(attach + (f" ({', '.join(options)})" if options else ""))
    except duckdb.Error as exc:
        conn.close()
        # DuckDB quotes the whole conninfo; masked before the line is cut short
        first = location.mask(str(exc)).splitlines()[0][:300]
        if read_only and "creating a new DuckLake is explicitly disabled" in first:
            raise LakeMissing(
                f"the lake {location.describe()} holds no warehouse yet: run `b2b run` first"
            ) from None
        raise UserError(
            f"cannot open the lake {location.describe()}: {first}; check B2B_WAREHOUSE,"
            " B2B_LAKE_DATA_PATH and that the PostgreSQL catalog database is reachable"
        ) from None
    except BaseException:
        conn.close()
        raise
    return conn
