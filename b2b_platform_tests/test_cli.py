"""The `b2b` command line: output for people, one-line errors for mistakes."""

import os
import subprocess
import sys

import pytest

from b2b_platform.cli import main


def _b2b(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "b2b_platform.cli", *args],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", "--scale", "huge"], "unknown scale 'huge'"),
        (["generate", "--as-of", "2026-13-01"], "--as-of '2026-13-01' is not a date"),
        (["generate", "--out", "/proc/forbidden"], "cannot create output directory"),
        (
            ["generate", "--scale", "tiny", "--source-db-url", "mysql://x/y"],
            "must start with sqlite",
        ),
        (
            ["generate", "--scale", "tiny", "--source-db-url", "postgresql://nobody@127.0.0.1:1/x"],
            "cannot open source database",
        ),
    ],
)
def test_generate_bad_input_is_one_line(tmp_path, capsys, args, message):
    if "--out" not in args:
        args = [*args, "--out", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("b2b: error:") and message in err
    assert len(err.splitlines()) == 1


def test_generate_tiny_writes_the_three_sources(tmp_path):
    result = _b2b(
        "generate",
        "--scale",
        "tiny",
        "--seed",
        "3",
        "--as-of",
        "2026-11-25",
        "--out",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "source" / "b2b_platform.db").is_file()
    assert any((tmp_path / "weblogs").iterdir())
    assert any((tmp_path / "leads").glob("*.xlsx"))
    assert "B2B_FIRST_MONTH=2026-08" in result.stdout
    assert "orders" in result.stdout and "lines" in result.stdout


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"B2B_AS_OF": "yesterday"}, "B2B_AS_OF='yesterday' is not a date"),
        ({"B2B_FIRST_MONTH": "2026-13"}, "B2B_FIRST_MONTH='2026-13' is not a month"),
        ({"B2B_FIRST_MONTH": "2027-01"}, "is after B2B_AS_OF"),
    ],
)
def test_run_rejects_bad_configuration(monkeypatch, capsys, env, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["run"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_run_with_a_missing_source_names_it(tmp_path):
    import os

    env = {**os.environ, "B2B_SOURCE_DB_URL": f"sqlite:///{tmp_path}/missing.db",
           "B2B_WAREHOUSE_PATH": str(tmp_path / "w.duckdb"), "DAGSTER_HOME": str(tmp_path / "home"),
           "B2B_LEADS_DIR": str(tmp_path / "none"), "B2B_LOG_DIR": str(tmp_path / "none")}  # fmt: skip
    result = _b2b("run", "--select", "tag:source=platform_db", env=env)
    assert result.returncode == 1
    assert "missing.db does not exist" in result.stdout
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr  # BetaWarning
    # the snapshots and the monthly orders in one run: the cause is said once
    assert result.stdout.count("missing.db does not exist") == 1, result.stdout
    assert "1 run failed, for the causes above" in result.stderr


def test_run_with_no_data_says_each_cause_once_in_a_short_line(tmp_path):
    """All three sources missing (a fresh clone before `b2b generate`): every asset fails,
    but each missing thing is named once, in a line a terminal shows whole."""
    import os

    env = {**os.environ, "B2B_SOURCE_DB_URL": f"sqlite:///{tmp_path}/missing.db",
           "B2B_WAREHOUSE_PATH": str(tmp_path / "w.duckdb"), "DAGSTER_HOME": str(tmp_path / "home"),
           "B2B_LEADS_DIR": str(tmp_path / "no_leads"), "B2B_LOG_DIR": str(tmp_path / "no_logs"),
           "B2B_AUTOMATION": "off"}  # fmt: skip
    result = _b2b("run", env=env)
    assert result.returncode == 1
    output = result.stdout + result.stderr
    for missing in ("missing.db", "no_leads", "no_logs"):
        assert output.count(f"{missing} does not exist") == 1, output
    causes = [line for line in output.splitlines() if "does not exist" in line]
    assert all(len(line) <= 200 for line in causes), causes


def test_a_cause_two_runs_share_is_said_once(tmp_path):
    """staging/orders reads raw/customers through staging/customers, left out: one run
    could not order them, so raw/customers runs first, alone. The missing database fails
    it, staging/orders is not started, and raw/orders fails the second run: its cause is
    not said twice."""
    import os

    env = {**os.environ, "B2B_SOURCE_DB_URL": f"sqlite:///{tmp_path}/missing.db",
           "B2B_WAREHOUSE_PATH": str(tmp_path / "w.duckdb"), "DAGSTER_HOME": str(tmp_path / "home"),
           "B2B_AUTOMATION": "off"}  # fmt: skip
    result = _b2b(
        "run", "--select", "key:raw/customers or key:raw/orders or key:staging/orders", env=env
    )
    assert result.returncode == 1
    assert result.stdout.count("missing.db does not exist") == 1, result.stdout
    assert "the same cause as above" in result.stdout, result.stdout
    assert "2 runs failed, for the causes above" in result.stderr


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("b2b: error: "), err
    return err


def test_unknown_selection_is_one_line(capsys):
    assert main(["run", "--select", "key:nothing/here"]) == 2
    assert "matches no asset" in _one_error_line(capsys)


def test_status_on_the_built_warehouse(monkeypatch, capsys, built_warehouse):
    monkeypatch.setenv("B2B_WAREHOUSE_PATH", str(built_warehouse))
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    for heading in ("Step runs by status", "Quarantine by reason", "Record accounting", "Files"):
        assert heading in out
    assert "BROKEN" not in out and "duplicate_cuit" in out


def test_status_without_a_warehouse_is_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("B2B_WAREHOUSE_PATH", str(tmp_path / "none.duckdb"))
    assert main(["status"]) == 2
    assert "does not exist yet: run `b2b run` first" in _one_error_line(capsys)


@pytest.mark.parametrize(
    "fault",
    [
        # in Python, holding the write a minute
        ("B2B_FAULT_SLOW_BEFORE_COMMIT", "fault: holding staging/companies"),
        # in one DuckDB statement that would run for minutes, as a large commit does:
        # the signal reaches Python only after it, so a thread interrupts it
        ("B2B_FAULT_BUSY_BEFORE_COMMIT", "fault: busy in DuckDB before staging/companies"),
    ],
    ids=["in-python", "in-duckdb"],
)
def test_sigterm_stops_b2b_run_within_ten_seconds_and_records_the_break(
    tmp_path, tiny_sources, fault
):
    """SIGTERM mid-write: the run in flight is interrupted, no further run starts, the step
    is recorded interrupted, and the message says what did and did not materialize."""
    import signal
    import time

    from b2b_platform_tests.helpers import query, warehouse_env

    data_dir, _ = tiny_sources
    warehouse = tmp_path / "warehouse" / "b2b.duckdb"
    env = {
        **os.environ,
        **warehouse_env(data_dir, warehouse),
        "DAGSTER_HOME": str(tmp_path / "home"),
        fault[0]: "staging/companies",
    }
    child = subprocess.Popen(
        [sys.executable, "-m", "b2b_platform.cli", "run"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stderr is not None
    for line in child.stderr:  # the hook says when the write is held
        if line.startswith(fault[1]):
            break
    else:
        pytest.fail(f"the step never started: {child.communicate()}")
    child.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    _, err = child.communicate(timeout=30)
    assert time.monotonic() - sent < 10, "b2b run took over 10 s to stop"
    assert child.returncode == 130, err[-2000:]
    assert "stopped after" in err and "not materialized" in err
    assert "core/dim_company" in err.split("not materialized", 1)[1]  # never started
    rows = query(
        warehouse,
        "SELECT status, broken_at IS NOT NULL FROM etl.run_log WHERE asset_key = 'staging/companies'",
    )
    assert rows == [("interrupted", True)]
    later = query(
        warehouse,
        "SELECT count(*) FROM etl.run_log WHERE started_at > (SELECT broken_at FROM"
        " etl.run_log WHERE asset_key = 'staging/companies')",
    )
    assert later == [(0,)]  # nothing started after the break


def test_a_step_that_exhausted_its_retries_names_its_real_cause():
    """Not Dagster's "Exceeded max_retries": the error the step kept hitting, in one line."""
    import dagster as dg

    from b2b_platform.lib.orchestration.runner import run_stages
    from b2b_platform.lib.orchestration.stage_launchers import REFRESH_JOB

    @dg.asset(retry_policy=dg.RetryPolicy(max_retries=1, delay=0))
    def flaky() -> None:
        raise OSError("lead workbook x.xlsx: Permission denied")

    definitions = dg.Definitions(
        assets=[flaky],
        jobs=[dg.define_asset_job(REFRESH_JOB, selection=dg.AssetSelection.all())],
    )
    outcome = run_stages(
        definitions, dg.DagsterInstance.ephemeral(), {dg.AssetKey("flaky")}, lambda _: None
    )
    assert outcome.failed_runs == [
        "1 asset: flaky: OSError: lead workbook x.xlsx: Permission denied (retries exhausted)"
    ]


@pytest.mark.slow
def test_a_first_deployment_with_no_logs_and_no_leads_yet_runs(tmp_path, tiny_sources):
    """Empty log and lead directories (a new deployment whose files are not shipped yet):
    nothing to load is not an error; the run succeeds and the reports say what is missing."""
    from b2b_platform_tests.helpers import query, warehouse_env

    data_dir, _ = tiny_sources
    (tmp_path / "logs").mkdir()
    (tmp_path / "leads").mkdir()
    warehouse = tmp_path / "warehouse" / "b2b.duckdb"
    env = {**os.environ, **warehouse_env(data_dir, warehouse), "DAGSTER_HOME": str(tmp_path / "h"),
           "B2B_LOG_DIR": str(tmp_path / "logs"), "B2B_LEADS_DIR": str(tmp_path / "leads"),
           "B2B_AUTOMATION": "off"}  # fmt: skip
    result = _b2b("run", env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert query(warehouse, "SELECT count(*) FROM raw.weblogs") == [(0,)]
    assert query(warehouse, "SELECT count(*) FROM core.fct_leads") == [(0,)]
    assert query(warehouse, "SELECT count(*) FROM reports.top_devices") == [(0,)]
    assert query(warehouse, "SELECT count(*) FROM reports.monthly_sales") == [(13,)]
    printed = _b2b("report", env=env)
    assert printed.returncode == 0, printed.stderr
    assert "Nothing from the web logs yet" in printed.stdout
    assert "Nothing from the lead workbooks yet" in printed.stdout
    page = (warehouse.parent / "reports" / "b2b_reports.html").read_text(encoding="utf-8")
    assert "Nothing from the web logs has been loaded yet" in page
