"""Proof on a moving calendar: the nightly refresh against a clean build, day by day, and
`make demo` on any day of the year.

**The replay.** The three sources are generated for a history ending with the last day
of the replay. Then, for each day, what had arrived by the end of that day is revealed in
a live copy of the sources, as a platform, its web servers and the marketing team
deliver it:

- orders are inserted on the day they are placed, one in seven a day late (an order
  keyed in today with yesterday's `ordered_at`), with their lines; an order's status
  changes (paid, then shipped, delivered, cancelled or returned) on its `updated_at`, so
  old months change late; orders dated after the history or before it (the planted
  anomalies) and lines without an order are there from the start;
- each day's access log arrives at the end of the day, the file of two days before the
  replay three days late, on its second day (a file of last week delivered today);
- a campaign's lead workbook arrives on the last day of its month.

Each day, `b2b run` brings the warehouse up to date, as the nightly refresh does: with
B2B_AS_OF set to the day, or (clock mode) without it, its process clock set to that
day's evening by libfaketime. Beside it, the same inputs are built into an empty
warehouse. Every table of raw, staging, core, reports and the quarantine, and the record
accounting, must then be equal, row for row (`b2b_platform_tests.helpers.snapshot`).
On the first day the warehouse is empty, so the refresh is that day's clean build itself.

**Demo days.** `make demo`'s own commands (`b2b generate`, `b2b run`, `b2b report`) in an
empty directory, with the process clock set to a day: every one exits 0 and prints the
four reports.

`make calendar` runs both at length and prints each day's outcome and timing:
    python -m b2b_platform_tests.moving_calendar replay 2026-11-27 2026-12-04 [--clock]
    python -m b2b_platform_tests.moving_calendar demo-days 2027-01-01 2028-02-29 ...
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import libfaketime

from b2b_platform.lib.weblogs.combined_log import log_file_day
from b2b_platform_tests.helpers import snapshot
from generators.config import SCALES, GenerationConfig
from generators.sources import generate_sources
from source_db import SourceDatabase

COMPARED = ("raw", "staging", "core", "reports", "quarantine", "etl")
# bookkeeping of how the warehouse got there, not what it holds: a refresh and a clean
# build differ in it by design (the cutoff each file was loaded with, when, by which run)
NOT_COMPARED = {"etl.file_manifest", "etl.source_fingerprints"}
PSEUDONYM_KEY = "replay pseudonym key, not a secret"
LATE_ORDERS = 7  # one order in seven arrives a day after it was placed
LEADS_NAME = re.compile(r"leads_(\d{4}-\d{2})_")
# the clock of a clock-mode run: in the evening of the day, UTC (20:30 in Buenos Aires,
# before the day's last log lines), running a thousand times slower than real time, so
# that two runs started together read the same instant however long they take
EVENING = dt.time(23, 30)
CLOCK_RATE = "x0.001"
REPORTS = ("monthly_sales", "top_devices", "top_products_by_country", "lead_conversion")


def process_clock(moment: dt.datetime) -> dict[str, str]:
    """The environment that sets a child process's clock to `moment` (UTC): libfaketime's
    library preloaded (its monotonic clock left real, so sleeps and timeouts work)."""
    _, preload = libfaketime.get_reload_information()
    return {**preload, "FAKETIME": f"@{moment:%Y-%m-%d %H:%M:%S} {CLOCK_RATE}", "TZ": "UTC"}


def days(first: dt.date, last: dt.date) -> Iterator[dt.date]:
    day = first
    while day <= last:
        yield day
        day += dt.timedelta(days=1)


@dataclass
class LiveSources:
    """The sources as delivered up to a day: a copy that grows day by day."""

    generated: Path  # what `b2b generate` wrote for the whole history
    live: Path
    first_day: dt.date  # the replay's first day
    history_end: dt.date  # the generated history's last day

    def __post_init__(self) -> None:
        (self.live / "weblogs").mkdir(parents=True, exist_ok=True)
        (self.live / "leads").mkdir(parents=True, exist_ok=True)
        SourceDatabase(self.source_url).create_schema(drop_existing=True)

    @property
    def source_url(self) -> str:
        return f"sqlite:///{self.live / 'source' / 'b2b_platform.db'}"

    def reveal(self, day: dt.date) -> None:
        """Deliver what had arrived by the end of `day` (idempotent)."""
        self._reveal_database(day)
        late_file = self.first_day - dt.timedelta(days=2)
        for path in sorted((self.generated / "weblogs").iterdir()):
            file_day = log_file_day(path)
            if file_day is None:
                continue
            arrives = file_day + dt.timedelta(days=3 if file_day == late_file else 0)
            target = self.live / "weblogs" / path.name
            if arrives <= day and not target.exists():
                shutil.copy2(path, target)
        for path in sorted((self.generated / "leads").iterdir()):
            found = LEADS_NAME.match(path.name)
            if not found:
                continue
            month = dt.date.fromisoformat(f"{found.group(1)}-01")
            month_end = (month + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
            target = self.live / "leads" / path.name
            if month_end <= day and not target.exists():
                shutil.copy2(path, target)

    def _reveal_database(self, day: dt.date) -> None:
        end = _iso(dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0)))
        late_end = _iso(dt.datetime.combine(day, dt.time(0)))
        history_end = _iso(dt.datetime.combine(self.history_end + dt.timedelta(days=1), dt.time(0)))
        with sqlite3.connect(self.live / "source" / "b2b_platform.db") as conn:
            conn.execute(
                "ATTACH DATABASE ? AS generated",
                [str(self.generated / "source" / "b2b_platform.db")],
            )
            for table in ("companies", "suppliers", "products", "supplier_products",
                          "customers", "platform_users"):  # fmt: skip
                conn.execute(f"INSERT OR REPLACE INTO main.{table} SELECT * FROM generated.{table}")
            columns = [r[1] for r in conn.execute("PRAGMA generated.table_info(orders)")]
            shown = {
                # a status that changes after today is still 'paid' today
                "status": "CASE WHEN updated_at >= :end AND lower(trim(status)) IN"
                " ('shipped', 'delivered', 'cancelled', 'returned') THEN 'paid' ELSE status END",
                "updated_at": "CASE WHEN updated_at >= :end THEN ordered_at ELSE updated_at END",
            }
            conn.execute(
                f"INSERT OR REPLACE INTO main.orders ({', '.join(columns)})"
                f" SELECT {', '.join(shown.get(c, c) for c in columns)} FROM generated.orders"
                " WHERE ordered_at < (CASE WHEN order_id % :late = 0 THEN :late_end ELSE :end END)"
                " OR ordered_at >= :history_end",
                {"end": end, "late_end": late_end, "late": LATE_ORDERS, "history_end": history_end},
            )
            conn.execute(
                "INSERT OR REPLACE INTO main.order_items SELECT * FROM generated.order_items i"
                " WHERE EXISTS (SELECT 1 FROM main.orders o WHERE o.order_id = i.order_id)"
                " OR NOT EXISTS (SELECT 1 FROM generated.orders o WHERE o.order_id = i.order_id)"
            )
            conn.commit()


def _iso(moment: dt.datetime) -> str:
    """A time as the generated SQLite database stores it."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")


