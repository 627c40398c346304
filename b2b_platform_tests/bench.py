"""`make bench`: measured throughput of the simulators (and, later, of ingestion).

Performance goals are checked here, never by timed unit tests. Set BENCH_SCALE=large
for the 10M-line run (needs ~2 GB of disk under BENCH_DIR, default a temp dir).
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
from generators.sources import generate_sources

AS_OF = dt.date(2026, 11, 25)


def bench_generator(scale: str, out_dir: Path) -> dict[str, float]:
    config = GenerationConfig(scale=SCALES[scale], seed=42, as_of=AS_OF)
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


def main() -> int:
    scale = os.environ.get("BENCH_SCALE", "small")
    base = Path(os.environ.get("BENCH_DIR") or tempfile.mkdtemp(prefix="b2b-bench-"))
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    result = bench_generator(scale, base / f"generate-{scale}")
    print(f"generator, scale {scale}:")
    for key, value in result.items():
        print(f"  {key:<18} {value:>14,.2f}")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  {'peak_rss_mib':<18} {peak_mib:>14,.0f}")
    goal_ok = result["log_lines_per_s"] >= 500_000 and (scale != "small" or result["total_s"] < 30)
    print(f"goal (>= 500,000 log lines/s; small set < 30 s): {'met' if goal_ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
