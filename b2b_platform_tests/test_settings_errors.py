"""Settings mistakes are one line naming the variable, exit 2, before any build work;
one pseudonym key per warehouse; a step a killed process left `running` is closed by
the next `b2b run`, even one that finds everything up to date."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from b2b_common.errors import UserError
from b2b_platform.cli import main
from b2b_platform.lib.settings import Settings
from b2b_platform_tests.helpers import query, warehouse_env

SECRET = "hunter2secret"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"B2B_FIRST_MONTH": "0001-01"}, "B2B_FIRST_MONTH='0001-01' is out of range"),
        ({"B2B_FIRST_MONTH": "1899-12"}, "use a month from 2000-01"),
        ({"B2B_AS_OF": "0001-06-01"}, "B2B_AS_OF='0001-06-01' is out of range"),
        ({"B2B_AS_OF": "9999-12-31"}, "B2B_AS_OF='9999-12-31' is out of range"),
        ({"B2B_SOURCE_DB_URL": "garbage"}, "B2B_SOURCE_DB_URL: source database URL 'garbage'"),
        ({"B2B_SOURCE_DB_URL": f"mysql://u:{SECRET}@db/b2b"}, "must start with sqlite:///"),
        ({"B2B_SOURCE_DB_URL": "sqlite:///"}, "names no file"),
        ({"B2B_PSEUDONYM_KEY": ""}, "B2B_PSEUDONYM_KEY is set but empty"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(env: dict[str, str], message: str) -> None:
    with pytest.raises(UserError) as error:
        Settings.from_env(env)
    text = str(error.value)
    assert message in text and "\n" not in text and len(text) < 200
    assert SECRET not in text


def test_an_unset_pseudonym_key_is_still_the_key_file() -> None:
    assert not Settings.from_env({}).pseudonym_key_in_env


def test_an_as_of_day_early_in_2000_starts_the_calendar_in_range() -> None:
    settings = Settings.from_env({"B2B_AS_OF": "2000-03-15"})
    assert settings.first_month == dt.date(2000, 1, 1)


@pytest.fixture
def run_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An environment where a `b2b run` getting past its checks would fail at once (no
    sources); returns the DAGSTER_HOME it would make."""
    home = tmp_path / "home"
    for key, value in {
        "B2B_SOURCE_DB_URL": f"sqlite:///{tmp_path / 'missing.db'}",
        "B2B_LOG_DIR": str(tmp_path / "no_logs"),
        "B2B_LEADS_DIR": str(tmp_path / "no_leads"),
        "B2B_WAREHOUSE": str(tmp_path / "w.duckdb"),
        "B2B_REPORT_DIR": str(tmp_path / "reports"),
        "DAGSTER_HOME": str(home),
        "B2B_AUTOMATION": "off",
    }.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "a_file").write_text("not a directory")
    return home


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("B2B_FIRST_MONTH", "0001-01", "B2B_FIRST_MONTH='0001-01' is out of range"),
        ("B2B_SOURCE_DB_URL", f"mysql://u:{SECRET}@db/b2b", "B2B_SOURCE_DB_URL: "),
        ("B2B_SOURCE_DB_URL", "garbage", "B2B_SOURCE_DB_URL: "),
        ("B2B_PSEUDONYM_KEY", "", "B2B_PSEUDONYM_KEY is set but empty"),
        ("B2B_REPORT_DIR", "{tmp}/a_file", "B2B_REPORT_DIR {tmp}/a_file is not a directory"),
        ("B2B_REPORT_DIR", "{tmp}/a_file/reports", "cannot be made: {tmp}/a_file is not a"),
        ("B2B_REPORT_DIR", "/", "B2B_REPORT_DIR / is the filesystem root"),
        ("B2B_REPORT_DIR", "/proc/b2b-reports", "B2B_REPORT_DIR /proc/b2b-reports cannot be"),
        ("B2B_LOG_DIR", "{tmp}/a_file", "B2B_LOG_DIR {tmp}/a_file is not a directory"),
        ("B2B_LEADS_DIR", "{tmp}/a_file", "B2B_LEADS_DIR {tmp}/a_file is not a directory"),
    ],
)
def test_b2b_run_refuses_a_bad_setting_before_any_work(
    run_env: Path, monkeypatch, capsys, tmp_path: Path, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value.format(tmp=tmp_path))
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("b2b: error: ") and len(err.splitlines()) == 1, err
    assert message.format(tmp=tmp_path) in err and SECRET not in err
    assert "does not exist" not in err
    assert not run_env.exists()  # refused before the Dagster instance was even made


