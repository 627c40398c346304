"""Soak: every entry point at once against one warehouse, as an operator runs it.

`dagster dev` (webserver and daemon) with the sensors and automation on, `b2b run`
started alongside (queued to the daemon) and stopped by SIGTERM mid-way, a second one
in the same process as its steps (`--in-process`) while the daemon's runs go on, new
log files and a changed workbook arriving meanwhile, and the reports launched from the
UI's API, until every sensor has ticked without asking for anything. Every run must
end within a bound, none may fail (on a lock or otherwise),
every break must be in etl.run_log, and the reports must end equal to those of one
clean `b2b run` over the same inputs.

Runs in the suite on tiny data in two to five minutes (about twenty runs, one after
another behind the one-writer pool, each in a run worker that starts Dagster); by
hand, `B2B_SOAK_ROUNDS=5 pytest -m soak -s` repeats the arrivals (a new day of logs and
a changed workbook per round) for a longer soak. `-s` prints the waits measured: the
longest time any run waited between being created and its first step starting (the
queue and the pool), and the longest wait of a step for the warehouse file.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from b2b_platform_tests.dagster_dev import (
    ROOT,
    GraphQL,
    dagster_dev_process,
    wait_for,
    write_test_instance,
)
from b2b_platform_tests.helpers import snapshot, warehouse_env

pytestmark = [pytest.mark.soak, pytest.mark.slow]

ROUNDS = int(os.environ.get("B2B_SOAK_ROUNDS", "1"))
RUN_BOUND_SECONDS = 420  # every run ends within this of its creation
PORT_WAIT_SECONDS = 180

LAUNCH_REPORTS = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) { __typename ... on LaunchRunSuccess { run { runId } } }
}
"""
LOCATION = "{ workspaceOrError { ... on Workspace { locationEntries { name } } } }"
LOCATION_NAME = "b2b_platform"  # workspace.yaml location_name, as dg dev names it
SENSOR_TICKS = """
query($selector: RepositorySelector!) {
  sensorsOrError(repositorySelector: $selector) {
    ... on Sensors { results { name sensorState { ticks(limit: 2) { timestamp status } } } }
  }
}
"""
RUN_STARTING_SENSORS = ("weblog_files_sensor", "lead_workbooks_sensor", "follow_upstream_sensor")
REPORTS = ["lead_conversion", "monthly_sales", "top_devices", "top_products_by_country"]


def _age(paths: list[Path], seconds: float) -> None:
    """Files that arrived whole (copied with their times kept): settled for the sensors."""
    then = time.time() - seconds
    for path in paths:
        os.utime(path, (then, then))


def _b2b(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "b2b_platform.cli", "run", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _new_day_of_logs(logs: Path, day: dt.date, template: Path) -> Path:
    """A log file for a day with no file yet, its lines re-dated to that day."""
    import gzip

    raw = template.read_bytes()
    text = (gzip.decompress(raw) if template.name.endswith(".gz") else raw).decode()
    found = re.search(r"\d{4}-\d{2}-\d{2}", template.name)
    assert found, template
    original = dt.date.fromisoformat(found.group())
    old, new = original.strftime("%d/%b/%Y"), day.strftime("%d/%b/%Y")
    path = logs / f"access-{day.isoformat()}.log"
    path.write_text(text.replace(old, new))
    return path


def _change_workbook(path: Path, round_: int) -> None:
    """A campaign workbook edited and saved again: one more lead, a copy of the last row
    under a new lead id (whatever the export calls that column)."""
    import openpyxl

    book = openpyxl.load_workbook(path)
    sheet = book.active
    header_row = next(
        row for row in sheet.iter_rows(max_row=10)
        if any("lead" in str(c.value or "").lower() and "id" in str(c.value or "").lower() for c in row)
    )  # fmt: skip
    column = next(i for i, c in enumerate(header_row)
                  if "lead" in str(c.value or "").lower() and "id" in str(c.value or "").lower())  # fmt: skip
    row = [cell.value for cell in sheet[sheet.max_row]]
    row[column] = f"LD-9{round_:05d}"
    sheet.append(row)
    book.save(path)


def _arrive(data: Path, round_: int) -> None:
    """A new day of logs (in August, before the months already loaded) and a workbook
    saved again with one more lead, both settled (written ten minutes ago)."""
    logs = data / "weblogs"
    template = sorted(logs.glob("access-2026-10-*.log*"))[0]
    new_log = _new_day_of_logs(logs, dt.date(2026, 9, 1) - dt.timedelta(days=round_ + 1), template)
    workbook = sorted((data / "leads").glob("*.xlsx"))[-1]
    _change_workbook(workbook, round_)
    _age([new_log, workbook], 600)


def _clean_build(data: Path, directory: Path) -> subprocess.Popen:
    """One `b2b run` of everything over `data` into an empty warehouse in `directory`, in
    its own process (and Dagster home) while the soak goes on: the reference."""
    env = {**os.environ, **warehouse_env(data, directory / "b2b.duckdb"),
           "DAGSTER_HOME": str(directory / "home"), "B2B_AUTOMATION": "off"}  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "b2b_platform.cli", "run", "--in-process"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _instance(home: Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(home))


def _open_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    terminal = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE,
                dg.DagsterRunStatus.CANCELED}  # fmt: skip
    return [r for r in instance.get_runs() if r.status not in terminal]


