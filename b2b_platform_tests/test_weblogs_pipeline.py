"""Web-log ingestion: incremental by file, failed files, crash recovery, real-world lines."""

import datetime as dt
import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from b2b_platform.cli import main
from b2b_platform.defs.weblogs.staging import one_row_per_line
from b2b_platform.lib.input_files.file_manifest import content_hash
from b2b_platform.lib.weblogs.combined_log import lines_of_text
from b2b_platform_tests.helpers import (
    materialize,
    query,
    snapshot,
    views_planned_as_nested_loops,
    warehouse_env,
)

FIXTURES = Path(__file__).parent / "fixtures" / "logs"
WEBLOGS = "tag:source=weblogs"


@pytest.fixture(scope="session")
def built_with_private_logs(tmp_path_factory, tiny_sources) -> tuple[Path, Path]:
    """The whole graph built once over a copy of the tiny logs (tests restore that copy
    and start from a copy of this warehouse: same paths, sizes and times, so the file
    manifest holds for them as it did here)."""
    data_dir, _ = tiny_sources
    root = tmp_path_factory.mktemp("log-template")
    logs = root / "weblogs"
    shutil.copytree(data_dir / "weblogs", logs)
    warehouse = root / "warehouse" / "b2b.duckdb"
    with pytest.MonkeyPatch.context() as env:
        for key, value in warehouse_env(data_dir, warehouse).items():
            env.setenv(key, value)
        env.setenv("B2B_LOG_DIR", str(logs))
        outcome = materialize()
    assert outcome.ok, outcome.failed_runs
    return warehouse, logs


@pytest.fixture
def log_warehouse(monkeypatch, tmp_path, tiny_sources, built_with_private_logs):
    """Tiny sources with a private copy of the log directory, platform already built."""
    data_dir, _ = tiny_sources
    template, logs = built_with_private_logs
    shutil.rmtree(logs, ignore_errors=True)  # whatever the previous test did to it (moved it)
    shutil.copytree(data_dir / "weblogs", logs)
    warehouse = tmp_path / "warehouse" / "b2b.duckdb"
    shutil.copytree(template.parent, warehouse.parent)
    for key, value in warehouse_env(data_dir, warehouse).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("B2B_LOG_DIR", str(logs))
    return warehouse, logs


def _files(warehouse, status="loaded"):
    return dict(query(warehouse, "SELECT path, rows_read FROM etl.file_manifest"
                      " WHERE source = 'weblogs' AND status = ?", [status]))  # fmt: skip


def _lines_of(warehouse, path):
    return query(warehouse, "SELECT count(*) FROM raw.weblogs WHERE source_file = ?", [str(path)])[
        0
    ][0]


def _accounting_ok(warehouse):
    return query(warehouse, "SELECT count(*) FROM etl.record_accounting WHERE source = 'weblogs'"
                 " AND rows_read <> rows_loaded + rows_rejected + rows_merged")[0][0] == 0  # fmt: skip


def test_every_generated_line_is_loaded_or_quarantined(log_warehouse, tiny_sources):
    warehouse, _ = log_warehouse
    _, summary = tiny_sources
    read = query(warehouse, "SELECT sum(rows_read), sum(rows_loaded), sum(rows_rejected)"
                 " FROM etl.record_accounting WHERE entity = 'log_lines'")[0]  # fmt: skip
    assert read[0] == summary.weblogs.lines and read[0] == read[1] + read[2]
    reasons = dict(query(warehouse, "SELECT reason_code, count(*) FROM quarantine.rejected_records"
                         " WHERE source = 'weblogs' GROUP BY 1"))  # fmt: skip
    injected = summary.weblogs.malformed_lines
    assert reasons["invalid_timestamp"] == injected["invalid_timestamp"]
    assert reasons["unparseable_line"] == injected["truncated"] + injected["blank"]
    staged = query(warehouse, "SELECT count(*) FROM staging.web_requests")[0][0]
    assert staged == read[1]
    # new files are hashed from the bytes read for parsing: the same digest as the planner's
    hashes = query(warehouse, "SELECT path, content_hash FROM etl.file_manifest"
                   " WHERE source = 'weblogs' AND status = 'loaded'")  # fmt: skip
    assert hashes and all(digest == content_hash(Path(path)) for path, digest in hashes)


