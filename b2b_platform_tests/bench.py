"""`make bench`: measured throughput of the simulators and of ingestion.

Performance goals are checked here, never by timed unit tests. BENCH_SCALE=large runs
the 10M-line set (needs ~2 GB of disk under BENCH_DIR, default a temp dir).
PostgreSQL extraction is measured when the server on 127.0.0.1:5432 answers.
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from generators.config import SCALES, GenerationConfig, ScaleSpec
from generators.platform import generate_platform
from generators.sources import generate_sources
from source_db import SourceDatabase, SourceDatabaseError

AS_OF = dt.date(2026, 11, 25)
POSTGRES_URL = os.environ.get("B2B_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def bench_generator(config: GenerationConfig, out_dir: Path) -> dict[str, float]:
    started = time.perf_counter()
    summary = generate_sources(config, out_dir)
    total = time.perf_counter() - started
    log_seconds = summary.seconds["weblogs"]
    return {
        "total_s": total,
        "platform_db_s": summary.seconds["platform_db"],
        "weblogs_s": log_seconds,
        "leads_s": summary.seconds["leads"],
        "log_lines": summary.weblogs.lines,
        "log_lines_per_s": summary.weblogs.lines / log_seconds,
        "orders": summary.table_rows["orders"],
        "order_items": summary.table_rows["order_items"],
    }


def bench_extraction(data_dir: Path, source_url: str, label: str) -> dict[str, float]:
    """Materialize the raw platform layer (every table, every month) and time it."""
    import duckdb

    from b2b_platform_tests.helpers import materialize, warehouse_env

    warehouse = data_dir / f"bench-{label}" / "b2b.duckdb"
    os.environ.update(warehouse_env(data_dir, warehouse, source_url))
    started = time.perf_counter()
    outcome = materialize("tag:source=platform_db and tag:layer=raw")
    seconds = time.perf_counter() - started
    if not outcome.ok:
        raise SystemExit(f"extraction from {label} failed: {outcome.failed_runs}")
    conn = duckdb.connect(str(warehouse), read_only=True)
    rows, step_seconds = conn.execute(
        "SELECT sum(rows_written), sum(epoch(finished_at - started_at)) FROM etl.run_log"
    ).fetchall()[0]
    conn.close()
    return {
        "rows": int(rows),
        "wall_s": seconds,
        "rows_per_s_wall": rows / seconds,
        "step_s": float(step_seconds),
        "rows_per_s_in_steps": rows / float(step_seconds),
    }


_SHIM = (
    "import resource, subprocess, sys, time\n"
    "t = time.perf_counter(); code = subprocess.run(sys.argv[1:]).returncode\n"
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)"
)


def _timed_child(args: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Run a command; returns (wall seconds, peak RSS MiB of that command, exit code).

    A small shim process starts the command: a child forked straight from this (large)
    benchmark process would report this process's memory as its own peak.
    """
    shim = subprocess.run(
        [sys.executable, "-c", _SHIM, *args], env=env, capture_output=True, text=True, check=False
    )
    seconds, peak_kib, code = shim.stdout.strip().splitlines()[-1].split()
    return float(seconds), int(peak_kib) / 1024, int(code)


