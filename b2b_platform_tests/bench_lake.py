"""`make bench-lake`: the warehouse as a DuckDB file against the same warehouse on DuckLake.

1. `b2b generate --scale large` (or BENCH_LARGE_DIR, a `large` set generated before);
2. a full build into a fresh warehouse file, with the default environment's `b2b`
   (DuckDB 2.0), and into a fresh lake, with the lake profile's (DuckDB 1.4 + DuckLake):
   wall time, CPU, peak RSS and bytes on disk (the file; the lake's Parquet files plus
   its PostgreSQL catalog database);
3. the web logs' backfill in lake mode, every month, with 1 writer and with 2: the
   platform loaded first, then `b2b run --select tag:source=weblogs` into a fresh lake.

The catalogs are databases of the PostgreSQL server at BENCH_PG (default
`host=127.0.0.1 user=postgres`), created and dropped here. Results print as a table and
go to BENCH_JSON (default bench_lake.json in the work dir, BENCH_DIR or a temp dir).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from dataclasses import asdict
from pathlib import Path

from b2b_platform_tests.bench_scale import AS_OF, PSEUDONYM_KEY, Measured, timed

ROOT = Path(__file__).resolve().parents[1]
FILE_B2B = ROOT / ".venv" / "bin" / "b2b"
LAKE_B2B = ROOT / ".venv-lake" / "bin" / "b2b"
PG = os.environ.get("BENCH_PG", "host=127.0.0.1 user=postgres")
GIB = 1024**3


def _psql(sql: str) -> str:
    return subprocess.run(
        ["psql", f"{PG} dbname=postgres", "-tAc", sql], check=True, capture_output=True, text=True
    ).stdout.strip()


def _env(data: Path, work: Path, name: str, warehouse: str, lake_data: str = "") -> dict[str, str]:
    return {
        **os.environ,
        "B2B_SOURCE_DB_URL": f"sqlite:///{data / 'source' / 'b2b_platform.db'}",
        "B2B_LOG_DIR": str(data / "weblogs"),
        "B2B_LEADS_DIR": str(data / "leads"),
        "B2B_REPORT_DIR": str(work / name / "reports"),
        "B2B_AS_OF": AS_OF.isoformat(),
        "B2B_PSEUDONYM_KEY": PSEUDONYM_KEY,
        "B2B_WAREHOUSE": warehouse,
        "B2B_LAKE_DATA_PATH": lake_data,
        "DAGSTER_HOME": str(work / name / "dagster_home"),
    }


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class Lake:
    """A fresh lake: a catalog database of its own and a data directory."""

    def __init__(self, work: Path, name: str) -> None:
        self.database = f"bench_lake_{name}_{uuid.uuid4().hex[:6]}"
        self.data = work / name / "lake"
        _psql(f"CREATE DATABASE {self.database}")

    @property
    def target(self) -> str:
        return f"ducklake:postgres:dbname={self.database} {PG}"

    def catalog_bytes(self) -> int:
        return int(_psql(f"SELECT pg_database_size('{self.database}')"))

    def drop(self) -> None:
        _psql(f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")


def _run(b2b: Path, env: dict[str, str], log: Path, *args: str) -> Measured:
    measured = timed([str(b2b), "run", "--in-process", *args], env, log)
    if measured.exit_code != 0:
        raise SystemExit(f"{b2b} run {' '.join(args)} failed: see {log}")
    return measured


def full_builds(data: Path, work: Path) -> dict[str, dict]:
    file = work / "file" / "warehouse" / "b2b.duckdb"
    built = _run(FILE_B2B, _env(data, work, "file", str(file)), work / "file.log")
    results = {"file": {**asdict(built), "bytes": _dir_bytes(file.parent)}}
    lake = Lake(work, "full")
    try:
        env = _env(data, work, "lake", lake.target, str(lake.data))
        built = _run(LAKE_B2B, env, work / "lake.log")
        parquet, catalog = _dir_bytes(lake.data), lake.catalog_bytes()
        results["lake"] = {**asdict(built), "bytes": parquet + catalog, "catalog_bytes": catalog}
    finally:
        lake.drop()
    return results


def weblog_backfill(data: Path, work: Path, writers: int) -> dict:
    lake = Lake(work, f"w{writers}")
    try:
        env = {**_env(data, work, f"w{writers}", lake.target, str(lake.data)),
               "B2B_LAKE_WRITERS": str(writers)}  # fmt: skip
        _run(LAKE_B2B, env, work / f"w{writers}-platform.log", "--select", "tag:source=platform_db")
        backfill = _run(LAKE_B2B, env, work / f"w{writers}.log", "--select", "tag:source=weblogs")
        return asdict(backfill)
    finally:
        lake.drop()


def main() -> int:
    work = Path(os.environ.get("BENCH_DIR") or tempfile.mkdtemp(prefix="bench-lake-"))
    data = Path(os.environ["BENCH_LARGE_DIR"]) if os.environ.get("BENCH_LARGE_DIR") else None
    if data is None:
        data = work / "data"
        subprocess.run([str(FILE_B2B), "generate", "--scale", "large", "--as-of",
                        AS_OF.isoformat(), "--out", str(data)], check=True)  # fmt: skip
    results = {"full_build": full_builds(data, work)}
    results["weblog_backfill"] = {w: weblog_backfill(data, work, w) for w in (1, 2)}
    out = Path(os.environ.get("BENCH_JSON") or work / "bench_lake.json")
    out.write_text(json.dumps(results, indent=2))
    print(
        f"{'large, full build':<28} {'wall s':>8} {'CPU s':>8} {'CPU %':>6} {'peak GiB':>9} {'on disk GiB':>12}"
    )
    for mode, r in results["full_build"].items():
        print(f"  {mode:<26} {r['wall_s']:>8.1f} {r['cpu_s']:>8.1f} {100 * r['cpu_s'] / r['wall_s']:>6.0f}"
              f" {r['peak_rss_mib'] / 1024:>9.2f} {r['bytes'] / GIB:>12.2f}")  # fmt: skip
    print("web-log backfill, every month (lake)")
    for writers, r in results["weblog_backfill"].items():
        print(f"  {writers} writer{'s' if writers > 1 else ' '}{'':<17} {r['wall_s']:>8.1f} {r['cpu_s']:>8.1f}"
              f" {100 * r['cpu_s'] / r['wall_s']:>6.0f} {r['peak_rss_mib'] / 1024:>9.2f}")  # fmt: skip
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
