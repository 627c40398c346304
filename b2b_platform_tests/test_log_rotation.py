"""Logs as real servers leave them: Debian's logrotate renaming, compressing and truncating
a live `access.log` that a writer process appends to, with runs between and during
rotations. After every run the web-log lines in the warehouse are exactly those written
so far, each once: equal to a clean build of the directory as it is.

The lines are the real Apache log of ../shared/fixtures, each given a time on the day it
is written (cron.daily rotates at about 06:25, so a day's file runs from 06:25 to 06:25).
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from b2b_platform_tests.helpers import materialize, query
from b2b_platform_tests.moving_calendar import process_clock

FIXTURE = Path(__file__).parent / "fixtures" / "logs" / "apache_combined_real_10k.log"
LINES_PER_DAY = 120
FIRST_DAY = dt.date(2026, 11, 29)  # the days cross into December
DAYS = 3
TIME = re.compile(r"\[[^\]]*\]")
# what a clean build and a refresh must agree on: every line's fields and its month
LINE_FIELDS = "partition_key, client_ip, requested_at, request, status, bytes, user_agent"
WRITER = (
    "import sys\n"
    "with open(sys.argv[1], 'a', encoding='utf-8') as log:\n"
    "    for line in sys.stdin:\n"
    "        log.write(line)\n"
    "        log.flush()\n"
)


@pytest.fixture(scope="module")
def logrotate() -> str:
    # Debian puts it in /usr/sbin, which a user's PATH may not hold
    found = shutil.which("logrotate", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if found is None:
        message = "logrotate is not installed (`make system-deps` installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def _day_lines(day: dt.date) -> list[str]:
    """The day's lines: real requests, at times from 06:30 on `day` to 06:20 the next."""
    real = FIXTURE.read_text(encoding="utf-8", errors="replace").splitlines()
    offset = (day - FIRST_DAY).days * LINES_PER_DAY
    start = dt.datetime.combine(day, dt.time(6, 30))
    step = dt.timedelta(hours=23, minutes=50) / LINES_PER_DAY
    return [
        TIME.sub((start + i * step).strftime("[%d/%b/%Y:%H:%M:%S +0000]"), line, count=1)
        for i, line in enumerate(real[offset : offset + LINES_PER_DAY])
    ]


def _write(log: Path, lines: list[str]) -> None:
    """Append through a writer process, as a server does (opened for appending)."""
    subprocess.run([sys.executable, "-c", WRITER, str(log)], input="\n".join(lines) + "\n",
                   text=True, check=True)  # fmt: skip


def _config(tmp_path: Path, logs: Path, options: str) -> Path:
    conf = tmp_path / "logrotate.conf"
    conf.write_text(
        f"{logs}/access.log {{\n  daily\n  rotate 14\n  missingok\n  notifempty\n{options}}}\n"
    )
    return conf


def _rotate(logrotate: str, conf: Path, state: Path, day: dt.date) -> subprocess.Popen:
    """cron.daily's logrotate after `day`, started: at 06:25 the next morning, by its own
    clock (what dateext names files after)."""
    at = process_clock(dt.datetime.combine(day + dt.timedelta(days=1), dt.time(6, 25)))
    return subprocess.Popen([logrotate, "--force", "--state", str(state), str(conf)],
                            env={**os.environ, **at})  # fmt: skip


def _lines_in(warehouse: Path) -> list[tuple]:
    return query(warehouse, f"SELECT {LINE_FIELDS} FROM raw.weblogs ORDER BY ALL")


def _accounted(warehouse: Path) -> int:
    """Lines read, loaded or rejected, by the manifest of the files whose rows are kept."""
    [(read,)] = query(warehouse, "SELECT coalesce(sum(rows_read), 0) FROM etl.file_manifest"
                      " WHERE source = 'weblogs' AND status IN ('loaded', 'failed', 'gone')")  # fmt: skip
    return int(read)


