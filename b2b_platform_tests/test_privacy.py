"""Keyed pseudonyms (HMAC-SHA256 in DuckDB), the pseudonym key file, secrets kept out of
resource config, and database passwords kept out of error messages."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import threading
import traceback
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pytest

from b2b_common.errors import UserError
from b2b_platform.lib.resources import (
    Pseudonymizer,
    SourceDatabaseResource,
    build_resources,
    load_or_create_key_file,
)
from b2b_platform.lib.settings import Settings
from b2b_platform.lib.warehouse.location import WarehouseLocation
from b2b_platform.lib.warehouse.pseudonym_key import claim_key
from b2b_platform_tests.helpers import materialize, query
from source_db import SourceDatabase, SourceDatabaseError
from source_db.database import redact_url

SECRET_PASSWORD = "hunter2secret"
CLOSED_PORT_URL = f"postgresql://postgres:{SECRET_PASSWORD}@127.0.0.1:9/test"
OLD_PUBLIC_SALT = "b2b-platform-development-salt"  # the removed default, known to anyone


def _hmac_in_duckdb(pseudonymizer: Pseudonymizer, messages: list[str | None]) -> list[str | None]:
    conn = duckdb.connect()
    try:
        for name, table in pseudonymizer.key_relations().items():
            conn.register(name, table)
        conn.register("messages", pa.table({"i": range(len(messages)), "m": messages}))
        rows = conn.execute(
            f"SELECT {pseudonymizer.hmac_sql('m')} FROM messages ORDER BY i"
        ).fetchall()
        return [h for (h,) in rows]
    finally:
        conn.close()


# ------------------------------------------------------------------- HMAC in SQL


MESSAGES = ["DNI|12345678", "", "LE|ñandú €", "DNI|" + "9" * 300, "pasaporte|AB-123/ü"]


@pytest.mark.parametrize(
    "key",
    [
        "exactly-16-chars",
        "k" * 64,  # one block: no padding
        "long key " * 20,  # longer than a block: hashed first
        "clave con eñe y 漢字 ok",  # non-ASCII: UTF-8 bytes
    ],
)
def test_hmac_sql_equals_python_hmac(key: str) -> None:
    pseudonymizer = Pseudonymizer(key=key)
    expected = [hmac.new(key.encode(), m.encode(), "sha256").hexdigest() for m in MESSAGES]
    assert _hmac_in_duckdb(pseudonymizer, MESSAGES) == expected
    # the SQL refers to bound key material, never to the key itself
    assert key not in pseudonymizer.hmac_sql("m")


def test_hmac_sql_joins_parts_and_keeps_null() -> None:
    pseudonymizer = Pseudonymizer(key="another-test-key-0123")
    conn = duckdb.connect()
    for name, table in pseudonymizer.key_relations().items():
        conn.register(name, table)
    joined_sql = pseudonymizer.hmac_sql("'DNI'", "'30111222'")
    null_sql = pseudonymizer.hmac_sql("'DNI'", "NULL")
    joined, null = conn.execute(f"SELECT {joined_sql}, {null_sql}").fetchone()  # type: ignore[misc]
    assert joined == hmac.new(b"another-test-key-0123", b"DNI|30111222", "sha256").hexdigest()
    assert null is None


def test_key_file_key_is_used_as_bytes(tmp_path: Path) -> None:
    key_file = tmp_path / "pseudonym.key"
    pseudonymizer = Pseudonymizer(key_file=str(key_file))
    [pseudonym] = _hmac_in_duckdb(pseudonymizer, ["DNI|1"])
    key = bytes.fromhex(key_file.read_text())
    assert len(key) == 32
    assert pseudonym == hmac.new(key, b"DNI|1", "sha256").hexdigest()


# ------------------------------------------------------------- brute force


def test_pseudonyms_cannot_be_recomputed_without_the_key() -> None:
    """A document number has few values: try every candidate, as an attacker would.

    Unkeyed or publicly salted hashes fall to this (all 365 DNIs of a tiny warehouse took
    33 s); keyed pseudonyms must only be found by someone holding the key.
    """
    candidates = range(30_000_000, 30_020_000)  # a slice of the DNI space, kept small
    pseudonymizer = Pseudonymizer(key=secrets.token_hex(32))
    documents = [f"DNI|{n}" for n in range(30_000_000, 30_020_000, 400)]  # 50 people
    keyed = _hmac_in_duckdb(pseudonymizer, documents)
    salted = [hashlib.sha256(f"{OLD_PUBLIC_SALT}|{d}".encode()).hexdigest() for d in documents]

    def recovered(pseudonyms: list[str | None], scheme: str, with_key: bool = False) -> int:
        """How many pseudonyms some candidate hashes to under `scheme` (SQL of n)."""
        conn = duckdb.connect()
        try:
            if with_key:
                for name, table in pseudonymizer.key_relations().items():
                    conn.register(name, table)
            conn.register("pseudonyms", pa.table({"p": pseudonyms}))
            return conn.execute(
                f"SELECT count(DISTINCT p) FROM range({candidates.start}, {candidates.stop}) t(n)"
                f" JOIN pseudonyms ON p = {scheme}"
            ).fetchone()[0]  # type: ignore[index]
        finally:
            conn.close()

    message = "'DNI|' || n::VARCHAR"
    old_scheme = f"sha256('{OLD_PUBLIC_SALT}' || '|' || {message})"
    # the attack works: it recovers every document the old public-salt scheme hid
    assert recovered(salted, old_scheme) == len(documents)
    # ... and none of the keyed pseudonyms, whatever unkeyed scheme it guesses
    assert recovered(keyed, old_scheme) == 0
    assert recovered(keyed, f"sha256({message})") == 0
    assert recovered(keyed, "sha256(n::VARCHAR)") == 0
    assert recovered(keyed, f"sha256('|' || {message})") == 0  # an empty salt
    # only the key holder recomputes them, all of them
    assert recovered(keyed, pseudonymizer.hmac_sql(message), with_key=True) == len(documents)


# ------------------------------------------------------------ the key file


def test_key_file_is_created_private_announced_once_and_reused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "home" / "pseudonym.key"
    first = load_or_create_key_file(key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first) == 32 and key_file.read_text().strip() == first.hex()
    announced = capsys.readouterr().err
    assert str(key_file) in announced and "back it up" in announced
    assert announced.count("\n") == 1

    assert load_or_create_key_file(key_file) == first  # reused, said once only
    assert capsys.readouterr().err == ""
    assert [p.name for p in key_file.parent.iterdir()] == ["pseudonym.key"]  # no leftovers


def test_concurrent_first_runs_share_one_key(tmp_path: Path) -> None:
    key_file = tmp_path / "pseudonym.key"
    start = threading.Barrier(8)
    keys: list[bytes] = []

    def first_use() -> None:
        start.wait()
        keys.append(load_or_create_key_file(key_file))

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620])
def test_key_file_open_to_others_is_refused(tmp_path: Path, mode: int) -> None:
    key_file = tmp_path / "pseudonym.key"
    load_or_create_key_file(key_file)
    key_file.chmod(mode)
    with pytest.raises(UserError, match="chmod 600") as err:
        load_or_create_key_file(key_file)
    assert "\n" not in str(err.value)
    assert key_file.read_text().strip() not in str(err.value)


def test_key_file_symlink_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere.key"
    load_or_create_key_file(real)
    link = tmp_path / "pseudonym.key"
    link.symlink_to(real)
    with pytest.raises(UserError, match="symlink"):
        load_or_create_key_file(link)
    dangling = tmp_path / "dangling.key"
    dangling.symlink_to(tmp_path / "missing")
    with pytest.raises(UserError, match="symlink"):
        load_or_create_key_file(dangling)
    assert not (tmp_path / "missing").exists()  # nothing written through the link


def test_key_file_that_is_not_a_file_or_holds_no_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "dir.key").mkdir()
    with pytest.raises(UserError, match="not a regular file"):
        load_or_create_key_file(tmp_path / "dir.key")
    garbage = tmp_path / "garbage.key"
    garbage.write_text("not hex at all")
    garbage.chmod(0o600)
    with pytest.raises(UserError, match="does not hold a key"):
        load_or_create_key_file(garbage)


# --------------------------------------------- configuration and resource config


def test_short_pseudonym_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(UserError, match="at least 16") as err:
        Settings.from_env({"B2B_PSEUDONYM_KEY": "short-key"})
    assert "\n" not in str(err.value) and "short-key" not in str(err.value)
    with pytest.raises(UserError, match="at least 16"):
        Pseudonymizer(key="short-key").secret_key()


def test_the_old_salt_variable_is_refused() -> None:
    with pytest.raises(UserError, match="B2B_PSEUDONYM_SALT is no longer read"):
        Settings.from_env({"B2B_PSEUDONYM_SALT": "some-old-production-salt"})


def test_secrets_reach_resources_as_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("B2B_PSEUDONYM_KEY", "a-long-enough-secret-key")
    monkeypatch.setenv("B2B_SOURCE_DB_URL", CLOSED_PORT_URL)
    resources = build_resources(Settings.from_env())
    pseudonymizer, source_db = resources["pseudonymizer"], resources["source_db"]
    assert isinstance(pseudonymizer, Pseudonymizer)
    assert isinstance(source_db, SourceDatabaseResource)
    assert isinstance(pseudonymizer.key, dg.EnvVar) and pseudonymizer.key == "B2B_PSEUDONYM_KEY"
    assert pseudonymizer.key_file is None
    assert isinstance(source_db.url, dg.EnvVar) and source_db.url == "B2B_SOURCE_DB_URL"


def test_without_variables_resources_hold_no_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("B2B_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("B2B_SOURCE_DB_URL", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    resources = build_resources(Settings.from_env())
    assert resources["pseudonymizer"].key is None  # type: ignore[attr-defined]
    assert resources["pseudonymizer"].key_file == str(tmp_path / "home" / "pseudonym.key")  # type: ignore[attr-defined]
    assert resources["source_db"].url == "sqlite:///data/source/b2b_platform.db"  # type: ignore[attr-defined]
    assert not (tmp_path / "home").exists()  # the key file waits for the first run

    monkeypatch.delenv("DAGSTER_HOME")
    default = Settings.from_env().pseudonym_key_file
    assert default == Path("data", "dagster_home", "pseudonym.key").absolute()


def test_dim_customer_pseudonyms_follow_the_key(
    use_warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The asset pseudonymizes with the key (HMAC of `type|number`); a new key, once
    recorded as the warehouse's (`b2b run --new-pseudonym-key`), replaces every
    pseudonym, so nothing keyed on the old ones matches any more."""
    assert materialize('+key:"core/dim_customer"').ok
    sql = (
        "SELECT s.document_type || '|' || s.document_number, d.document_hash"
        " FROM core.dim_customer d JOIN staging.customers s USING (customer_id)"
        " WHERE s.document_number IS NOT NULL"
    )
    rows = query(use_warehouse, sql)
    key = os.environ["B2B_PSEUDONYM_KEY"].encode()
    assert rows and all(h == hmac.new(key, m.encode(), "sha256").hexdigest() for m, h in rows)
    assert not any(h == hashlib.sha256(f"{OLD_PUBLIC_SALT}|{m}".encode()).hexdigest()
                   for m, h in rows)  # fmt: skip

    monkeypatch.setenv("B2B_PSEUDONYM_KEY", "a-rotated-pseudonym-key-2")
    assert not materialize('key:"core/dim_customer"').ok  # not the warehouse's key
    claim_key(WarehouseLocation(str(use_warehouse)), lambda: b"a-rotated-pseudonym-key-2",
              True, replace=True)  # fmt: skip
    assert materialize('key:"core/dim_customer"').ok
    rotated = dict(query(use_warehouse, sql))
    assert not set(rotated.values()) & {h for _, h in rows}
    assert all(
        h == hmac.new(b"a-rotated-pseudonym-key-2", m.encode(), "sha256").hexdigest()
        for m, h in rotated.items()
    )


