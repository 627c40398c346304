"""Which slices of the warehouse are out of date, and why: versions of what each was built from.

Every slice (an asset, or one month of a monthly asset) records, when its step
succeeds, its *input version*, a digest of everything its content depends on:

- the code of the warehouse (any change to it rebuilds everything it touches);
- the settings that shape data (source, directories, first month, proxies, pseudonym
  key), and the as-of day for unpartitioned assets that read the calendar;
- the *data versions* of the slices it reads (the same month of a monthly parent,
  every month of a monthly parent read whole, the one slice of an unpartitioned one);
- for slices that read a source directly, the source's version: a fingerprint of the
  month's orders, a listing of the month's log files, of the lead workbooks...

and its *data version*, a digest of the input version. Data versions are therefore
known before anything runs: from the sources' versions alone, `b2b run` computes what
every slice's input version would be, and a slice whose recorded input version is
that one is up to date and is not built again (stale_slices). A step that finds its
slice up to date skips its work the same way, so a run launched from the UI or by
automation costs what changed too.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb

from b2b_platform.lib.warehouse.sql import identifier_list, qualified_name

TABLE = "etl.slice_versions"
DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    asset_key VARCHAR NOT NULL,
    partition_key VARCHAR,          -- NULL for an unpartitioned asset
    input_version VARCHAR NOT NULL, -- digest of what the slice was built from
    data_version VARCHAR NOT NULL,  -- what its readers record as their input
    recorded_at TIMESTAMP,
    inputs VARCHAR                  -- JSON: each input's version by name (code, source, ...)
)
"""
MISSING = "missing"  # a parent slice never built: its reader is stale until it is
UNKNOWN_SOURCE = None  # a source that could not be read or must be read again
CODE_ROOTS = ("b2b_common", "b2b_platform", "source_db")  # every package the warehouse runs
CALENDAR = "calendar"
PSEUDONYMIZER = "pseudonymizer"
MONTHS_OF = "months of "  # inputs entry: a monthly parent's version per month
SETTING = "setting "  # inputs entry: a setting's version, by the variable that sets it


def digest(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:20]


@functools.cache
def code_version() -> str:
    """Digest of the warehouse's code (Python, SQL and model YAML): a change to it makes every
    slice stale. Coarse on purpose: a helper shared by many assets changes them all."""
    root = Path(__file__).resolve().parents[2]
    hasher = hashlib.sha256()
    for package in CODE_ROOTS:
        for path in sorted((root / package).rglob("*")):
            if path.suffix in {".py", ".sql", ".yml"} and "__pycache__" not in path.parts:
                hasher.update(str(path.relative_to(root)).encode())
                hasher.update(path.read_bytes())
    return hasher.hexdigest()[:20]


def key_identity(pseudonym_key: bytes | None) -> str:
    """Which pseudonym key is in use, as a keyed digest of a constant: never the key."""
    if not pseudonym_key:
        return "none"
    return hmac.new(pseudonym_key, b"b2b slice version", "sha256").hexdigest()[:16]


@dataclass(frozen=True)
class VersionBasis:
    """What every slice's version starts from: the code, the settings, the as-of day and
    (for the slices that pseudonymize) the pseudonym key."""

    code: str
    settings: Mapping[str, str]  # variable -> digest of its value (Settings.version_digests)
    as_of: str
    pseudonym_key: str = "none"

    @classmethod
    def of(
        cls, settings: Mapping[str, str], as_of: str, key_variable: str, key_file: Path
    ) -> VersionBasis:
        """The basis from settings already read (`settings` as Settings.version_digests
        gives them), with the pseudonym key as it is now."""
        key = key_identity(_pseudonym_key(key_variable, key_file))
        return cls(code_version(), dict(settings), as_of, key)


def _pseudonym_key(variable: str, key_file: Path) -> bytes | None:
    """The pseudonym key if it exists yet: in the environment `variable`, or else in its
    file (which the first step that needs it creates)."""
    if variable:
        return os.environ.get(variable, "").encode()
    try:
        return key_file.read_bytes()
    except OSError:
        return None