def _load(monkeypatch: pytest.MonkeyPatch, logs: Path, warehouse: Path) -> None:
    monkeypatch.setenv("B2B_LOG_DIR", str(logs))
    monkeypatch.setenv("B2B_WAREHOUSE_PATH", str(warehouse))
    monkeypatch.setenv("B2B_REPORT_DIR", str(warehouse.parent / "reports"))
    outcome = materialize("raw/weblogs")
    assert outcome.ok, outcome.failed_runs
    assert not outcome.failed_checks, outcome.failed_checks


def _clean_build(monkeypatch, tmp_path: Path, logs: Path, name: str) -> Path:
    """A new warehouse loading a copy of the directory as it is now, in one run: copied as
    a new user copies /var/log/nginx (`cp -r`: every file's time is the copy's)."""
    copy = tmp_path / f"clean-{name}" / "logs"
    shutil.copytree(logs, copy, copy_function=shutil.copy)
    warehouse = copy.parent / "b2b.duckdb"
    _load(monkeypatch, copy, warehouse)
    return warehouse


@pytest.fixture
def calendar(monkeypatch: pytest.MonkeyPatch) -> None:
    last = FIRST_DAY + dt.timedelta(days=DAYS)
    monkeypatch.setenv("B2B_AS_OF", last.isoformat())
    monkeypatch.setenv("B2B_FIRST_MONTH", "2026-11")


@pytest.mark.parametrize(
    "layout, options",
    [
        ("numbered", "  compress\n  delaycompress\n  nocreate\n"),
        ("dateext", "  compress\n  delaycompress\n  dateext\n  dateformat -%Y%m%d%H\n  nocreate\n"),
        ("copytruncate", "  compress\n  copytruncate\n"),
    ],
)
def test_rotated_logs_load_every_line_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logrotate: str, calendar: None,
    layout: str, options: str,
) -> None:  # fmt: skip
    logs = tmp_path / "nginx"
    logs.mkdir()
    conf, state = _config(tmp_path, logs, options), tmp_path / "logrotate.state"
    warehouse = tmp_path / "warehouse" / "b2b.duckdb"
    written: list[str] = []
    for n in range(DAYS):
        lines = _day_lines(FIRST_DAY + dt.timedelta(days=n))
        half = len(lines) // 2
        _write(logs / "access.log", lines[:half])
        written += lines[:half]
        _load(monkeypatch, logs, warehouse)  # during the day: the live file, half written
        assert _accounted(warehouse) == len(written)
        _write(logs / "access.log", lines[half:])
        written += lines[half:]
        # the night's rotation, while a run loads (it sees the directory before, during
        # or after it)
        rotation = _rotate(logrotate, conf, state, FIRST_DAY + dt.timedelta(days=n))
        _load(monkeypatch, logs, warehouse)
        assert rotation.wait(timeout=60) == 0
        _load(monkeypatch, logs, warehouse)  # after the rotation
        assert _accounted(warehouse) == len(written), layout
        clean = _clean_build(monkeypatch, tmp_path, logs, f"{layout}-{n}")
        assert _lines_in(warehouse) == _lines_in(clean), f"{layout}, day {n + 1}"
    # every line once: what was written, no more, no less (the real log has no bad line)
    assert len(_lines_in(warehouse)) == len(written) == DAYS * LINES_PER_DAY
    # each in the month of its own time: the first hours of 1 December are December's
    # though their file began on 30 November
    months = query(warehouse, "SELECT partition_key, count(*) FROM raw.weblogs GROUP BY ALL"
                   " HAVING bool_or(partition_key <> strftime(requested_at, '%Y-%m-01'))")  # fmt: skip
    assert months == []
    [(december,)] = query(warehouse, "SELECT count(*) FROM raw.weblogs"
                          " WHERE partition_key = '2026-12-01'")  # fmt: skip
    assert december == sum(" [01/Dec/2026:" in line or " [02/Dec/2026:" in line for line in written)
    names = {p.name for p in logs.iterdir()}
    if layout == "numbered":
        assert {"access.log.1", "access.log.2.gz"} <= names


