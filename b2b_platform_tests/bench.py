"""`make bench`: measured throughput of the simulators and of ingestion.

Performance goals are checked here, never by timed unit tests. BENCH_SCALE=large runs
the 10M-line set (needs ~2 GB of disk under BENCH_DIR, default a temp dir).
PostgreSQL extraction is measured when the server on 127.0.0.1:5432 answers.
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from generators.config import SCALES, GenerationConfig
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

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the benchmark process: {peak_mib:,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
