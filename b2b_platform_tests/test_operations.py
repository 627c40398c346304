"""Sensors, the daily schedule, the run-failure sensor and declarative automation."""

import contextlib
import datetime as dt
import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from unittest.mock import ANY

import dagster as dg
import pytest

from b2b_platform.defs.operations import file_requests, sensors
from b2b_platform.defs.operations.run_failures import build_run_break_sensors
from b2b_platform.defs.operations.schedules import build_daily_refresh
from b2b_platform.defs.operations.sensors import (
    build_lead_workbooks_sensor,
    build_weblog_files_sensor,
)
from b2b_platform.lib.resources import CalendarResource, DirectoryResource
from b2b_platform.lib.settings import Settings
from b2b_platform.lib.warehouse.resource import WarehouseResource
from b2b_platform_tests.helpers import materialize, query

# The definitions under test, as the code location builds them with automation off.
weblog_files_sensor = build_weblog_files_sensor(dg.DefaultSensorStatus.STOPPED, 60)
lead_workbooks_sensor = build_lead_workbooks_sensor(dg.DefaultSensorStatus.STOPPED, 60)
record_failed_runs, record_canceled_runs = build_run_break_sensors(dg.DefaultSensorStatus.STOPPED)
daily_refresh = build_daily_refresh(dg.DefaultScheduleStatus.STOPPED)
CALENDAR = CalendarResource.from_settings(Settings.from_env())  # the tests' as-of month

LINE = '181.1.2.3 - ana [03/Sep/2026:10:00:00 -0300] "GET / HTTP/1.1" 200 5 "-" "curl/8"\n'


@pytest.fixture(autouse=True)
def files_settle_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written by a test are seconds old: let them count as settled, except where a
    test checks the settle rule itself."""
    monkeypatch.setattr(sensors, "SETTLE_SECONDS", 0)


@contextlib.contextmanager
def _locked_by_another_process(warehouse: Path) -> Iterator[None]:
    """DuckDB's writer lock on the warehouse, held by a second process (as a run would)."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import duckdb, time; c = duckdb.connect({str(warehouse)!r}); print('ready', flush=True);"
         " time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        yield
    finally:
        holder.kill()
        holder.wait()


def _tick(
    sensor: dg.SensorDefinition, resource: str, directory: Path, cursor: str | None,
    warehouse: Path | None = None,
):  # fmt: skip
    warehouse = warehouse or directory.parent / "no-warehouse.duckdb"
    context = dg.build_sensor_context(
        cursor=cursor,
        resources={resource: DirectoryResource(path=str(directory)),
                   "duckdb": WarehouseResource(database=str(warehouse)), "calendar": CALENDAR},
    )  # fmt: skip
    return sensor(context)


def _requests(result) -> list[dg.RunRequest]:
    assert isinstance(result, dg.SensorResult), result
    assert result.run_requests, result.skip_reason
    return list(result.run_requests)


def _skipped(result) -> str:
    """The reason of a tick that asked for nothing (its cursor may still move)."""
    if isinstance(result, dg.SkipReason):
        return result.skip_message or ""
    assert isinstance(result, dg.SensorResult) and not result.run_requests, result
    return result.skip_reason.skip_message if result.skip_reason else ""


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """How the runs the sensors asked for ended, by run key (unknown keys: not launched)."""
    statuses: dict[str, str] = {}
    monkeypatch.setattr(sensors, "run_status_lookup",
                        lambda context, sensor: lambda key: statuses.get(key, file_requests.MISSING))  # fmt: skip
    return statuses


def _succeed(runs: dict[str, str], *requests: dg.RunRequest) -> None:
    for request in requests:
        assert request.run_key is not None
        runs[request.run_key] = file_requests.SUCCESS