# ------------------------------------------------------ database URL redaction


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (CLOSED_PORT_URL, "postgresql://postgres:***@127.0.0.1:9/test"),
        ("postgresql://u:p%40ss:w@db.example:5432/b2b", "postgresql://u:***@db.example:5432/b2b"),
        ("postgresql://u@h/db?password=hunter2secret&sslmode=require",
         "postgresql://u@h/db?password=***&sslmode=require"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("sqlite:///data/source/b2b_platform.db", "sqlite:///data/source/b2b_platform.db"),
    ],
)  # fmt: skip
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    "url",
    [
        CLOSED_PORT_URL,
        f"postgresql://postgres@127.0.0.1:9/test?password={SECRET_PASSWORD}",
        f"postgresql://postgres:{SECRET_PASSWORD}%zz@127.0.0.1:9/test",  # libpq echoes this
        f"mysql://root:{SECRET_PASSWORD}@127.0.0.1:9/test",  # refused before connecting
    ],
)
def test_source_database_errors_never_show_the_password(url: str) -> None:
    with pytest.raises(SourceDatabaseError) as err:
        SourceDatabase(url).read_table("SELECT 1")
    shown = "".join(traceback.format_exception(err.value))  # the causes too
    assert SECRET_PASSWORD not in shown
    assert "***" in str(err.value) and "\n" not in str(err.value)


