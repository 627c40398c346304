"""Passwords never shown: the warehouse location (B2B_WAREHOUSE) and the source database
URL (B2B_SOURCE_DB_URL), in every form libpq reads them, in messages, in errors and in
the driver's or DuckDB's errors that quote them back."""

from __future__ import annotations

import os
import subprocess
import sys
import traceback
from pathlib import Path

import duckdb
import pytest

from b2b_common.errors import UserError
from b2b_common.password_masking import mask_secrets, passwords_of
from b2b_platform import cli
from b2b_platform.lib.warehouse import connection as connection_module
from b2b_platform.lib.warehouse.connection import warehouse_connection
from b2b_platform.lib.warehouse.location import parse_location
from source_db.database import SourceDatabase, SourceDatabaseError, redact_text, redact_url

REPO = Path(__file__).resolve().parents[1]
# every secret below holds this, decoded or not: none of it may ever be shown
FRAGMENT = "ECRET"

# ------------------------------------------------------------------ the masking itself


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("host=h password=PLAIN_SECRET port=5", "host=h password=*** port=5"),
        ("host=h port=5 password=LAST_SECRET", "host=h port=5 password=***"),
        ("password=FIRST_SECRET host=h", "password=*** host=h"),
        ("host=h password='QUOTED SECRET' port=5", "host=h password=*** port=5"),
        (r"host=h password='IT\'S A SECRET' port=5", "host=h password=*** port=5"),
        (r"host=h password=ESCAPED\ SECRET port=5", "host=h password=*** port=5"),
        ("host=h password = 'SPACED SECRET'", "host=h password = ***"),
        ("host=h PassWord=MIXED_SECRET port=5", "host=h PassWord=*** port=5"),
        ("postgresql://user:URI_SECRET@db:5432/b2b", "postgresql://user:***@db:5432/b2b"),
        ("postgresql://user:PCT%2F%53ECRET%40@db/b2b", "postgresql://user:***@db/b2b"),
        ("postgresql://user:AT@SECRET:X@db/b2b", "postgresql://user:***@db/b2b"),
        ("mysql://root:ANY_SCHEME_SECRET@db/b2b", "mysql://root:***@db/b2b"),
        ("postgresql://u@db/b2b?password=QUERY_SECRET", "postgresql://u@db/b2b?password=***"),
        ("postgresql://u@db/b2b?sslmode=require&password=MIDDLE_SECRET&connect_timeout=5",
         "postgresql://u@db/b2b?sslmode=require&password=***&connect_timeout=5"),
        ("postgresql://u@db/b2b?PASSWORD=UPPER_SECRET", "postgresql://u@db/b2b?PASSWORD=***"),
        ("ducklake:postgres:postgresql://postgres:LAKE_SECRET@127.0.0.1:1/x",
         "ducklake:postgres:postgresql://postgres:***@127.0.0.1:1/x"),
        ('Unable to connect to Postgres at "dbname=x password=\'QUOTED SECRET\'": refused',
         'Unable to connect to Postgres at "dbname=x password=***": refused'),
    ],
)  # fmt: skip
def test_every_form_of_a_password_is_masked(text: str, shown: str) -> None:
    assert mask_secrets(text) == shown
    assert mask_secrets(shown) == shown  # masking twice changes nothing


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://postgres@127.0.0.1:5432/test",
        "postgresql://[::1]:5432/test?sslmode=require",
        "sqlite:///data/source/b2b_platform.db",
        "dbname=b2b_lake host=127.0.0.1 user=postgres",
        'password authentication failed for user "postgres"',
    ],
)
def test_text_without_a_password_is_left_alone(text: str) -> None:
    assert mask_secrets(text) == text


@pytest.mark.parametrize(
    ("setting", "quoted_back"),
    [
        (r"dbname=x password='IT\'S SECRET'", 'invalid password "IT\'S SECRET"'),
        ("postgresql://u:PCT%2F%53ECRET@h/db", 'bad password "PCT/SECRET"'),
        ("postgresql://u@h/db?password=A%20SECRET&sslmode=disable", "bad password A SECRET"),
        ("postgresql://u@h/db?password=RAW SECRET", 'unexpected spaces found in "RAW SECRET"'),
    ],
)
def test_a_password_quoted_back_in_another_form_is_masked(setting: str, quoted_back: str) -> None:
    assert FRAGMENT not in mask_secrets(quoted_back, *passwords_of(setting))
    assert FRAGMENT not in mask_secrets(setting, *passwords_of(setting))


def test_a_message_masked_twice_reads_the_same() -> None:
    """Masked where it is raised and again where it is printed: no punctuation lost."""
    message = "cannot open the lake dbname=x password=***: refused; check B2B_WAREHOUSE"
    assert mask_secrets(message, "SECRET") == message
    assert mask_secrets("at ?password=***&sslmode=disable") == "at ?password=***&sslmode=disable"
    assert mask_secrets("password=***SECRET") == "password=***"  # a password, not a mask