def test_a_directory_without_access_logs_loads_nothing_and_lists_every_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calendar: None
) -> None:
    """An error log, a note and a subdirectory: nothing to load, nothing fails, and each
    entry is in the manifest as skipped with its reason."""
    logs = tmp_path / "nginx"
    logs.mkdir()
    (logs / "error.log").write_text("2026/11/30 10:00:00 [error] 1#1: oops\n")
    (logs / "README").write_text("rotated nightly\n")
    (logs / "old").mkdir()
    warehouse = tmp_path / "warehouse" / "b2b.duckdb"
    _load(monkeypatch, logs, warehouse)
    skipped = query(warehouse, "SELECT path, error FROM etl.file_manifest"
                    " WHERE source = 'weblogs' AND status = 'skipped' ORDER BY path")  # fmt: skip
    assert [Path(path).name for path, _ in skipped] == ["README", "error.log", "old"]
    assert "not an access log" in skipped[0][1] and "directory" in skipped[2][1]
    assert query(warehouse, "SELECT count(*) FROM raw.weblogs") == [(0,)]


def test_the_line_a_server_is_still_writing_waits_for_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calendar: None
) -> None:
    """The live file read while a line is half written: the complete lines load, the
    half line is neither loaded nor rejected, and loads whole once finished."""
    logs = tmp_path / "nginx"
    logs.mkdir()
    live = logs / "access.log"
    lines = _day_lines(FIRST_DAY)[:3]
    live.write_text(lines[0] + "\n" + lines[1] + "\n" + lines[2][:40])
    warehouse = tmp_path / "warehouse" / "b2b.duckdb"
    _load(monkeypatch, logs, warehouse)
    assert _accounted(warehouse) == 2 and len(_lines_in(warehouse)) == 2
    _write(live, [lines[2][40:]])
    _load(monkeypatch, logs, warehouse)
    assert _accounted(warehouse) == 3 and len(_lines_in(warehouse)) == 3


def test_several_servers_write_the_same_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calendar: None
) -> None:
    """One subdirectory per web server: files with the same name (even the same first
    line, a balancer's health check) on two servers are two files; each request says its
    server; a rotation on one server moves only its own rows."""
    logs = tmp_path / "logs"
    day = _day_lines(FIRST_DAY)
    written = {"web1": day[:50], "web2": [day[0], *day[50:89], "not a log line"]}
    for server, lines in written.items():
        (logs / server).mkdir(parents=True)
        (logs / server / "access.log").write_text("\n".join(lines) + "\n")
    warehouse = tmp_path / "warehouse" / "b2b.duckdb"
    per_server = "SELECT server, count(*) FROM raw.weblogs GROUP BY ALL ORDER BY ALL"
    _load(monkeypatch, logs, warehouse)
    assert query(warehouse, per_server) == [("web1", 50), ("web2", 40)]
    rejected = "SELECT record_key FROM quarantine.rejected_records WHERE source = 'weblogs'"
    assert query(warehouse, rejected) == [("web2/access.log:41",)]

    (logs / "web2" / "access.log").rename(logs / "web2" / "access.log.1")  # web2 rotates
    _load(monkeypatch, logs, warehouse)
    assert query(warehouse, per_server) == [("web1", 50), ("web2", 40)]
    assert query(warehouse, rejected) == [("web2/access.log.1:41",)]
    assert _accounted(warehouse) == 91