def _run_weblogs(tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home")}
    return subprocess.run([sys.executable, "-m", "b2b_platform.cli", "run", "--select", WEBLOGS],
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip


def test_every_view_joins_without_a_nested_loop(built_warehouse):
    """staging.web_requests is read whole month by month: a join of its requests with
    every user (as DuckDB 1.4 planned the refused-login rule) grows with both."""
    planned = views_planned_as_nested_loops(built_warehouse)
    assert "staging.web_requests" in planned
    assert not {view: ops for view, ops in planned.items() if ops}


def test_a_gone_day_keeps_its_rows_until_an_operator_forgets_it(log_warehouse, capsys):
    warehouse, logs = log_warehouse
    before = snapshot(warehouse)
    day = sorted(logs.glob("access-2026-09-1*.log*"))[0]
    kept, lines = day.read_bytes(), _lines_of(warehouse, day)
    day.unlink()  # a server's retention deleted the day: its lines are not wrong
    assert materialize(WEBLOGS).ok
    assert _lines_of(warehouse, day) == lines > 0
    assert str(day) in _files(warehouse, "gone")
    assert _accounting_ok(warehouse)
    assert main(["status"]) == 0
    assert f"weblogs: {day} ({lines:,} rows)" in capsys.readouterr().out

    day.write_bytes(kept)  # back (a share mounted again): recognised, nothing read again
    assert materialize(WEBLOGS).ok
    assert snapshot(warehouse) == before

    day.unlink()
    assert materialize(WEBLOGS).ok
    assert main(["forget-missing-files", "weblogs"]) == 0  # lists, removes nothing
    assert str(day) in capsys.readouterr().out and _lines_of(warehouse, day) == lines
    assert main(["forget-missing-files", "weblogs", "--yes"]) == 0
    assert f"removed {lines:,} rows of 1 file(s)" in capsys.readouterr().out
    assert _lines_of(warehouse, day) == 0 and str(day) in _files(warehouse, "removed")
    assert materialize(WEBLOGS).ok  # the month and what reads it are built again
    assert _accounting_ok(warehouse)
    staged = query(warehouse, "SELECT count(*) FROM staging.web_requests WHERE source_file = ?",
                   [str(day)])  # fmt: skip
    assert staged == [(0,)]

    day.write_bytes(kept)
    assert materialize(WEBLOGS).ok
    opener = gzip.open if day.suffix == ".gz" else open
    with opener(day, "rb") as handle:
        original = handle.read()
    extra = original.splitlines()[-1] + b"\n"
    with opener(day, "wb") as handle:  # change a day: rows replaced, not appended
        handle.write(original + extra * 3)
    assert materialize(WEBLOGS).ok
    assert _files(warehouse)[str(day)] == original.count(b"\n") + 3
    assert _lines_of(warehouse, day) >= 3
    assert _accounting_ok(warehouse)


@pytest.mark.parametrize("how", ["emptied", "proc"])
def test_a_vanished_log_directory_keeps_every_row_and_fails(
    log_warehouse, tmp_path, monkeypatch, how
):
    """A share that failed to mount (the directory empty) or a setting pointing elsewhere:
    nothing is loaded or marked, every row stays, and `b2b run` says why, exit 1."""
    warehouse, logs = log_warehouse
    before = snapshot(warehouse)
    if how == "emptied":
        for path in logs.iterdir():
            path.unlink()
    else:
        monkeypatch.setenv("B2B_LOG_DIR", "/proc")
    result = _run_weblogs(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    said = result.stdout + result.stderr
    assert "files loaded before" in said and "b2b forget-missing-files weblogs" in said
    assert snapshot(warehouse) == before  # no row removed, no file marked gone
    failing = query(warehouse, "SELECT error FROM etl.run_log WHERE status = 'failed'"
                    " AND asset_key = 'raw/weblogs'")  # fmt: skip
    assert failing and "files loaded before" in failing[0][0]


def test_moved_log_directory_reloads_under_new_paths(log_warehouse, monkeypatch):
    warehouse, logs = log_warehouse
    totals = "SELECT sum(rows_read), sum(rows_loaded), sum(rows_rejected) FROM etl.record_accounting WHERE entity = 'log_lines'"
    before = query(warehouse, totals)
    moved = logs.with_name("weblogs-moved")
    logs.rename(moved)
    monkeypatch.setenv("B2B_LOG_DIR", str(moved))
    assert not materialize(WEBLOGS).ok  # none of the files loaded is here: refused
    # the operator says the old paths are gone for good: old rows out, new rows in
    assert main(["forget-missing-files", "weblogs", "--yes"]) == 0
    assert materialize(WEBLOGS).ok
    assert query(warehouse, totals) == before and _accounting_ok(warehouse)
    assert all(path.startswith(str(moved)) for path in _files(warehouse))
    # a relative spelling of the same directory is the same files: nothing reloads
    monkeypatch.chdir(moved.parent)
    monkeypatch.setenv("B2B_LOG_DIR", moved.name)
    loaded_at = query(warehouse, "SELECT max(loaded_at) FROM etl.file_manifest")
    assert materialize(WEBLOGS).ok
    assert query(warehouse, "SELECT max(loaded_at) FROM etl.file_manifest") == loaded_at


def test_truncated_gzip_fails_alone_and_loads_once_replaced(log_warehouse):
    warehouse, logs = log_warehouse
    target = logs / "access-2026-10-30.log.gz"
    for old in logs.glob("access*2026-10-30*"):
        old.unlink()
    good = gzip.compress((FIXTURES / "apache_edge_cases.log").read_bytes())
    target.write_bytes(good[: len(good) // 2])
    outcome = materialize(WEBLOGS)
    assert outcome.ok  # the month still loads
    failed = query(warehouse, "SELECT path, error FROM etl.file_manifest WHERE status = 'failed'")
    assert [f[0] for f in failed] == [str(target)] and failed[0][1]
    assert _accounting_ok(warehouse)
    target.write_bytes(good)
    assert materialize(WEBLOGS).ok
    assert _files(warehouse)[str(target)] == 7
    assert query(warehouse, "SELECT count(*) FROM etl.file_manifest WHERE status = 'failed'") == [
        (0,)
    ]


def test_a_failed_file_is_read_again_only_once_it_changes(log_warehouse):
    warehouse, logs = log_warehouse
    target = logs / "access-2026-10-29.log"
    for old in logs.glob("access*2026-10-29*"):
        old.unlink()
    target.write_bytes(os.urandom(4096) + b"\0")  # binary: fails
    assert materialize(WEBLOGS).ok
    failed = "SELECT status, loaded_at FROM etl.file_manifest WHERE path = ?"
    first = query(warehouse, failed, [str(target)])
    assert first[0][0] == "failed"
    # another file of the month changes: the month is read again, the failed file not
    (logs / "access.log-20261015").write_bytes((FIXTURES / "apache_edge_cases.log").read_bytes())
    assert materialize(WEBLOGS).ok
    assert query(warehouse, failed, [str(target)]) == first
    # fixed: another log than the file above (a file with the same first line beside it
    # is a copy, skipped; the same lines would be loaded twice)
    target.write_bytes(
        b"\n".join((FIXTURES / "apache_edge_cases.log").read_bytes().splitlines()[::-1]) + b"\n"
    )
    assert materialize(WEBLOGS).ok
    assert query(warehouse, failed, [str(target)])[0][0] == "loaded"
    assert _accounting_ok(warehouse)


def test_b2b_run_names_unreadable_files_and_exits_non_zero(log_warehouse, tmp_path):
    _, logs = log_warehouse
    (logs / "access-2026-11-20.log.gz").write_bytes(b"\x1f\x8b\x08\x00broken")
    for old in logs.glob("access-2026-11-20.log"):
        old.unlink()
    result = _run_weblogs(tmp_path)
    assert result.returncode == 1
    assert "could not read" in result.stderr and "access-2026-11-20.log.gz" in result.stderr


def test_real_apache_log_through_the_asset(log_warehouse):
    warehouse, logs = log_warehouse
    for old in logs.glob("access*2026-09-1[6-9]*"):
        old.unlink()
    for old in logs.glob("access*2026-09-2[01]*"):
        old.unlink()
    # the real site's four days of May 2015, moved into September 2026 and written one
    # file per day as a server rotates them (a line far from its file's day is rejected)
    text = (
        (FIXTURES / "apache_combined_real_10k.log").read_text().replace("/May/2015:", "/Sep/2026:")
    )
    days: dict[str, list[str]] = {}
    for line in text.splitlines(keepends=True):
        days.setdefault(line.split("[", 1)[1][:2], []).append(line)
    paths = []
    for day, day_lines in days.items():
        paths.append(str(logs / f"access-2026-09-{day}.log"))
        Path(paths[-1]).write_text("".join(day_lines))
    assert materialize(WEBLOGS).ok
    assert sum(_files(warehouse)[path] for path in paths) == 10_000
    assert sum(_lines_of(warehouse, path) for path in paths) == 9_999
    bots, countries, rows = query(
        warehouse,
        """
        SELECT count(*) FILTER (WHERE is_bot), count(country_code), count(*)
        FROM staging.web_requests WHERE list_contains(?, source_file)""",
        [paths],
    )[0]
    assert rows == 9_999
    assert bots > 1_000  # crawlers are a large share of this public site's traffic
    assert countries / rows > 0.95


def test_kill_mid_month_then_rerun_equals_a_clean_run(log_warehouse, tmp_path):
    warehouse, _ = log_warehouse
    clean = snapshot(warehouse, ("raw", "staging", "quarantine"))
    # start over in a fresh warehouse, killed while committing the October files
    fresh = tmp_path / "fresh" / "b2b.duckdb"
    env = {**os.environ, "B2B_WAREHOUSE_PATH": str(fresh), "DAGSTER_HOME": str(tmp_path / "home2")}
    subprocess.run([sys.executable, "-m", "b2b_platform.cli", "run", "--select", "tag:source=platform_db"],
                   env=env, check=True, capture_output=True, timeout=300)  # fmt: skip
    killed = subprocess.run(
        [sys.executable, "-m", "b2b_platform.cli", "run", "--select", WEBLOGS],
        env={**env, "B2B_FAULT_KILL_BEFORE_COMMIT": "raw/weblogs@2026-10-01"},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert killed.returncode == -9
    loaded_before_kill = query(fresh, "SELECT count(DISTINCT partition_key) FROM raw.weblogs")[0][0]
    assert loaded_before_kill >= 1  # earlier months were committed
    rerun = subprocess.run([sys.executable, "-m", "b2b_platform.cli", "run"],
                           env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    interrupted = query(fresh, "SELECT asset_key, partition_key, broken_at IS NOT NULL FROM etl.run_log"
                        " WHERE status = 'interrupted'")  # fmt: skip
    # the months in flight: October, and September beside it unless it had committed
    assert ("raw/weblogs", "2026-10-01", True) in interrupted
    assert set(interrupted) <= {("raw/weblogs", m, True) for m in ("2026-09-01", "2026-10-01")}
    assert snapshot(fresh, ("raw", "staging", "quarantine")) == clean


def _crafted_day(day: str, lines: int) -> bytes:
    """Lines whose target names their own file and line; every 7th has `\\"` in its
    agent, every 11th a vhost, every 13th a proxy list, every 17th is truncated."""
    out = []
    for n in range(1, lines + 1):
        client = "10.1.2.3"
        if n % 11 == 0:
            client = "shop.example.com:443 10.1.2.3"
        elif n % 13 == 0:
            client = "10.0.0.1, 200.1.2.3"
        agent = 'Mozilla/5.0 \\"quoted\\"' if n % 7 == 0 else "Mozilla/5.0"
        line = (f'{client} - - [{day}:10:00:00 -0300] "GET /{day[:2]}/{n} HTTP/1.1" 200 5 "-" '
                f'"{agent}"')  # fmt: skip
        out.append(line[:40] if n % 17 == 0 else line)
    return ("\n".join(out) + "\n").encode()


def test_each_row_keeps_its_file_and_line_number(log_warehouse):
    """Parsing groups rows by how they parse; every row must still carry its own file
    and line number, across the files of one batch."""
    warehouse, logs = log_warehouse
    for day in ("12", "13"):
        for old in logs.glob(f"access*2026-10-{day}*"):
            old.unlink()
        (logs / f"access-2026-10-{day}.log").write_bytes(_crafted_day(f"{day}/Oct/2026", 400))
    assert materialize(WEBLOGS).ok
    rows = query(warehouse, "SELECT source_file, line_number, target, vhost, user_agent"
                 " FROM raw.weblogs WHERE target LIKE '/1_/%'")  # fmt: skip
    assert len(rows) == 2 * (400 - 400 // 17)
    for source_file, line_number, target, vhost, agent in rows:
        assert target == f"/{Path(source_file).name[15:17]}/{line_number}"
        assert (vhost is not None) == (line_number % 11 == 0)
        assert agent.endswith('"quoted"') == (line_number % 7 == 0)
    rejected = query(warehouse, "SELECT record_key FROM quarantine.rejected_records"
                     " WHERE record_key LIKE 'access-2026-10-1_.log:%'")  # fmt: skip
    assert sorted(rejected) == sorted(
        (f"access-2026-10-{day}.log:{n}",) for day in ("12", "13") for n in range(17, 401, 17)
    )


def test_staging_unique_key_check_catches_repeated_lines_and_lookup_keys():
    conn = duckdb.connect()
    conn.execute("CREATE SCHEMA raw; CREATE SCHEMA staging")
    conn.execute("CREATE TABLE raw.weblogs AS SELECT * FROM (VALUES ('a.log', 1, 'm'),"
                 " ('a.log', 2, 'm'), ('b.log', 1, 'm'), ('b.log', 1, 'other')) t(source_file, line_number, partition_key)")  # fmt: skip
    conn.execute("CREATE TABLE staging.user_agents AS SELECT 'ua' AS user_agent")
    conn.execute("CREATE TABLE staging.ip_countries AS SELECT '1.2.3.4' AS ip")
    conn.execute("CREATE TABLE staging.platform_users AS SELECT 'bob' AS username")

    def metadata(result):
        return {k: v.value for k, v in result.metadata.items()}

    clean = one_row_per_line(conn, "m")
    assert clean.passed, metadata(clean)  # b.log line 1 twice, but in two months
    conn.execute("INSERT INTO raw.weblogs VALUES ('a.log', 2, 'm')")
    repeated = one_row_per_line(conn, "m")
    assert not repeated.passed and metadata(repeated)["duplicate_keys"] == 1
    conn.execute("DELETE FROM raw.weblogs WHERE partition_key = 'm'")
    assert one_row_per_line(conn, "m").passed  # an empty month
    conn.execute("INSERT INTO staging.user_agents VALUES ('ua')")  # would double rows
    fanned_out = one_row_per_line(conn, "m")
    assert not fanned_out.passed and metadata(fanned_out)["lookup_keys_repeated"] == 1


def test_an_empty_log_file_loads_with_no_lines(log_warehouse):
    warehouse, logs = log_warehouse
    for old in logs.glob("access*2026-10-14*"):
        old.unlink()
    (logs / "access-2026-10-14.log").write_bytes(b"")
    assert materialize(WEBLOGS).ok
    assert _files(warehouse)[str(logs / "access-2026-10-14.log")] == 0
    assert _accounting_ok(warehouse)


def test_a_file_the_parser_cannot_split_fails_alone(log_warehouse, monkeypatch):
    warehouse, logs = log_warehouse
    from b2b_platform.defs.weblogs import loading

    def split_or_fail(text: bytes):
        if text.startswith(b"UNSPLITTABLE"):
            raise ValueError("cannot split this text into lines")
        return lines_of_text(text)

    monkeypatch.setattr(loading, "lines_of_text", split_or_fail)
    for old in logs.glob("access*2026-10-16*"):
        old.unlink()
    (logs / "access-2026-10-16.log").write_bytes(b"UNSPLITTABLE\n")
    assert materialize(WEBLOGS).ok  # the rest of the month still loads
    failed = query(warehouse, "SELECT path, error FROM etl.file_manifest WHERE status = 'failed'")
    assert failed == [
        (
            str(logs / "access-2026-10-16.log"),
            "not an access log: cannot split this text into lines",
        )
    ]
    assert _accounting_ok(warehouse)


def test_a_large_file_loads_in_parts_as_one_and_a_bad_part_keeps_its_old_rows(
    log_warehouse, monkeypatch
):
    from b2b_platform.lib.weblogs import log_reader

    warehouse, logs = log_warehouse
    (path,) = logs.glob("access-2026-10-20.log*")
    before = snapshot(warehouse, ("raw", "quarantine"))
    rows_before = _lines_of(warehouse, path)
    # the same file read in parts of 4 KB: many parts, one transaction, the same rows
    monkeypatch.setattr(log_reader, "PART_TEXT_BYTES", 4096)
    text = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(text))  # new bytes and time, same lines: reloaded
    assert materialize(WEBLOGS).ok
    assert snapshot(warehouse, ("raw", "quarantine")) == before
    # the file grows, but its gzip is cut short: the parts read so far are rolled back
    path.write_bytes(gzip.compress(text * 3)[:-100])
    assert materialize(WEBLOGS).ok
    status, error = query(
        warehouse, "SELECT status, error FROM etl.file_manifest WHERE path = ?", [str(path)]
    )[0]
    assert status == "failed" and "end-of-stream" in error
    assert _lines_of(warehouse, path) == rows_before  # the old version's rows, not half
    assert snapshot(warehouse, ("raw", "quarantine")) == before
    assert _accounting_ok(warehouse)


def test_a_touched_file_is_recorded_and_not_hashed_again(log_warehouse, monkeypatch):
    from b2b_platform.lib.input_files import file_manifest

    warehouse, logs = log_warehouse
    (path,) = logs.glob("access-2026-10-21.log*")
    os.utime(path, (1_800_000_000, 1_800_000_000))  # touched, not changed
    assert materialize(WEBLOGS).ok
    recorded = query(
        warehouse, "SELECT epoch(modified_at) FROM etl.file_manifest WHERE path = ?", [str(path)]
    )[0][0]
    assert recorded == 1_800_000_000
    hashed: list[Path] = []
    real_hash = file_manifest.content_hash
    monkeypatch.setattr(file_manifest, "content_hash", lambda p: hashed.append(p) or real_hash(p))
    assert materialize(WEBLOGS).ok
    assert hashed == []


def _line(when: str, path: str) -> str:
    return f'181.1.2.3 - - [{when}] "GET {path} HTTP/1.1" 200 512 "-" "curl/8.5.0"'


def test_lines_held_for_the_cutoff_load_once_it_passes_them(log_warehouse, monkeypatch):
    """As-of 25 Nov: the cutoff is 26 Nov 00:00:00 UTC, 21:00 in Buenos Aires. The last
    second before it loads; the instant itself and later wait as future_request, and load
    when the as-of day moves on; no other file is read again."""
    warehouse, logs = log_warehouse
    evening = logs / "access.log-20261125"
    evening.write_text(
        "\n".join([
            _line("25/Nov/2026:20:59:59 -0300", "/last-second"),
            _line("25/Nov/2026:21:00:00 -0300", "/cutoff-instant"),
            _line("25/Nov/2026:23:30:00 -0300", "/late-evening"),
        ]) + "\n"
    )  # fmt: skip
    assert materialize(WEBLOGS).ok

    def held() -> list[tuple]:
        return query(
            warehouse,
            "SELECT record_key, reason_code FROM quarantine.rejected_records"
            " WHERE starts_with(record_key, 'access.log-20261125:') ORDER BY 1",
        )

    assert held() == [
        ("access.log-20261125:2", "future_request"),
        ("access.log-20261125:3", "future_request"),
    ]
    assert _lines_of(warehouse, evening) == 1
    loaded_at = ("SELECT path, partition_key, loaded_at FROM etl.file_manifest"
                 " WHERE source = 'weblogs' AND path <> ?")  # fmt: skip
    others = {(path, month): at for path, month, at in query(warehouse, loaded_at, [str(evening)])}
    monkeypatch.setenv("B2B_AS_OF", "2026-11-26")
    assert materialize(WEBLOGS).ok
    assert held() == [] and _lines_of(warehouse, evening) == 3
    cutoff = query(warehouse, "SELECT load_cutoff, held_from FROM etl.file_manifest"
                   " WHERE path = ?", [str(evening)])  # fmt: skip
    assert cutoff == [(dt.datetime(2026, 11, 27), None)]
    # read again: the files that held lines of the evening of the 25th; the rest not
    again = {
        Path(path).name
        for path, month, at in query(warehouse, loaded_at, [str(evening)])
        if at != others[(path, month)]
    }
    assert again <= {"access-2026-11-25.log", "access-2026-11-25.log.gz"}
    assert _accounting_ok(warehouse)


def test_a_growing_log_is_read_from_where_its_load_stopped(log_warehouse, monkeypatch):
    """The live access.log: a run reads it to its last complete line; the next reads only
    what was appended (numbered after the lines loaded, findings kept); a file whose
    loaded text changed is read whole again."""
    from b2b_platform.defs.weblogs import loading

    warehouse, logs = log_warehouse
    starts: list[int] = []

    class RecordingReader(loading.LogFileReader):
        def __init__(self, path, **kwargs):
            if path.name == "access.log":
                starts.append(kwargs.get("start", 0))
            super().__init__(path, **kwargs)

    monkeypatch.setattr(loading, "LogFileReader", RecordingReader)
    live = logs / "access.log"
    loaded = "".join(_line(f"24/Nov/2026:10:00:0{i} -0300", f"/a{i}") + "\n" for i in range(3))
    loaded += "not a log line\n"
    half = _line("24/Nov/2026:10:00:05 -0300", "/half")
    live.write_text(loaded + half[:30])  # a server still writing its last line
    assert materialize(WEBLOGS).ok
    manifest = "SELECT rows_read, rows_loaded, text_bytes FROM etl.file_manifest WHERE path = ?"
    assert query(warehouse, manifest, [str(live)]) == [(4, 3, len(loaded))]
    assert starts == [0]

    with live.open("a") as handle:
        handle.write(half[30:] + "\n" + _line("24/Nov/2026:10:00:06 -0300", "/b") + "\n")
    assert materialize(WEBLOGS).ok
    assert starts == [0, len(loaded)]  # only the appended text was read
    identity = "SELECT first_line_hash FROM etl.file_manifest WHERE path = ?"
    assert query(warehouse, identity, [str(live)])[0][0] is not None  # rotation follows it
    assert query(warehouse, manifest, [str(live)]) == [(6, 5, live.stat().st_size)]
    numbers = query(warehouse, "SELECT line_number FROM raw.weblogs WHERE source_file = ?"
                    " ORDER BY 1", [str(live)])  # fmt: skip
    assert [n for (n,) in numbers] == [1, 2, 3, 5, 6]
    findings = ("SELECT record_key FROM quarantine.rejected_records"
                " WHERE record_key LIKE 'access.log:%' ORDER BY 1")  # fmt: skip
    assert query(warehouse, findings) == [("access.log:4",)]

    # the loaded text itself changed (not an append): read whole, its rows replaced
    live.write_text(loaded.replace("/a1", "/changed") + half + "\n" + "x" * 50 + "\n")
    assert materialize(WEBLOGS).ok
    assert starts[-1] == 0
    assert query(warehouse, manifest, [str(live)]) == [(6, 4, live.stat().st_size)]
    assert _lines_of(warehouse, live) == 4
    assert query(warehouse, findings) == [("access.log:4",), ("access.log:6",)]
    assert _accounting_ok(warehouse)


def test_a_log_rotated_after_midnight_feeds_both_months(log_warehouse):
    """A file rotated at 06:25 on 1 Nov holds the last hours of October and the first of
    November: each line goes to the month of its own time (in UTC, as every time in the
    warehouse: 21:00 in Buenos Aires on 31 Oct is November), each month's manifest row
    counts its own lines."""
    warehouse, logs = log_warehouse
    server = logs / "web9"
    server.mkdir()
    rotated = server / "access.log.1"
    rotated.write_text(
        "".join(
            _line(when, path) + "\n"
            for when, path in [
                ("31/Oct/2026:06:25:01 -0300", "/october-morning"),
                ("31/Oct/2026:20:59:59 -0300", "/october-last"),
                ("31/Oct/2026:21:00:00 -0300", "/november-first"),
                ("01/Nov/2026:06:24:59 -0300", "/november-dawn"),
            ]
        )
        + "garbage\n"
    )
    assert materialize(WEBLOGS).ok
    months = query(warehouse, "SELECT partition_key, count(*) FROM raw.weblogs"
                   " WHERE source_file = ? GROUP BY ALL ORDER BY 1", [str(rotated)])  # fmt: skip
    assert months == [("2026-10-01", 2), ("2026-11-01", 2)]
    rows = query(warehouse, "SELECT partition_key, rows_read, rows_loaded FROM etl.file_manifest"
                 " WHERE path = ? ORDER BY 1", [str(rotated)])  # fmt: skip
    # the line without a time goes with the file's own day (its first request's)
    assert rows == [("2026-10-01", 3, 2), ("2026-11-01", 2, 2)]
    web = query(warehouse, "SELECT partition_key, count(*) FROM core.fct_web_requests"
                " WHERE server = 'web9' GROUP BY ALL ORDER BY 1")  # fmt: skip
    assert web == [("2026-10-01", 2), ("2026-11-01", 2)]
    assert _accounting_ok(warehouse)


def test_forgetting_a_servers_gone_file_takes_its_rows_and_findings(log_warehouse, capsys):
    """Files of a web server's subdirectory are present, not missing; one deleted by
    retention is forgotten with its findings (named `web2/<file>:<line>`)."""
    warehouse, logs = log_warehouse
    server = logs / "web2"
    server.mkdir()
    gone, staying = server / "access.log.2", server / "access.log.1"
    gone.write_text(_line("20/Nov/2026:10:00:00 -0300", "/a") + "\ngarbage\n")
    staying.write_text(_line("21/Nov/2026:10:00:00 -0300", "/b") + "\ngarbage\n")
    assert materialize(WEBLOGS).ok
    findings = ("SELECT record_key FROM quarantine.rejected_records"
                " WHERE starts_with(record_key, 'web2/') ORDER BY 1")  # fmt: skip
    assert query(warehouse, findings) == [("web2/access.log.1:2",), ("web2/access.log.2:2",)]
    gone.unlink()
    assert materialize(WEBLOGS).ok
    assert main(["forget-missing-files", "weblogs", "--yes"]) == 0
    assert "removed 1 rows of 1 file(s)" in capsys.readouterr().out
    assert query(warehouse, findings) == [("web2/access.log.1:2",)]
    assert _lines_of(warehouse, gone) == 0 and _lines_of(warehouse, staying) == 1
    assert materialize(WEBLOGS).ok and _accounting_ok(warehouse)