def _quiet(instance: dg.DagsterInstance, graphql: GraphQL, since: list[float]) -> bool:
    """Nothing left to do: no run open, and every sensor that starts runs has ticked,
    asking for nothing, twice since the last run ended and the last files arrived (once
    is not enough: automation skips a tick whose inputs it still sees in progress, and
    asks on the next)."""
    if _open_runs(instance):
        return False
    records = instance.get_run_records(limit=50)
    settled = max([since[0]] + [r.end_time or 0.0 for r in records])
    answer = graphql(SENSOR_TICKS, {"selector": {"repositoryLocationName": LOCATION_NAME,
                                                 "repositoryName": "__repository__"}})  # fmt: skip
    ticks = {sensor["name"]: sensor["sensorState"]["ticks"]
             for sensor in answer["sensorsOrError"]["results"]}  # fmt: skip
    return all(
        len(ticks.get(name) or []) == 2
        and all(t["timestamp"] > settled and t["status"] == "SKIPPED" for t in ticks[name])
        for name in RUN_STARTING_SENSORS
    )


def test_every_entry_point_at_once_converges_to_one_clean_run(tmp_path, tiny_sources) -> None:
    tiny_data, _ = tiny_sources
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    _age(list(data.rglob("*")), 3600)
    warehouse = tmp_path / "warehouse" / "b2b.duckdb"
    home = tmp_path / "home"
    home.mkdir()
    write_test_instance(home)
    # sensors every 5 s instead of a minute: quiet is two skipped ticks of each
    env = {**os.environ, **warehouse_env(data, warehouse), "DAGSTER_HOME": str(home),
           "B2B_AUTOMATION": "on", "B2B_SENSOR_INTERVAL_SECONDS": "5"}  # fmt: skip
    # the daemon's runs hold the last month of order facts a minute before its commit
    # (the months run of the first `b2b run` is the only one that writes it), so the
    # SIGTERM below always finds a write in flight
    dev_env = {**env, "B2B_FAULT_SLOW_BEFORE_COMMIT": "core/fct_order_lines@2026-11-01"}
    started = time.time()

    with dagster_dev_process(tmp_path, dev_env) as (graphql, process):
        env["B2B_DAGSTER_URL"] = f"http://127.0.0.1:{graphql.port}"
        instance = _instance(home)

        def daemon_and_location_up() -> bool:
            assert process.poll() is None, (tmp_path / "dev.log").read_text()[-3000:]
            try:
                entries = graphql(LOCATION)["workspaceOrError"]["locationEntries"]
            except OSError:
                return False
            beats = instance.get_daemon_heartbeats()
            return bool(entries) and bool(beats)

        wait_for("the webserver and the daemon", daemon_and_location_up, PORT_WAIT_SECONDS)

        # 1. `b2b run` queued to the daemon alongside the sensors' first runs; SIGTERM
        #    while its first run (the snapshots and the months) executes
        first = _b2b(env)
        assert first.stdout is not None
        lines = []
        for line in first.stdout:
            lines.append(line)
            if line.startswith("materializing"):
                break
        else:
            pytest.fail(f"the first b2b run never began: {''.join(lines)}")
        # (it may first wait for the warehouse, written by the sensors' first runs)
        assert "queued to the daemon" in lines[-1], lines

        def holding_a_write() -> bool:
            started_runs = instance.get_runs(filters=dg.RunsFilter(
                statuses=[dg.DagsterRunStatus.STARTED],
                tags={"b2b/launched_by": "b2b run"}))  # fmt: skip
            return any(
                e.dagster_event.step_key == "core__fct_order_lines"
                for run in started_runs
                for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START)
                if e.dagster_event
            )

        wait_for("the first b2b run to reach the held write", holding_a_write,
                 180, every=0.2)  # fmt: skip
        time.sleep(3)  # its earlier months commit; the last one is held mid-write
        first.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        rest, _ = first.communicate(timeout=60)
        stop_seconds = time.monotonic() - sent
        assert stop_seconds < 10, f"b2b run took {stop_seconds:.1f} s to stop"
        assert first.returncode == 130, "".join(lines) + rest
        assert "not materialized" in rest

        # 2. a second `b2b run`, its steps in its own process, while the daemon works;
        #    once it has loaded the month partitions, files arrive for the sensors
        second = _b2b(env, "--in-process")
        assert second.stdout is not None
        out = []  # to its first stage's end (it may first wait for the daemon's writes)
        for line in second.stdout:
            out.append(line)
            if line.startswith(("  ok", "  FAILED")):
                break
        materializing = [line for line in out if line.startswith("materializing")]
        assert materializing and "in this process" in materializing[0], out
        assert out[-1].startswith("  ok"), out
        changed_at = [time.time()]
        for round_ in range(ROUNDS):
            _arrive(data, round_)
            changed_at[0] = time.time()
            if round_ == ROUNDS - 1:  # the inputs are final: their clean build, meanwhile
                clean = _clean_build(data, tmp_path / "clean")
            if round_ == 0:
                rest, _ = second.communicate(timeout=RUN_BOUND_SECONDS)
                assert second.returncode == 0, "".join(out) + rest
            # 3. the reports launched as the UI's "Materialize" does, runs in flight
            [location] = graphql(LOCATION)["workspaceOrError"]["locationEntries"]
            launched = graphql(LAUNCH_REPORTS, {"params": {"selector": {
                "repositoryLocationName": location["name"], "repositoryName": "__repository__",
                "jobName": "__ASSET_JOB",
                "assetSelection": [{"path": ["reports", name]} for name in REPORTS]}}})  # fmt: skip
            assert launched["launchRun"]["__typename"] == "LaunchRunSuccess", launched
            # 4. sensors and automation pick everything up, then all is quiet
            wait_for("every run to end and the sensors to settle",
                     lambda: _quiet(instance, graphql, changed_at), timeout=RUN_BOUND_SECONDS * 2,
                     every=5)  # fmt: skip

        runs = instance.get_run_records()
        summary = _measure(instance, runs)
        timeline = _timeline(instance, runs)
        print(f"\nsoak: {len(runs)} runs in {time.time() - started:.0f} s; {summary}")

        failed = [(r.dagster_run.job_name, r.dagster_run.tags.get("b2b/launched_by"))
                  for r in runs if r.dagster_run.status == dg.DagsterRunStatus.FAILURE]  # fmt: skip
        assert failed == [], _failures(instance, runs)
        for record in runs:
            took = (record.end_time or time.time()) - record.create_timestamp.timestamp()
            assert took < RUN_BOUND_SECONDS, (record.dagster_run.run_id, took)
        launched_by = {r.dagster_run.tags.get("b2b/launched_by") for r in runs}
        assert {
            "b2b run",
            "sensor weblog_files_sensor",
            "sensor lead_workbooks_sensor",
        } <= launched_by
        names = {r.dagster_run.job_name for r in runs}
        assert {"b2b_refresh", "weblogs_month_job", "leads_job"} <= names

    # every break is on record: the run SIGTERM stopped is `interrupted` in etl.run_log
    canceled = [
        r.dagster_run.run_id for r in runs if r.dagster_run.status == dg.DagsterRunStatus.CANCELED
    ]
    assert canceled, "the SIGTERM stopped no run"
    from b2b_platform_tests.helpers import query

    for run_id in canceled:
        rows = query(warehouse, "SELECT status FROM etl.run_log WHERE run_id = ?"
                     " AND status = 'interrupted'", [run_id])  # fmt: skip
        assert rows, f"canceled run {run_id} is not in etl.run_log"

    # the same inputs, one clean run: the same reports
    out, _ = clean.communicate(timeout=RUN_BOUND_SECONDS)
    assert clean.returncode == 0, out
    soaked = snapshot(warehouse, ("reports",))
    reference = snapshot(tmp_path / "clean" / "b2b.duckdb", ("reports",))
    for table in reference:
        assert soaked[table] == reference[table], f"{table}\n{timeline}"