def test_source_resource_failure_never_shows_the_password() -> None:
    with pytest.raises(dg.Failure) as err:
        SourceDatabaseResource(url=CLOSED_PORT_URL).fetch_arrow("SELECT 1")
    assert "postgres:***@127.0.0.1:9" in (err.value.description or "")
    assert SECRET_PASSWORD not in "".join(traceback.format_exception(err.value))


# ---------------------------------------------------------------- personal data at rest


def _source_values(data_dir: Path, sql: str) -> set[str]:
    import sqlite3

    with sqlite3.connect(data_dir / "source" / "b2b_platform.db") as source:
        return {str(v).strip() for (v,) in source.execute(sql) if v is not None and str(v).strip()}


def _text_of(warehouse: Path, sql: str) -> str:
    return "\n".join(str(v) for (v,) in query(warehouse, sql) if v is not None)


def test_quarantine_and_core_hold_no_personal_value_in_clear(built_warehouse, tiny_sources):
    data_dir, _ = tiny_sources
    people = _source_values(
        data_dir,
        "SELECT document_number FROM customers UNION SELECT full_name FROM customers"
        " UNION SELECT email FROM customers UNION SELECT phone FROM customers",
    )
    personal_cuits = {
        cuit
        for cuit in _source_values(data_dir, "SELECT cuit FROM companies")
        if cuit.replace("-", "")[:2] in {"20", "23", "24", "27"}
    }
    assert len(people) > 100 and personal_cuits  # the tiny data has both to hide
    quarantine = _text_of(
        built_warehouse,
        "SELECT raw_record || ' ' || coalesce(detail, '') FROM quarantine.rejected_records"
        " WHERE source <> 'weblogs'",
    )
    core = _text_of(
        built_warehouse,
        "SELECT coalesce(cuit, '') || ' ' || coalesce(cuit_formatted, '') FROM core.dim_company"
        " UNION ALL SELECT coalesce(cuit, '') FROM core.fct_leads",
    )
    # masked values keep only their first and last character: no value survives whole
    leaked = [v for v in people if len(v) > 4 and v in quarantine]
    assert leaked == []
    leaked_cuits = [
        c
        for c in personal_cuits
        if c in quarantine + core or c.replace("-", "") in quarantine + core
    ]
    assert leaked_cuits == []
    # what an operator needs is still there: the record's key, the reason, the masked field
    rows = query(
        built_warehouse,
        "SELECT record_key, detail FROM quarantine.rejected_records"
        " WHERE reason_code = 'invalid_document' LIMIT 1",
    )
    assert rows and "*" in rows[0][1]


def test_leads_match_companies_with_personal_cuits_though_core_masks_them(built_warehouse):
    masked, matched = query(
        built_warehouse,
        "SELECT count(*) FILTER (WHERE cuit LIKE '%*%'),"
        " count(*) FILTER (WHERE cuit LIKE '%*%' AND company_id IS NOT NULL) FROM core.fct_leads",
    )[0]
    personal_companies = query(
        built_warehouse,
        "SELECT count(*) FROM core.dim_company WHERE cuit_is_personal AND cuit LIKE '%*%'",
    )[0][0]
    assert personal_companies > 0
    assert masked == 0 or matched > 0