def test_weblog_sensor_new_changed_removed_and_nothing_new(tmp_path: Path, runs) -> None:
    logs = tmp_path / "weblogs"
    logs.mkdir()
    assert "no new" in _skipped(_tick(weblog_files_sensor, "log_dir", logs, None))

    (logs / "access-2026-09-03.log").write_text(LINE)
    (logs / "access-2026-10-02.log").write_text(LINE)
    (logs / "notes.txt").write_text("not a log file")
    first = _tick(weblog_files_sensor, "log_dir", logs, None)
    requests = _requests(first)
    assert [r.partition_key for r in requests] == ["2026-09-01", "2026-10-01"]
    assert len({r.run_key for r in requests}) == 2
    assert {r.tags["b2b/launched_by"] for r in requests} == {"sensor weblog_files_sensor"}

    # while the runs are queued, the same files are not asked for again
    waiting = _tick(weblog_files_sensor, "log_dir", logs, first.cursor)
    assert "2 run(s) asked for still queued or running" in _skipped(waiting)
    _succeed(runs, *requests)
    done = _tick(weblog_files_sensor, "log_dir", logs, waiting.cursor)
    assert "no new" in _skipped(done) and "queued" not in _skipped(done)
    # known per file and month (a file's lines may feed two months)
    assert set(json.loads(done.cursor)["known"]) == {
        f"2026-09-01 {logs / 'access-2026-09-03.log'}",
        f"2026-10-01 {logs / 'access-2026-10-02.log'}",
    }

    # a changed file asks again for its month only, under a new run key
    day = logs / "access-2026-09-03.log"
    day.write_text(LINE * 2)
    os.utime(day, ns=(1, 2))
    changed = _tick(weblog_files_sensor, "log_dir", logs, done.cursor)
    [again] = _requests(changed)
    assert again.partition_key == "2026-09-01" and again.run_key not in {
        r.run_key for r in requests
    }
    _succeed(runs, again)

    # a file dated before the first month loads (as out_of_range) with the first month;
    # a removed file asks for its month so its rows go
    (logs / "access-2025-01-01.log").write_text(LINE)
    (logs / "access-2026-10-02.log").unlink()
    later = _requests(_tick(weblog_files_sensor, "log_dir", logs, changed.cursor))
    assert sorted(r.partition_key for r in later) == ["2026-08-01", "2026-10-01"]


def test_a_failed_run_is_not_asked_for_again_until_its_files_change(tmp_path: Path, runs) -> None:
    """Retrying is Dagster's (the step's retry policy, the deployment's run retries): a
    run that failed after them is not asked for again by every tick, only for a change."""
    logs = tmp_path / "weblogs"
    logs.mkdir()
    day = logs / "access-2026-09-03.log"
    day.write_text(LINE)
    first = _tick(weblog_files_sensor, "log_dir", logs, None)
    [request] = _requests(first)
    assert request.run_key is not None
    runs[request.run_key] = file_requests.FAILED
    failed = _tick(weblog_files_sensor, "log_dir", logs, first.cursor)
    assert "no new" in _skipped(failed)
    assert json.loads(failed.cursor) == {"known": {f"2026-09-01 {day}": ANY}, "requested": {}}

    day.write_text(LINE * 2)  # the operator fixed the file
    os.utime(day, ns=(1, 2))
    [again] = _requests(_tick(weblog_files_sensor, "log_dir", logs, failed.cursor))
    assert again.partition_key == "2026-09-01" and again.run_key != request.run_key


def test_a_run_that_never_appeared_is_asked_for_again(tmp_path: Path, runs) -> None:
    logs = tmp_path / "weblogs"
    logs.mkdir()
    (logs / "access-2026-09-03.log").write_text(LINE)
    state = json.loads(_tick(weblog_files_sensor, "log_dir", logs, None).cursor)
    for request in state["requested"].values():
        request["at"] = "2000-01-01T00:00:00"  # asked for long ago, never launched
    [request] = state["requested"]
    [again] = _requests(_tick(weblog_files_sensor, "log_dir", logs, json.dumps(state)))
    assert again.partition_key == "2026-09-01" and again.run_key == request