def _timeline(instance: dg.DagsterInstance, runs: list) -> str:
    """Each run's job, launcher, start and end, and what it materialized, in order: what
    a failed comparison needs to be understood."""
    lines = []
    for record in sorted(runs, key=lambda r: r.create_timestamp):
        events = instance.all_logs(record.dagster_run.run_id)
        made = [
            f"{e.dagster_event.asset_key.to_user_string()}@{e.timestamp % 1000:.1f}"
            for e in events
            if e.dagster_event and e.dagster_event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
        ]  # fmt: skip
        run = record.dagster_run
        lines.append(
            f"{record.create_timestamp.timestamp() % 1000:.1f}-{(record.end_time or 0) % 1000:.1f}"
            f" {run.job_name} ({run.tags.get('b2b/launched_by')}) {run.status.value}: {' '.join(made)}"
        )
    return "\n".join(lines)


def _measure(instance: dg.DagsterInstance, runs: list) -> str:
    """The longest wait of any run before its first step (queue and pool), and of any
    step for the warehouse file (from the steps' own log lines)."""
    longest_queue, queue_run = 0.0, ""
    longest_lock = 0.0
    for record in runs:
        events = instance.all_logs(record.dagster_run.run_id)
        starts = [e.timestamp for e in events
                  if e.dagster_event and e.dagster_event.event_type == dg.DagsterEventType.STEP_START]  # fmt: skip
        if starts:
            waited = min(starts) - record.create_timestamp.timestamp()
            if waited > longest_queue:
                longest_queue, queue_run = waited, record.dagster_run.job_name
        for event in events:
            found = re.search(r"opened after waiting ([\d.]+) s", event.user_message or "")
            if found:
                longest_lock = max(longest_lock, float(found.group(1)))
            assert "gave up after" not in (event.user_message or ""), event.user_message
    return (f"longest wait before a first step {longest_queue:.1f} s ({queue_run}); "
            f"longest wait of a step for the warehouse file {longest_lock:.1f} s")  # fmt: skip


def _failures(instance: dg.DagsterInstance, runs: list) -> str:
    """Each failed step's innermost error, for the assertion message."""
    lines = []
    for record in runs:
        if record.dagster_run.status != dg.DagsterRunStatus.FAILURE:
            continue
        for event in instance.all_logs(record.dagster_run.run_id):
            if event.dagster_event and event.dagster_event.is_step_failure:
                error = event.dagster_event.step_failure_data.error
                while error is not None and error.cause is not None:
                    error = error.cause
                message = error.message.strip()[:300] if error else "?"
                lines.append(f"{record.dagster_run.job_name} {event.step_key}: {message}")
    return "\n".join(lines)