def test_a_copy_of_var_log_nginx_as_debian_leaves_it_loads_every_line_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_sources
) -> None:
    """The reproduction the work started from: 15 days of the tiny set's lines as Debian's
    nginx leaves them (`daily`, `rotate 14`, `compress`, `delaycompress`): `access.log`,
    `access.log.1`, `access.log.2.gz` ... `access.log.14.gz`, copied with `cp -r` (every
    file's time the copy's). Every line is read once (loaded or quarantined), each loaded
    line in the month of its own time; `b2b status` lists the 15 files; a second run
    reads nothing."""
    data_dir, _ = tiny_sources
    days = sorted((data_dir / "weblogs").iterdir(), key=lambda p: re.sub(r"\D", "", p.name))[-15:]
    nginx = tmp_path / "nginx"
    nginx.mkdir()
    written = 0
    for age, source in enumerate(reversed(days)):  # the newest is the live file
        text = (
            gzip.decompress(source.read_bytes()) if source.suffix == ".gz" else source.read_bytes()
        )
        written += len(text.splitlines())
        name = "access.log" if age == 0 else f"access.log.{age}"
        target = nginx / (name + ".gz" if age >= 2 else name)
        target.write_bytes(gzip.compress(text) if age >= 2 else text)
    last_day = dt.date.fromisoformat(re.sub(r"(\d{4})-?(\d{2})-?(\d{2}).*", r"\1-\2-\3",
                                            re.search(r"\d{4}-?\d{2}-?\d{2}", days[-1].name)[0]))  # fmt: skip
    monkeypatch.setenv("B2B_AS_OF", last_day.isoformat())
    monkeypatch.setenv("B2B_FIRST_MONTH", (last_day - dt.timedelta(days=20)).strftime("%Y-%m"))
    warehouse = tmp_path / "warehouse" / "b2b.duckdb"
    _load(monkeypatch, nginx, warehouse)
    assert _accounted(warehouse) == written
    [(read, loaded, rejected)] = query(warehouse, "SELECT sum(rows_read), sum(rows_loaded),"
                                       " sum(rows_rejected) FROM etl.record_accounting"
                                       " WHERE entity = 'log_lines'")  # fmt: skip
    assert read == written == loaded + rejected and loaded > 0.9 * written
    [(twice,)] = query(warehouse, "SELECT count(*) - count(DISTINCT (source_file, line_number))"
                       " FROM raw.weblogs")  # fmt: skip
    assert twice == 0
    [(elsewhere,)] = query(warehouse, "SELECT count(*) FROM raw.weblogs"
                           " WHERE partition_key <> strftime(requested_at, '%Y-%m-01')")  # fmt: skip
    assert elsewhere == 0
    loaded_at = "SELECT path, partition_key, loaded_at FROM etl.file_manifest ORDER BY ALL"
    first = query(warehouse, loaded_at)
    assert len({path for path, _, _ in first}) == 15
    _load(monkeypatch, nginx, warehouse)  # nothing new: no file read again
    assert query(warehouse, loaded_at) == first and _accounted(warehouse) == written


def test_a_files_days_end_where_its_name_or_its_time_says(tmp_path: Path) -> None:
    """The months a file is read for: a day file's day (and the days beside it); a dateext
    file's first request to its rotation day, whatever its time (a copy's is today: it
    must not be read by every month since, nor make them all stale when the as-of day
    moves); a live file's first request to the day it was last written."""
    from b2b_platform.defs.weblogs.log_files import list_log_files
    from b2b_platform.lib.resources import DirectoryResource

    line = '1.2.3.4 - - [{} -0300] "GET / HTTP/1.1" 200 5 "-" "curl/8"\n'
    (tmp_path / "access-2026-09-15.log").write_text(line.format("15/Sep/2026:10:00:00"))
    (tmp_path / "access.log-20261101").write_text(line.format("31/Oct/2026:06:25:00"))
    live = tmp_path / "access.log"
    live.write_text(line.format("29/Sep/2026:06:25:00"))
    os.utime(live, (dt.datetime(2026, 11, 2, 12).timestamp(),) * 2)
    days = list_log_files(DirectoryResource(path=str(tmp_path))).days
    months = {path.name: d.months("2026-08-01", "2026-12-01") for path, d in days.items()}
    assert months == {
        "access-2026-09-15.log": ["2026-09-01"],
        "access.log-20261101": ["2026-10-01", "2026-11-01"],
        "access.log": ["2026-09-01", "2026-10-01", "2026-11-01"],
    }