def test_known_secrets_are_masked_wherever_they_appear() -> None:
    assert mask_secrets('token "S3CRET" refused, S3CRET!', "S3CRET", "") == (
        'token "***" refused, ***!'
    )
    assert mask_secrets("abc", "") == "abc"
    assert passwords_of("dbname=x host=h", "sqlite:///x.db") == ()


# ------------------------------------------------ the callers: one masking for both


@pytest.mark.parametrize(
    "target",
    [
        "ducklake:postgres:dbname=x host=h password=PLAIN_SECRET",
        "ducklake:postgres:dbname=x host=h password='QUOTED SECRET' port=1",
        r"ducklake:postgres:dbname=x password='ESC\'APED SECRET' host=h",
        "ducklake:postgres:postgresql://postgres:URI_SECRET@h:1/x",
        "ducklake:postgres:postgresql://postgres:PCT%2F%53ECRET@h:1/x",
        "ducklake:postgres:postgresql://postgres@h:1/x?password=QUERY_SECRET",
        "ducklake:postgres:dbname=x host=h PassWord=MIXED_SECRET",
    ],
)
def test_the_warehouse_location_shows_no_password(target: str) -> None:
    shown = parse_location(target).describe()
    assert FRAGMENT not in shown and "***" in shown


def test_an_unsupported_lake_setting_shows_no_password() -> None:
    with pytest.raises(UserError) as raised:
        parse_location("ducklake:mysql:password=MYSQL_SECRET host=h")
    assert FRAGMENT not in str(raised.value)


@pytest.mark.parametrize(
    "url",
    [
        "host=127.0.0.1 port=1 password='QUOTED SECRET'",
        "postgresql://postgres@127.0.0.1:1/test?password=RAW SECRET",
    ],
)
def test_the_source_url_shows_no_password(url: str) -> None:
    assert FRAGMENT not in redact_url(url)
    assert FRAGMENT not in redact_text(f'the server said "{url}"', url)


def test_an_unparseable_source_url_is_one_line_without_its_password() -> None:
    with pytest.raises(SourceDatabaseError) as raised:
        SourceDatabase("postgresql://postgres:IPV6_SECRET@[127.0.0.1:1/test")
    assert FRAGMENT not in str(raised.value) and "\n" not in str(raised.value)


def test_a_lake_error_while_connected_shows_no_password(monkeypatch) -> None:
    """DuckDB may quote the catalog's conninfo long after attaching it (a lost catalog
    connection): errors leaving an open lake connection are masked too."""
    monkeypatch.setattr(connection_module, "open_lake", lambda *_, **__: duckdb.connect())
    location = parse_location("ducklake:postgres:host=h password='QUOTED SECRET'")
    with pytest.raises(duckdb.IOException) as raised, warehouse_connection(location) as conn:
        conn.execute("SELECT 1")
        raise duckdb.IOException(
            "Unable to connect to Postgres at \"host=h password='QUOTED SECRET'\""
        )
    assert FRAGMENT not in "".join(traceback.format_exception(raised.value))  # causes too


def test_a_misconfigured_file_warehouse_shows_no_password(monkeypatch, capsys, tmp_path) -> None:
    """A conninfo without the `ducklake:` prefix is taken for a file's name."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("B2B_WAREHOUSE", "postgres:dbname=x password=FILE_SECRET")
    assert cli.main(["status"]) == 2
    err = capsys.readouterr().err
    assert FRAGMENT not in err and err.startswith("b2b: error: ")


@pytest.mark.parametrize(
    ("error", "code"),
    [(UserError, 2), (RuntimeError, 1)],  # foreseen, and not
)
def test_the_cli_masks_the_configured_passwords_in_any_error(monkeypatch, capsys, error, code):
    """Whatever a failing command's error quotes of a configured password, in whatever
    form, the operator never sees it: an unforeseen error shows its traceback, masked."""

    def failing(args: object) -> int:
        raise error("the catalog refused QUOTED SECRET; the source refused ARG_SECRET")

    monkeypatch.setenv("B2B_WAREHOUSE", "ducklake:postgres:dbname=x password='QUOTED SECRET'")
    monkeypatch.setattr(cli, "_generate", failing)
    assert cli.main(["generate", "--source-db-url", "postgresql://u:ARG_SECRET@h/db"]) == code
    err = capsys.readouterr().err
    assert FRAGMENT not in err and "the catalog refused ***; the source refused ***" in err
    if error is RuntimeError:
        assert "Traceback" in err
    else:
        assert err.startswith("b2b: error: ") and len(err.splitlines()) == 1


# ----------------------------------------------------- end to end: the `b2b` command


def _b2b(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`b2b ARGS` in a fresh process, with `env` over the test environment; the
    warehouse and Dagster's instance are in tmp_path unless `env` says otherwise."""
    variables = {**os.environ, "PYTHONPATH": str(REPO), "DAGSTER_HOME": str(tmp_path / "home"),
                 "B2B_WAREHOUSE_PATH": str(tmp_path / "w.duckdb")}  # fmt: skip
    variables.pop("B2B_WAREHOUSE", None)
    return subprocess.run(
        [sys.executable, "-m", "b2b_platform.cli", *args],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env={**variables, **env},
    )  # fmt: skip