@dataclass(frozen=True)
class Parent:
    key: dg.AssetKey
    months: tuple[str, ...] | None  # the parent's partition keys; None if unpartitioned


@dataclass(frozen=True)
class SliceShape:
    """An asset as versions see it: its parents and whether it reads the as-of day."""

    key: dg.AssetKey
    partitioned: bool
    parents: tuple[Parent, ...]
    reads_as_of: bool
    pseudonymizes: bool = False

    @classmethod
    def of(
        cls,
        assets_def: dg.AssetsDefinition,
        key: dg.AssetKey,
        partitions_of: Callable[[dg.AssetKey], dg.PartitionsDefinition | None],
    ) -> SliceShape:
        parents = []
        for parent in sorted(assets_def.asset_deps[key]):
            partitions = partitions_of(parent)
            months = tuple(partitions.get_partition_keys()) if partitions else None
            parents.append(Parent(parent, months))
        partitioned = assets_def.partitions_def is not None
        # A monthly slice sees the as-of day only through the load cutoff, whose effect
        # is part of its source's fingerprint; a whole table that reads the calendar
        # (a report window, a dimension of dates) changes with the day itself.
        reads_as_of = CALENDAR in assets_def.required_resource_keys and not partitioned
        pseudonymizes = PSEUDONYMIZER in assets_def.required_resource_keys
        return cls(key, partitioned, tuple(parents), reads_as_of, pseudonymizes)


DataVersions = Callable[[dg.AssetKey, str | None], str | None]


def slice_inputs(
    basis: VersionBasis,
    shape: SliceShape,
    partition_key: str | None,
    parent_version: DataVersions,
    source: str | None = "",
) -> dict[str, str] | None:
    """What one slice is built from, by name (`code`, `setting <VARIABLE>`, `as_of`,
    `source`, and each parent's key); None when its source must be read again."""
    if source is UNKNOWN_SOURCE:
        return None
    parts = {"code": basis.code, "source": source}
    parts |= {SETTING + name: value for name, value in basis.settings.items()}
    if shape.reads_as_of:
        parts["as_of"] = basis.as_of
    if shape.pseudonymizes:
        parts["pseudonym_key"] = basis.pseudonym_key
    for parent in shape.parents:
        if parent.months is None:
            version = parent_version(parent.key, None) or MISSING
        elif shape.partitioned:
            version = parent_version(parent.key, partition_key) or MISSING
        else:
            months = {m: parent_version(parent.key, m) or MISSING for m in parent.months}
            version = digest(*months.values())
            # each month's version too, so the step can tell which months moved
            parts[MONTHS_OF + parent.key.to_user_string()] = json.dumps(months)
        parts[parent.key.to_user_string()] = version
    return parts


def changed_months(previous: str | None, current: str, parent: dg.AssetKey) -> list[str] | None:
    """The months of a monthly parent whose data version moved since the slice was built
    from it (`previous` and `current` its inputs as JSON); None if unknown (never built)."""
    before = json.loads(previous).get(MONTHS_OF + parent.to_user_string()) if previous else None
    now = json.loads(current).get(MONTHS_OF + parent.to_user_string())
    if before is None or now is None:
        return None
    old, new = json.loads(before), json.loads(now)
    return sorted(month for month in new if new[month] != old.get(month))


def version_of(key: dg.AssetKey, partition_key: str | None, parts: Mapping[str, str]) -> str:
    return digest(key.to_user_string(), partition_key, sorted(parts.items()))


def changed_inputs(recorded: str | None, current: Mapping[str, str]) -> list[str]:
    """The names of the inputs that differ from those a slice was built from."""
    before = json.loads(recorded) if recorded else {}
    return sorted(name for name in current.keys() | before.keys()
                  if current.get(name) != before.get(name) and not name.startswith(MONTHS_OF))  # fmt: skip


def data_version(input_version: str) -> str:
    return digest("data", input_version)


@dataclass(frozen=True)
class RecordedVersion:
    input_version: str
    data_version: str
    inputs: str | None = None  # JSON, see slice_inputs