def test_b2b_report_refuses_a_report_dir_that_is_a_file(
    run_env: Path, monkeypatch, capsys, tmp_path: Path
) -> None:
    monkeypatch.setenv("B2B_REPORT_DIR", str(tmp_path / "a_file"))
    assert main(["report"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("b2b: error: B2B_REPORT_DIR ") and "is not a directory" in err, err


# ------------------------------------------------------- runs of the real graph


def _b2b_run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "b2b_platform.cli", "run", *args],
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.fixture
def cli_env(tmp_path: Path, tiny_sources) -> dict[str, str]:
    """`b2b run` on the tiny sources into a new warehouse, the pseudonym key in a key
    file of DAGSTER_HOME (no B2B_PSEUDONYM_KEY)."""
    data_dir, _ = tiny_sources
    env = {**os.environ, **warehouse_env(data_dir, tmp_path / "warehouse" / "b2b.duckdb"),
           "DAGSTER_HOME": str(tmp_path / "home_a"), "B2B_AUTOMATION": "off"}  # fmt: skip
    env.pop("B2B_PSEUDONYM_KEY", None)
    return env


DIM_CUSTOMER = '+key:"core/dim_customer"'
ANOTHER_KEY = "this warehouse was built with another pseudonym key"


def test_one_pseudonym_key_per_warehouse(cli_env: dict[str, str], tmp_path: Path) -> None:
    """A second DAGSTER_HOME (its own key file) or another B2B_PSEUDONYM_KEY on the same
    warehouse is refused, at the start of `b2b run` and in the step itself; the key is
    replaced only on purpose, and the warehouse never holds the key itself."""
    from b2b_platform.lib.resources import read_key_file

    warehouse = Path(cli_env["B2B_WAREHOUSE_PATH"])
    first = _b2b_run(cli_env, "--select", DIM_CUSTOMER)
    assert first.returncode == 0, first.stderr[-2000:]
    key = read_key_file(tmp_path / "home_a" / "pseudonym.key")
    [(fingerprint,)] = query(warehouse, "SELECT fingerprint FROM etl.pseudonym_key")
    assert key.hex() not in fingerprint and fingerprint not in key.hex()

    other_home = {**cli_env, "DAGSTER_HOME": str(tmp_path / "home_b")}
    refused = _b2b_run(other_home, "--select", DIM_CUSTOMER)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.startswith(f"b2b: error: {ANOTHER_KEY}: set B2B_PSEUDONYM_KEY or")
    assert len(refused.stderr.splitlines()) == 1
    assert not (tmp_path / "home_b" / "pseudonym.key").exists()  # no second key made

    other_key = {**cli_env, "B2B_PSEUDONYM_KEY": "another-pseudonym-key-0123456789"}
    refused = _b2b_run(other_key, "--select", DIM_CUSTOMER, "--force")
    assert refused.returncode == 2 and ANOTHER_KEY in refused.stderr

    again = _b2b_run(cli_env, "--select", DIM_CUSTOMER)  # the warehouse's own key
    assert again.returncode == 0 and "up to date" in again.stdout, again.stderr[-2000:]

    rotated = _b2b_run(other_key, "--select", DIM_CUSTOMER, "--new-pseudonym-key")
    assert rotated.returncode == 0, rotated.stderr[-2000:]
    assert "materializing 1 assets" in rotated.stdout  # core/dim_customer, with the new key
    assert query(warehouse, "SELECT count(*) FROM etl.pseudonym_key") == [(1,)]
    assert _b2b_run(cli_env, "--select", DIM_CUSTOMER).returncode == 2  # the old key now


def test_the_step_refuses_another_key_where_b2b_run_did_not_check(
    use_warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run not started by `b2b run` (the UI, a sensor) with another key: the step that
    pseudonymizes fails, saying why, and publishes nothing."""
    from b2b_platform_tests.helpers import materialize

    assert materialize(DIM_CUSTOMER).ok
    before = query(use_warehouse, "SELECT document_hash FROM core.dim_customer ORDER BY ALL")
    monkeypatch.setenv("B2B_PSEUDONYM_KEY", "another-pseudonym-key-0123456789")
    outcome = materialize('key:"core/dim_customer"')
    assert not outcome.ok
    assert any(ANOTHER_KEY in failure for failure in outcome.failed_runs), outcome.failed_runs
    after = query(use_warehouse, "SELECT document_hash FROM core.dim_customer ORDER BY ALL")
    assert after == before


def test_an_up_to_date_run_closes_a_killed_step(cli_env: dict[str, str]) -> None:
    """SIGKILL mid-step leaves its etl.run_log row `running`; the next `b2b run` marks it
    interrupted though it builds nothing (what it selects is up to date)."""
    warehouse = Path(cli_env["B2B_WAREHOUSE_PATH"])
    killed = _b2b_run({**cli_env, "B2B_FAULT_KILL_BEFORE_COMMIT": "staging/companies"},
                      "--select", '+key:"staging/companies"')  # fmt: skip
    assert killed.returncode == -9, killed.stderr[-2000:]
    running = "SELECT asset_key FROM etl.run_log WHERE status = 'running'"
    assert query(warehouse, running) == [("staging/companies",)]

    rerun = _b2b_run(cli_env, "--select", "key:raw/companies")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "up to date" in rerun.stdout
    assert query(warehouse, running) == []
    assert "marked 1 step(s) a dead process left running as interrupted" in rerun.stdout
    assert query(
        warehouse,
        "SELECT status, broken_at >= started_at FROM etl.run_log"
        " WHERE asset_key = 'staging/companies'",
    ) == [("interrupted", True)]


def test_a_step_or_sensor_on_a_file_says_it_is_not_a_directory(tmp_path: Path) -> None:
    """Runs from the UI, the daemon and sensors list the directory themselves."""
    import dagster as dg

    from b2b_platform.defs.weblogs.log_files import list_log_files
    from b2b_platform.lib.resources import DirectoryResource

    a_file = tmp_path / "weblogs"
    a_file.write_text("not a directory")
    with pytest.raises(dg.Failure, match="is not a directory: point B2B_LOG_DIR at one"):
        list_log_files(DirectoryResource(path=str(a_file)))
    with pytest.raises(dg.Failure, match="does not exist: run `b2b generate`"):
        list_log_files(DirectoryResource(path=str(tmp_path / "missing")))


@pytest.mark.parametrize("value", ["0", "4", "3601", "soon", "-5"])
def test_a_sensor_interval_out_of_range_is_one_line(monkeypatch, value) -> None:
    monkeypatch.setenv("B2B_SENSOR_INTERVAL_SECONDS", value)
    with pytest.raises(UserError, match=r"B2B_SENSOR_INTERVAL_SECONDS=.* use 5 to 3600 seconds"):
        Settings.from_env()


def test_the_sensors_tick_at_the_configured_interval(monkeypatch) -> None:
    from b2b_platform.defs.operations.deployment import operations_definitions

    monkeypatch.setenv("B2B_SENSOR_INTERVAL_SECONDS", "5")
    sensors = operations_definitions(Settings.from_env()).sensors
    assert {s.name: s.minimum_interval_seconds for s in sensors} == {
        "weblog_files_sensor": 5, "lead_workbooks_sensor": 5, "follow_upstream_sensor": 5,
        "record_failed_runs": 30, "record_canceled_runs": 30,  # Dagster's default
    }  # fmt: skip