def _write_manifest(warehouse: Path, source: str, *paths: Path) -> None:
    """What a load of these files leaves: manifest rows and the loaded-files state."""
    import duckdb

    from b2b_platform.lib.input_files.file_manifest import InputFile
    from b2b_platform.lib.warehouse.loaded_files import write_loaded_files
    from b2b_platform.lib.warehouse.schema import ensure_warehouse_schema

    with duckdb.connect(str(warehouse)) as conn:
        ensure_warehouse_schema(conn)
        for path in paths:
            version = InputFile.stat(path)
            conn.execute(
                "INSERT INTO etl.file_manifest (source, path, partition_key, size_bytes,"
                " modified_at, status) VALUES (?, ?, '2026-09-01', ?, ?, 'loaded')",
                [source, str(path), version.size_bytes, version.modified_at],
            )
        write_loaded_files(conn, warehouse)


def _one_loaded_one_new(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A log directory with one file the warehouse loaded and one it did not."""
    logs = tmp_path / "weblogs"
    logs.mkdir()
    loaded, new = logs / "access-2026-09-03.log", logs / "access-2026-10-02.log"
    loaded.write_text(LINE)
    new.write_text(LINE)
    warehouse = tmp_path / "b2b.duckdb"
    _write_manifest(warehouse, "weblogs", loaded)
    return logs, loaded, warehouse


def test_first_tick_starts_from_what_the_warehouse_loaded(tmp_path: Path, runs) -> None:
    logs, loaded, warehouse = _one_loaded_one_new(tmp_path)
    (tmp_path / "b2b.duckdb.files.json").unlink()  # a warehouse from before the state file
    result = _tick(weblog_files_sensor, "log_dir", logs, None, warehouse)
    assert [r.partition_key for r in _requests(result)] == ["2026-10-01"]
    assert set(json.loads(result.cursor)["known"]) == {f"2026-09-01 {loaded}"}


def test_files_b2b_run_loaded_do_not_start_runs(tmp_path: Path, runs) -> None:
    logs = tmp_path / "weblogs"
    logs.mkdir()
    warehouse = tmp_path / "b2b.duckdb"
    _write_manifest(warehouse, "weblogs")
    quiet = _tick(weblog_files_sensor, "log_dir", logs, None, warehouse)
    # meanwhile `b2b run` loads a new file: the state next to the warehouse says so
    (logs / "access-2026-09-03.log").write_text(LINE)
    _write_manifest(warehouse, "weblogs", logs / "access-2026-09-03.log")
    assert "no new" in _skipped(
        _tick(weblog_files_sensor, "log_dir", logs, quiet.cursor, warehouse)
    )


def test_a_month_waits_for_the_tables_its_staging_reads(tmp_path: Path, runs) -> None:
    """A new deployment: before the platform users are staged, a month of logs would fail
    on the missing table, so the sensor waits (its cursor unmoved) and says for what."""
    from b2b_platform.definitions import defs

    logs = tmp_path / "weblogs"
    logs.mkdir()
    (logs / "access-2026-09-03.log").write_text(LINE)
    instance = dg.DagsterInstance.ephemeral()
    context = dg.build_sensor_context(
        instance=instance, repository_def=defs().get_repository_def(),
        resources={"log_dir": DirectoryResource(path=str(logs)),
                   "duckdb": WarehouseResource(database=str(tmp_path / "none.duckdb")),
                   "calendar": CALENDAR},
    )  # fmt: skip
    waiting = weblog_files_sensor(context)
    assert "waiting for staging/platform_users to be built first" in _skipped(waiting)
    users = dg.AssetKey(["staging", "platform_users"])
    instance.report_runless_asset_event(dg.AssetMaterialization(users))
    [request] = _requests(weblog_files_sensor(context))
    assert request.partition_key == "2026-09-01"


def test_weblog_sensor_without_directory_skips(tmp_path: Path) -> None:
    result = _tick(weblog_files_sensor, "log_dir", tmp_path / "missing", None)
    assert isinstance(result, dg.SkipReason) and "does not exist" in (result.skip_message or "")


def test_sensors_never_follow_links_or_block_on_odd_entries(tmp_path: Path) -> None:
    logs, leads = tmp_path / "weblogs", tmp_path / "leads"
    logs.mkdir()
    leads.mkdir()
    (tmp_path / "outside.log").write_text(LINE)
    (logs / "access-2026-09-03.log").symlink_to(tmp_path / "outside.log")
    (logs / "access-2026-09-04.log").symlink_to("/nonexistent")
    os.mkfifo(logs / "access-2026-09-05.log")  # reading it would block the daemon
    (logs / "access-2026-09-06.log").mkdir()
    (leads / "gone.xlsx").symlink_to("/nonexistent")
    os.close(os.open(os.fsencode(leads) + b"/caf\xe9.xlsx", os.O_CREAT | os.O_WRONLY))
    assert "no new" in _skipped(_tick(weblog_files_sensor, "log_dir", logs, None))
    assert "no new" in _skipped(_tick(lead_workbooks_sensor, "leads_dir", leads, None))
    (logs / "access-2026-09-07.log").write_text(LINE)
    [request] = _requests(_tick(weblog_files_sensor, "log_dir", logs, None))
    assert request.partition_key == "2026-09-01"


def test_a_compressed_log_still_being_written_waits_until_it_settles(
    tmp_path, monkeypatch, runs
) -> None:
    """gzip may still be writing a `.gz` modified in the last minutes: it waits."""
    monkeypatch.setattr(sensors, "SETTLE_SECONDS", 300)
    logs = tmp_path / "weblogs"
    logs.mkdir()
    day = logs / "access-2026-09-03.log.gz"
    day.write_bytes(gzip.compress(LINE.encode()))  # modified just now: still being written
    waiting = _tick(weblog_files_sensor, "log_dir", logs, None)
    assert "1 still being written" in _skipped(waiting)
    old = (dt.datetime.now() - dt.timedelta(minutes=10)).timestamp()
    os.utime(day, (old, old))
    first = _tick(weblog_files_sensor, "log_dir", logs, None)
    [request] = _requests(first)
    _succeed(runs, request)
    # written again: nothing is asked for (nor taken as removed) until it is quiet again
    day.write_bytes(gzip.compress((LINE * 2).encode()))
    growing = _tick(weblog_files_sensor, "log_dir", logs, first.cursor)
    assert "1 still being written" in _skipped(growing)
    os.utime(day, (old + 60, old + 60))
    [again] = _requests(_tick(weblog_files_sensor, "log_dir", logs, growing.cursor))
    assert again.run_key != request.run_key


def test_the_live_log_is_asked_for_as_it_grows(tmp_path: Path, runs) -> None:
    """A plain log does not wait to be quiet: its load reads complete lines and the next
    reads only what was appended, so each tick after a run may bring the new lines."""
    logs = tmp_path / "weblogs"
    logs.mkdir()
    live = logs / "access.log"
    live.write_text(LINE)  # written this very second
    first = _tick(weblog_files_sensor, "log_dir", logs, None)
    requests = _requests(first)
    # its lines may fall on any day from its first request's to the day it was written
    months = CALENDAR.monthly_partitions().get_partition_keys()
    assert [r.partition_key for r in requests] == [m for m in months if m >= "2026-09-01"]
    _succeed(runs, *requests)
    with live.open("a") as handle:
        handle.write(LINE)
    again = _requests(_tick(weblog_files_sensor, "log_dir", logs, first.cursor))
    assert len(again) == len(requests)
    assert not {r.run_key for r in again} & {r.run_key for r in requests}


def test_a_file_at_a_months_edge_asks_for_both_months(tmp_path: Path, runs) -> None:
    """A file's lines belong to the months of their own times: a day file may hold the
    previous day's last requests, a rotated file the next day's first hours."""
    logs = tmp_path / "weblogs"
    logs.mkdir()
    edge = logs / "access-2026-10-01.log"
    edge.write_text(LINE)
    requests = _requests(_tick(weblog_files_sensor, "log_dir", logs, None))
    assert [r.partition_key for r in requests] == ["2026-09-01", "2026-10-01"]
    # September's load read it (October's listed the directory before it arrived): the
    # file is known per month, so October is still asked for
    warehouse = tmp_path / "b2b.duckdb"
    _write_manifest(warehouse, "weblogs", edge)  # a September row
    [october] = _requests(_tick(weblog_files_sensor, "log_dir", logs, None, warehouse))
    assert october.partition_key == "2026-10-01"


def test_a_locked_warehouse_is_not_taken_for_an_empty_one(tmp_path: Path) -> None:
    logs = tmp_path / "weblogs"
    logs.mkdir()
    (logs / "access-2026-09-03.log").write_text(LINE)
    warehouse = tmp_path / "b2b.duckdb"
    with _locked_by_another_process(warehouse):  # no state file yet: the warehouse is asked
        busy = _tick(weblog_files_sensor, "log_dir", logs, None, warehouse)
        assert isinstance(busy, dg.SkipReason) and "cannot read what the warehouse loaded" in (
            busy.skip_message or ""
        )
        assert isinstance(
            _tick(lead_workbooks_sensor, "leads_dir", logs, None, warehouse), dg.SkipReason
        )
    [request] = _requests(_tick(weblog_files_sensor, "log_dir", logs, None, warehouse))
    assert request.partition_key == "2026-09-01"


def test_a_running_load_never_blocks_a_sensor(tmp_path: Path) -> None:
    logs, _, warehouse = _one_loaded_one_new(tmp_path)
    with _locked_by_another_process(warehouse):  # a run writes: the state file answers
        result = _tick(weblog_files_sensor, "log_dir", logs, None, warehouse)
    assert [r.partition_key for r in _requests(result)] == ["2026-10-01"]


def test_lead_sensor_one_run_per_change(tmp_path: Path, runs) -> None:
    (tmp_path / "campaign.xlsx").write_bytes(b"x")
    (tmp_path / "~$campaign.xlsx").write_bytes(b"lock")  # Excel's lock file is no workbook
    first = _tick(lead_workbooks_sensor, "leads_dir", tmp_path, None)
    [request] = _requests(first)
    assert request.tags["b2b/launched_by"] == "sensor lead_workbooks_sensor"
    assert list(json.loads(first.cursor)["requested"][request.run_key]["files"]) == [
        str(tmp_path / "campaign.xlsx")
    ]
    _succeed(runs, request)
    assert "no new" in _skipped(_tick(lead_workbooks_sensor, "leads_dir", tmp_path, first.cursor))
    (tmp_path / "campaign.xlsx").unlink()
    [removal] = _requests(_tick(lead_workbooks_sensor, "leads_dir", tmp_path, first.cursor))
    assert removal.run_key != request.run_key


def test_daily_schedule_refreshes_the_last_two_months() -> None:
    context = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.UTC),
        resources={"calendar": CALENDAR},
    )
    request = daily_refresh(context)
    assert request.tags["dagster/asset_partition_range_start"] == "2026-10-01"
    assert request.tags["dagster/asset_partition_range_end"] == "2026-11-01"
    assert request.run_key == "daily-2026-11-25"
    assert daily_refresh.job_name == "daily_refresh_job"
    assert daily_refresh.cron_schedule == "0 3 * * *"


def test_daily_job_builds_everything_for_two_months_in_one_run(use_warehouse: Path) -> None:
    from b2b_platform.definitions import defs

    definitions = defs()
    context = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.UTC),
        resources={"calendar": CALENDAR},
    )
    request = daily_refresh(context)
    result = definitions.resolve_job_def("daily_refresh_job").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), tags=request.tags, raise_on_error=False
    )
    assert result.success
    months = {
        e.partition
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["raw", "orders"])
    }
    assert months == {"2026-10-01", "2026-11-01"}
    assert query(use_warehouse, "SELECT count(*) FROM reports.monthly_sales") == [(13,)]


def _failed_run(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    @dg.asset
    def broken_source() -> None:
        raise RuntimeError("source went away")

    return dg.materialize([broken_source], instance=instance, raise_on_error=False)


def test_failed_run_is_recorded_in_run_log(tmp_path: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    result = _failed_run(instance)
    assert not result.success
    warehouse = tmp_path / "b2b.duckdb"
    resource = WarehouseResource(database=str(warehouse))

    def sensor_context() -> dg.RunFailureSensorContext:
        return dg.build_run_status_sensor_context(
            sensor_name="record_failed_runs",
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            dagster_event=result.get_run_failure_event(),
            resources={"duckdb": resource},
        ).for_run_failure()

    record_failed_runs(sensor_context())  # failed before any warehouse step: a run row
    rows = query(warehouse, "SELECT asset_key, status, broken_at IS NOT NULL, error"
                 " FROM etl.run_log WHERE run_id = ?", [result.run_id])  # fmt: skip
    assert [r[:3] for r in rows] == [("(run)", "failed", True)]
    assert "broken_source" in rows[0][3]

    record_failed_runs(sensor_context())  # the same failure again changes nothing
    assert len(query(warehouse, "SELECT * FROM etl.run_log")) == 1

    # a step the run left `running` (its process was lost) is marked failed when it broke
    import duckdb

    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("DELETE FROM etl.run_log")
        conn.execute(
            "INSERT INTO etl.run_log (run_id, asset_key, started_at, status)"
            " VALUES (?, 'raw/weblogs', TIMESTAMP '2026-11-25 10:00', 'running')",
            [result.run_id],
        )
    record_failed_runs(sensor_context())
    assert query(warehouse, "SELECT asset_key, status, broken_at > started_at FROM etl.run_log"
                 ) == [("raw/weblogs", "failed", True)]  # fmt: skip


def test_a_canceled_run_is_recorded_as_a_break(tmp_path: Path) -> None:
    """Terminate in the UI, or a signal to `b2b run` between steps: no step records it,
    so the run gets its own `interrupted` row; steps it left running are interrupted."""
    instance = dg.DagsterInstance.ephemeral()
    result = _failed_run(instance)  # any finished run will do as the one canceled
    warehouse = tmp_path / "b2b.duckdb"
    context = dg.build_run_status_sensor_context(
        sensor_name="record_canceled_runs", dagster_instance=instance,
        dagster_run=result.dagster_run, dagster_event=result.get_run_failure_event(),
        resources={"duckdb": WarehouseResource(database=str(warehouse))},
    )  # fmt: skip
    record_canceled_runs(context)
    assert query(warehouse, "SELECT asset_key, status, error FROM etl.run_log") == [
        ("(run)", "interrupted", "run canceled")
    ]
    record_canceled_runs(context)  # once only
    assert len(query(warehouse, "SELECT * FROM etl.run_log")) == 1


def test_reports_follow_upstream_unless_a_blocking_check_failed(use_warehouse: Path) -> None:
    from b2b_platform.definitions import defs

    definitions = defs()
    instance = dg.DagsterInstance.ephemeral()
    assert materialize(instance=instance).ok
    first = dg.evaluate_automation_conditions(defs=definitions, instance=instance)
    assert first.total_requested == 0  # everything is up to date

    facts = dg.AssetKey(["core", "fct_order_lines"])
    fact_checks = ["unique_key", "company_known", "customer_known", "product_known",
                   "no_pii_columns"]  # fmt: skip

    def new_month_of_facts(failing: str | None = None) -> None:
        # what a run of the month writes: the materialization, then its checks' results
        instance.report_runless_asset_event(dg.AssetMaterialization(facts, partition="2026-11-01"))
        for check in fact_checks:
            instance.report_runless_asset_event(
                dg.AssetCheckEvaluation(asset_key=facts, check_name=check, passed=check != failing)
            )

    new_month_of_facts()
    second = dg.evaluate_automation_conditions(
        defs=definitions, instance=instance, cursor=first.cursor
    )

    def requested(name: str) -> int:
        return second.get_num_requested(dg.AssetKey(name.split("/")))

    followers = [
        "reports/monthly_sales",
        "reports/top_products_by_country",
        "reports/lead_conversion",
    ]
    assert [requested(name) for name in followers] == [1, 1, 1]
    assert requested("reports/top_devices") == 0  # its inputs did not change
    assert requested("reports/report_files") == 1  # in the same run, after its reports

    # the same update, but a blocking check on the facts failed: nothing downstream runs
    new_month_of_facts(failing="unique_key")
    third = dg.evaluate_automation_conditions(
        defs=definitions, instance=instance, cursor=second.cursor
    )
    assert third.total_requested == 0


@pytest.mark.parametrize("value", ["yes", "0"])
def test_automation_switch_rejects_other_values(value: str) -> None:
    from b2b_common.errors import UserError
    from b2b_platform.lib.settings import Settings

    with pytest.raises(UserError, match="B2B_AUTOMATION"):
        Settings.from_env({"B2B_AUTOMATION": value})


def test_b2b_run_launches_named_runs(use_warehouse: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    assert materialize("key:raw/companies", instance=instance).ok
    (run,) = instance.get_runs()
    assert run.job_name == "b2b_refresh"  # not __ephemeral_asset_job__: the UI tells the story
    assert run.tags["b2b/launched_by"] == "b2b run"


def test_a_failure_recorded_while_the_warehouse_is_locked_is_not_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    from b2b_platform.defs.operations import run_failures
    from b2b_platform.lib.warehouse.step import warehouse_step

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(run_failures, "LOCK_WAIT_SECONDS", 0.5)
    instance = dg.DagsterInstance.ephemeral()
    result = _failed_run(instance)
    warehouse = tmp_path / "b2b.duckdb"
    with warehouse_step(warehouse, "earlier", "raw/companies", None):
        pass  # the warehouse exists, with its etl tables
    with _locked_by_another_process(warehouse):
        context = dg.build_run_status_sensor_context(
            sensor_name="record_failed_runs",
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            dagster_event=result.get_run_failure_event(),
            resources={"duckdb": WarehouseResource(database=str(warehouse))},
        ).for_run_failure()
        record_failed_runs(context)  # the lock is held: deferred, not raised, not lost
    assert (tmp_path / "home" / "b2b-pending-run-failures.jsonl").exists()
    with warehouse_step(warehouse, "next", "raw/products", None):
        pass  # the next step holds the lock and writes what was deferred
    rows = query(warehouse, "SELECT asset_key, status FROM etl.run_log WHERE run_id = ?",
                 [result.run_id])  # fmt: skip
    assert rows == [("(run)", "failed")]
    assert list((tmp_path / "home").glob("b2b-pending-run-failures*")) == []


def test_an_asset_that_read_an_older_input_rebuilds_once() -> None:
    """eager() alone misses it: a report materialized by a run that read the leads before
    they were rebuilt, both between two ticks of the automation sensor. The condition asks
    what the report's materialization read (Dagster's input event pointers)."""
    from b2b_platform.lib.follow_upstream import FOLLOW_UPSTREAM

    @dg.asset
    def leads() -> None: ...

    @dg.asset(deps=[leads], automation_condition=FOLLOW_UPSTREAM)
    def report() -> None: ...

    defs = dg.Definitions(assets=[leads, report])

    def ticks(*steps: str) -> list[int]:
        instance = dg.DagsterInstance.ephemeral()
        assert dg.materialize([leads, report], instance=instance).success
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        requested = []
        for step in steps:
            if step == "tick":
                result = dg.evaluate_automation_conditions(
                    defs=defs, instance=instance, cursor=result.cursor
                )
                requested.append(result.total_requested)
            else:  # a run of these assets
                assert dg.materialize([leads, report], instance=instance, selection=[step]).success
        return requested

    # the report read the old leads, then the leads changed: rebuilt once, then quiet
    assert ticks("tick", "report", "leads", "tick", "tick", "tick") == [0, 1, 0, 0]
    # leads then report in one run: nothing more to do; leads alone: the report follows
    assert ticks("tick", "*", "tick", "tick") == [0, 0, 0]
    assert ticks("tick", "leads", "tick", "tick") == [0, 1, 0]