Recorded = Mapping[tuple[str, str | None], RecordedVersion]


def recorded_versions(
    conn: duckdb.DuckDBPyConnection, keys: Sequence[str] | None = None
) -> dict[tuple[str, str | None], RecordedVersion]:
    """(asset key, partition key) -> the versions its slice was last built with."""
    if not conn.execute(
        "SELECT count(*) FROM information_schema.tables"
        " WHERE table_schema = 'etl' AND table_name = 'slice_versions'"
    ).fetchone()[0]:  # type: ignore[index]
        return {}
    rows = conn.execute(
        f"SELECT asset_key, partition_key, input_version, data_version, inputs FROM {TABLE}"
        " WHERE ? IS NULL OR list_contains(?, asset_key)",
        [keys, keys],
    ).fetchall()
    return {(a, p): RecordedVersion(i, d, j) for a, p, i, d, j in rows}


SliceVersion = tuple[str, str | None, str, str]  # asset key, partition key, version, inputs


def content_version(conn: duckdb.DuckDBPyConnection, asset_key: str) -> str | None:
    """The data version of a whole table from what it holds, when the asset is one (a
    base table named like its key: staging/customers is staging.customers): its row
    count and an order-free digest of its rows. None for a view or anything else.

    A table rebuilt because an input moved but holding the same rows keeps its data
    version, so its readers stay up to date: customers staged again for a new as-of
    day, whose birth dates all stay plausible, leave a year of orders untouched."""
    schema, _, name = asset_key.partition("/")
    if "/" in name or not schema:
        return None
    kind = conn.execute(
        "SELECT table_type FROM information_schema.tables"
        " WHERE table_schema = ? AND table_name = ? AND table_catalog = current_database()",
        [schema, name],
    ).fetchall()
    if not kind or kind[0][0] != "BASE TABLE":
        return None
    # the row's values, without the load's own stamps (_extracted_at, _loaded_at): hashed
    # and XOR-ed, so the same rows in any order give the same digest; rows are unique in
    # these tables (their unique_key checks), so none cancel out
    table = qualified_name(f"{schema}.{name}")
    columns = [
        row[0] for row in conn.execute(f"DESCRIBE {table}").fetchall() if not row[0].startswith("_")
    ]
    quoted = identifier_list(columns)
    rows, checksum = conn.execute(
        f"SELECT count(*), bit_xor(hash({quoted})) FROM {table}"
    ).fetchall()[0]
    return digest("content", asset_key, columns, int(rows), int(checksum or 0))


def record_versions(
    conn: duckdb.DuckDBPyConnection, rows: Sequence[SliceVersion]
) -> dict[tuple[str, str | None], str]:
    """Replace the recorded versions of these slices: (asset key, partition key, input
    version, inputs as JSON). Call inside the transaction that publishes them, or after.
    A whole table's data version is its content's (content_version); a month's follows
    from its input version. Returns the data versions recorded."""
    recorded = {}
    for asset_key, partition_key, version, inputs in rows:
        content = content_version(conn, asset_key) if partition_key is None else None
        data = content or data_version(version)
        conn.execute(
            f"DELETE FROM {TABLE} WHERE asset_key = ? AND partition_key IS NOT DISTINCT FROM ?",
            [asset_key, partition_key],
        )
        conn.execute(
            f"INSERT INTO {TABLE} (asset_key, partition_key, input_version, data_version,"
            " recorded_at, inputs) VALUES (?, ?, ?, ?, current_timestamp::TIMESTAMP, ?)",
            [asset_key, partition_key, version, data, inputs],
        )
        recorded[(asset_key, partition_key)] = data
    return recorded


def forget_versions(
    conn: duckdb.DuckDBPyConnection, slices: Sequence[tuple[str, str | None]]
) -> None:
    """A slice being rebuilt is out of date until its step succeeds."""
    for asset_key, partition_key in slices:
        conn.execute(
            f"DELETE FROM {TABLE} WHERE asset_key = ? AND partition_key IS NOT DISTINCT FROM ?",
            [asset_key, partition_key],
        )