def _assert_one_masked_error(result: subprocess.CompletedProcess[str]) -> None:
    output = result.stdout + result.stderr
    assert FRAGMENT not in output, output
    assert result.returncode != 0, output
    assert [line for line in output.splitlines() if "b2b: error:" in line] == [
        result.stderr.strip()
    ], output


# an unreachable PostgreSQL catalog (nothing listens on port 1), in every conninfo form
UNREACHABLE_LAKES = {
    "plain": "dbname=x host=127.0.0.1 port=1 password=PLAIN_SECRET_3",
    "quoted": "dbname=x host=127.0.0.1 port=1 password='QUOTED SECRET_2'",
    "escaped": r"dbname=x password='ESC\'APED SECRET_4' host=127.0.0.1 port=1",
    "uri": "postgresql://postgres:URI_SECRET_5@127.0.0.1:1/x",
    "percent": "postgresql://postgres:PCT%2F%53ECRET%206@127.0.0.1:1/x",
    "query": "postgresql://postgres@127.0.0.1:1/x?password=QUERY_SECRET_7",
    "query_middle": "postgresql://postgres@127.0.0.1:1/x?connect_timeout=2&password=MID_SECRET_8&sslmode=disable",
    "mixed_case": "dbname=x host=127.0.0.1 port=1 PassWord=MIXED_SECRET_9",
}


@pytest.fixture
def lake_profile() -> None:
    """The DuckLake extensions, which reach the catalog (elsewhere lake mode stops
    before, asking for the lake profile)."""
    pytest.importorskip("duckdb_ext", reason="lake mode needs the lake profile (.venv-lake)")


@pytest.mark.lake
@pytest.mark.parametrize("form", list(UNREACHABLE_LAKES))
def test_status_on_an_unreachable_lake_shows_no_password(tmp_path, lake_profile, form) -> None:
    result = _b2b(tmp_path, "status", B2B_WAREHOUSE=f"ducklake:postgres:{UNREACHABLE_LAKES[form]}")
    _assert_one_masked_error(result)
    assert "cannot open the lake" in result.stderr


@pytest.mark.lake
@pytest.mark.parametrize("form", ["quoted", "percent"])
@pytest.mark.parametrize("command", [["report"], ["quarantine"], ["run", "--plan"]])
def test_every_command_on_an_unreachable_lake_shows_no_password(
    tmp_path, lake_profile, command, form
) -> None:
    result = _b2b(tmp_path, *command, B2B_WAREHOUSE=f"ducklake:postgres:{UNREACHABLE_LAKES[form]}")
    _assert_one_masked_error(result)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres:SECRETX@127.0.0.1:1/test",
        "postgresql://postgres@127.0.0.1:1/test?password=QUERY SECRETX",
        "host=127.0.0.1 port=1 password='QUOTED SECRETX'",
        "postgresql://postgres:SECRETX@[127.0.0.1:1/test",
    ],
)
def test_generate_into_an_unreachable_source_shows_no_password(tmp_path, url) -> None:
    result = _b2b(tmp_path, "generate", "--scale", "tiny", "--out", str(tmp_path / "out"),
                  "--source-db-url", url)  # fmt: skip
    _assert_one_masked_error(result)


def test_planning_with_an_unreachable_source_shows_no_password(tmp_path) -> None:
    """An unreadable source leaves its slices stale in the plan: the step says why."""
    result = _b2b(tmp_path, "run", "--plan", "--select", "tag:source=platform_db",
                  B2B_SOURCE_DB_URL="postgresql://postgres:SECRETX@127.0.0.1:1/test")  # fmt: skip
    assert FRAGMENT not in result.stdout + result.stderr
    assert result.returncode == 0 and "raw/companies: never built" in result.stdout


def test_a_source_setting_that_is_no_url_is_refused_masked_before_planning(tmp_path) -> None:
    """A libpq key=value conninfo is not a source URL: refused as the settings load."""
    result = _b2b(tmp_path, "run", "--plan", "--select", "tag:source=platform_db",
                  B2B_SOURCE_DB_URL="host=127.0.0.1 port=1 password='QUOTED SECRETX'")  # fmt: skip
    _assert_one_masked_error(result)
    assert "B2B_SOURCE_DB_URL" in result.stderr