def bench_weblogs(base: Path, lines: int) -> dict[str, float]:
    """End-to-end ingestion of one generated month of daily log files, vs GoAccess."""
    as_of = dt.date(2026, 10, 31)
    scale = ScaleSpec(
        companies=2_000, suppliers=150, products=3_000, customers=20_000, users=6_000,
        orders=5_000, log_lines=lines, leads=100, lead_files=1, months=1,
    )  # fmt: skip
    config = GenerationConfig(scale=scale, seed=42, as_of=as_of)
    data_dir = base / f"weblogs-{lines}"
    summary = generate_sources(config, data_dir)
    warehouse = data_dir / "warehouse" / "b2b.duckdb"
    env = {
        **os.environ,
        **_warehouse_env(data_dir, warehouse),
        "B2B_AS_OF": as_of.isoformat(),
        "B2B_FIRST_MONTH": config.first_month,
        "DAGSTER_HOME": str(data_dir / "dagster_home"),
    }
    cli = [sys.executable, "-m", "b2b_platform.cli", "run", "--select"]
    subprocess.run([*cli, "tag:source=platform_db"], env=env, check=True, capture_output=True)
    seconds, peak_mib, code = _timed_child([*cli, "tag:source=weblogs"], env)
    if code != 0:
        raise SystemExit(f"web-log ingestion failed with exit code {code}")
    result = {
        "lines": summary.weblogs.lines,
        "files": summary.weblogs.files,
        "b2b_run_s": seconds,
        "lines_per_s": summary.weblogs.lines / seconds,
        "peak_rss_mib": peak_mib,
    }
    goaccess = shutil.which("goaccess")
    if goaccess:
        plain = data_dir / "all-lines.log"
        with open(plain, "wb") as out:
            for path in sorted((data_dir / "weblogs").iterdir()):
                opener = gzip.open if path.suffix == ".gz" else open
                with opener(path, "rb") as handle:
                    shutil.copyfileobj(handle, out)
        go_seconds, go_peak, _ = _timed_child(
            [goaccess, str(plain), "--log-format=COMBINED", "--no-global-config",
             "-o", str(data_dir / "goaccess.json")],
            dict(os.environ),
        )  # fmt: skip
        result |= {
            "goaccess_s": go_seconds,
            "goaccess_lines_per_s": summary.weblogs.lines / go_seconds,
            "goaccess_peak_rss_mib": go_peak,
            "speedup_vs_goaccess": go_seconds / seconds,
        }
    return result


def _warehouse_env(data_dir: Path, warehouse: Path) -> dict[str, str]:
    from b2b_platform_tests.helpers import warehouse_env

    return warehouse_env(data_dir, warehouse)


def _print(title: str, values: dict[str, float]) -> None:
    print(title)
    for key, value in values.items():
        print(f"  {key:<22} {value:>14,.2f}")


def main() -> int:
    scale = os.environ.get("BENCH_SCALE", "small")
    base = Path(os.environ.get("BENCH_DIR") or tempfile.mkdtemp(prefix="b2b-bench-"))
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, scale {scale}")
    os.environ["B2B_AS_OF"] = AS_OF.isoformat()
    config = GenerationConfig(scale=SCALES[scale], seed=42, as_of=AS_OF)
    os.environ["B2B_FIRST_MONTH"] = config.first_month
    data_dir = base / f"data-{scale}"

    generated = bench_generator(config, data_dir)
    _print("generator (b2b generate)", generated)
    goal = generated["log_lines_per_s"] >= 500_000 and (
        scale != "small" or generated["total_s"] < 30
    )
    print(f"  goal >= 500,000 log lines/s{' and small set < 30 s' if scale == 'small' else ''}:"
          f" {'met' if goal else 'MISSED'}")  # fmt: skip

    _print("extraction, raw platform layer from SQLite", bench_extraction(data_dir, "", "sqlite"))
    try:
        database = SourceDatabase(POSTGRES_URL)
        database.create_schema(drop_existing=True)
        database.load_tables(generate_platform(config).tables)
    except SourceDatabaseError as exc:
        print(f"extraction from PostgreSQL skipped: {exc}")
    else:
        _print("extraction, raw platform layer from PostgreSQL",
               bench_extraction(data_dir, POSTGRES_URL, "postgresql"))  # fmt: skip

    lines = int(os.environ.get("BENCH_LOG_LINES", "2100000"))
    weblogs = bench_weblogs(base, lines)
    _print(
        "web-log ingestion, one month in daily files (b2b run --select 'tag:source=weblogs')",
        weblogs,
    )
    print(f"  goals: >= 400,000 lines/s: {'met' if weblogs['lines_per_s'] >= 400_000 else 'MISSED'}"
          + (f"; >= 5x GoAccess: {'met' if weblogs['speedup_vs_goaccess'] >= 5 else 'MISSED'}"
             if "speedup_vs_goaccess" in weblogs else "; GoAccess not installed (apt-get install goaccess)"))  # fmt: skip

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the benchmark process: {peak_mib:,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