@dataclass
class DayResult:
    day: dt.date
    refresh_seconds: float
    clean_seconds: float
    differing: dict[str, tuple[int, int]] = field(default_factory=dict)  # table: rows each
    refresh_exit: int = 0
    clean_exit: int = 0
    output: str = ""
    # the replay's first day: the refresh began from an empty warehouse, so it was the
    # clean build of that day's inputs itself (no second one was made to compare)
    first_build: bool = False

    @property
    def equal(self) -> bool:
        return not self.differing and self.refresh_exit == 0 and self.clean_exit == 0


class Replay:
    """The nightly refresh of one warehouse, day after day, each day beside a clean build."""

    def __init__(
        self, root: Path, first: dt.date, last: dt.date, *, clock: bool = False,
        scale: str = "tiny", seed: int = 11,
    ) -> None:  # fmt: skip
        self.root, self.first, self.last, self.clock = root, first, last, clock
        config = GenerationConfig(scale=SCALES[scale], seed=seed, as_of=last)
        generated = root / "generated"
        generate_sources(config, generated)
        self.first_month = config.first_month
        self.sources = LiveSources(generated, root / "live", first, last)

    def environment(self, warehouse: Path, day: dt.date) -> dict[str, str]:
        env = {
            **os.environ,
            "B2B_SOURCE_DB_URL": self.sources.source_url,
            "B2B_LOG_DIR": str(self.sources.live / "weblogs"),
            "B2B_LEADS_DIR": str(self.sources.live / "leads"),
            "B2B_WAREHOUSE": str(warehouse / "b2b.duckdb"),
            "B2B_REPORT_DIR": str(warehouse / "reports"),
            "DAGSTER_HOME": str(warehouse / "home"),
            "B2B_FIRST_MONTH": self.first_month,
            "B2B_PSEUDONYM_KEY": PSEUDONYM_KEY,
            "B2B_AUTOMATION": "off",
        }
        env.pop("B2B_WAREHOUSE_PATH", None)
        if self.clock:  # the real clock, set to the day's evening: no B2B_AS_OF
            env.pop("B2B_AS_OF", None)
            env |= process_clock(dt.datetime.combine(day, EVENING))
        else:
            env["B2B_AS_OF"] = day.isoformat()
        return env

    def run(self) -> Iterator[DayResult]:
        refresh = self.root / "refresh"
        for day in days(self.first, self.last):
            self.sources.reveal(day)
            clean = self.root / f"clean-{day}"
            # on the first day the refresh starts from nothing: it is that day's clean
            # build, and a second one would only compare two clean builds (which every
            # later day's comparison covers too)
            first_build = not (refresh / "b2b.duckdb").exists()
            builds = {"refresh": refresh} if first_build else {"refresh": refresh, "clean": clean}
            started = time.monotonic()
            commands = {
                name: subprocess.Popen(
                    [sys.executable, "-m", "b2b_platform.cli", "run"],
                    env=self.environment(warehouse, day),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                for name, warehouse in builds.items()
            }
            took, output, exits = {}, [], {}
            for name, process in commands.items():
                out, _ = process.communicate(timeout=900)
                took[name] = time.monotonic() - started
                exits[name] = process.returncode
                output.append(f"--- {name} {day} (exit {process.returncode})\n{out}")
            result = DayResult(
                day, took["refresh"], took.get("clean", took["refresh"]),
                output="\n".join(output), refresh_exit=exits["refresh"],
                clean_exit=exits.get("clean", exits["refresh"]), first_build=first_build,
            )  # fmt: skip
            if not first_build:
                result.differing = compare(refresh / "b2b.duckdb", clean / "b2b.duckdb")
                shutil.rmtree(clean)
            yield result


def compare(refresh: Path, clean: Path) -> dict[str, tuple[int, int]]:
    """The tables whose rows differ between two warehouses, with their row counts."""
    left, right = snapshot(refresh, COMPARED), snapshot(clean, COMPARED)
    return {
        table: (len(left.get(table, [])), len(right.get(table, [])))
        for table in sorted(set(left) | set(right))
        if table not in NOT_COMPARED and left.get(table) != right.get(table)
    }


@dataclass
class DemoDay:
    day: dt.date
    exits: dict[str, int]  # command -> exit code
    reports: list[str]  # the reports `b2b report` printed
    seconds: float
    output: str

    @property
    def ok(self) -> bool:
        return not any(self.exits.values()) and self.reports == list(REPORTS)


def demo_day(root: Path, day: dt.date, scale: str = "small", at: dt.time = dt.time(12)) -> DemoDay:
    """`make demo`'s commands in an empty directory, the clock at `day`, `at` UTC."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("B2B_")}
    env |= {"DAGSTER_HOME": str(root / "data" / "dagster_home"), "B2B_AUTOMATION": "off"}
    env |= process_clock(dt.datetime.combine(day, at))
    commands = {
        "generate": ["generate", "--scale", scale, "--out", "data"],
        "run": ["run"],
        "report": ["report"],
    }
    exits, output = {}, []
    started = time.monotonic()
    for name, args in commands.items():
        done = subprocess.run(
            [sys.executable, "-m", "b2b_platform.cli", *args], cwd=root, env=env,
            capture_output=True, text=True, timeout=1800,
        )  # fmt: skip
        exits[name] = done.returncode
        output.append(
            f"--- b2b {' '.join(args)} (exit {done.returncode})\n{done.stdout}{done.stderr}"
        )
        if done.returncode:
            break
    printed = output[-1] if exits.get("report") == 0 else ""
    reports = [name for name in REPORTS if re.search(rf"^{name} \(\d+ rows\)$", printed, re.M)]
    return DemoDay(day, exits, reports, time.monotonic() - started, "\n".join(output))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    replay = commands.add_parser("replay", help="the nightly refresh against clean builds")
    replay.add_argument("first", type=dt.date.fromisoformat)
    replay.add_argument("last", type=dt.date.fromisoformat)
    replay.add_argument("--clock", action="store_true", help="no B2B_AS_OF: libfaketime")
    replay.add_argument("--scale", default="tiny")
    demo = commands.add_parser("demo-days", help="make demo's commands on these days")
    demo.add_argument("days", nargs="+", type=dt.date.fromisoformat)
    demo.add_argument("--scale", default="small")
    parser.add_argument("--dir", type=Path, default=Path("data") / "calendar")
    args = parser.parse_args(argv)
    if args.command == "demo-days":
        return _demo_days(args.dir, args.days, args.scale)
    return _replay(args.dir, args.first, args.last, args.clock, args.scale)


def _replay(directory: Path, first: dt.date, last: dt.date, clock: bool, scale: str) -> int:
    root = directory / f"replay_{first}_{last}{'_clock' if clock else ''}"
    shutil.rmtree(root, ignore_errors=True)
    mode = "the process clock (libfaketime)" if clock else "B2B_AS_OF"
    print(f"replay {first} .. {last} at {scale}, the as-of day set by {mode}")
    failed = 0
    for result in Replay(root, first, last, clock=clock, scale=scale).run():
        verdict = "equal" if result.equal else f"DIFFERENT: {result.differing}"
        if result.first_build:
            verdict = "the first refresh: a clean build itself"
        print(f"  {result.day}  refresh {result.refresh_seconds:5.1f} s (exit"
              f" {result.refresh_exit})  clean build {result.clean_seconds:5.1f} s"
              f" (exit {result.clean_exit})  {verdict}", flush=True)  # fmt: skip
        if not result.equal:
            failed += 1
            print(result.output[-4000:])
    print("every day equal to a clean build" if not failed else f"{failed} day(s) differ")
    return 1 if failed else 0


def _demo_days(directory: Path, demo_days: list[dt.date], scale: str) -> int:
    print(f"make demo's commands at {scale}, the process clock at noon UTC of each day")
    failed = 0
    for day in demo_days:
        result = demo_day(directory / f"demo_{day}", day, scale)
        said = ", ".join(f"{name} {code}" for name, code in result.exits.items())
        print(f"  {day} ({day:%a})  exits: {said}; reports printed: {len(result.reports)}"
              f" of 4; {result.seconds:.0f} s  {'ok' if result.ok else 'FAILED'}", flush=True)  # fmt: skip
        if not result.ok:
            failed += 1
            print(result.output[-4000:])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
