"""Files private by default: the warehouse, its side files, exports and staged reports are
the owner's only whatever the umask, while the published reports follow the umask; and
no client address or sole proprietor's name is left in clear where the data is masked."""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from b2b_platform.cli import main
from b2b_platform.lib.report_files.directory import staged_export
from b2b_platform.lib.report_files.output import EXPORT_FILES
from b2b_platform.lib.warehouse.connection import warehouse_connection
from b2b_platform.lib.warehouse.loaded_files import loaded_files_path, write_loaded_files
from b2b_platform.lib.warehouse.private_files import private_umask, shared_umask
from b2b_platform.lib.warehouse.schema import create_macros, ensure_warehouse_schema
from b2b_platform_tests.helpers import query, warehouse_env

OPEN_UMASK = 0o022  # a common operator umask: new files 0644, directories 0755


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def is_private(path: Path) -> bool:
    return mode(path) & 0o077 == 0


@pytest.fixture
def open_umask() -> Iterator[int]:
    """The process runs with umask 022 for the test, as an operator's shell often does."""
    before = os.umask(OPEN_UMASK)
    try:
        yield OPEN_UMASK
    finally:
        os.umask(before)


# ------------------------------------------------------------------- the umask


def test_private_umask_nests_and_gives_the_umask_back(tmp_path: Path, open_umask: int) -> None:
    with private_umask():
        with private_umask():
            (tmp_path / "inner").write_text("x")
        (tmp_path / "outer").write_text("x")
        (tmp_path / "folder").mkdir()
        assert shared_umask() == open_umask  # what the published reports follow
    (tmp_path / "after").write_text("x")
    assert mode(tmp_path / "inner") == mode(tmp_path / "outer") == 0o600
    assert mode(tmp_path / "folder") == 0o700
    assert mode(tmp_path / "after") == 0o644
    assert shared_umask() == open_umask


# ------------------------------------------------------------------- the warehouse


def test_a_new_warehouse_and_its_side_files_are_private(tmp_path: Path, open_umask: int) -> None:
    warehouse = tmp_path / "warehouse" / "b2b.duckdb"
    with warehouse_connection(warehouse) as conn:
        ensure_warehouse_schema(conn)
        conn.execute("CREATE TABLE raw.people AS SELECT 'Ana Pérez' AS full_name")
        wal = Path(f"{warehouse}.wal")
        assert wal.exists() and is_private(wal)  # DuckDB makes it again after a checkpoint
        write_loaded_files(conn, warehouse)
        conn.execute("CHECKPOINT")
        conn.execute("INSERT INTO raw.people VALUES ('Beto Gómez')")
        assert wal.exists() and is_private(wal)
    created = list(warehouse.parent.iterdir())
    assert warehouse in created and loaded_files_path(warehouse) in created
    assert {path.name: mode(path) for path in created if not is_private(path)} == {}
    # the folder it was made in keeps the umask: it may be the reports' parent too
    assert mode(warehouse.parent) == 0o755
    # the process's umask is the operator's again once the warehouse is closed
    assert shared_umask() == open_umask


def test_the_built_warehouse_is_private_and_its_reports_follow_the_umask(
    built_warehouse: Path,
) -> None:
    state = loaded_files_path(built_warehouse)
    assert state is not None and state.exists()
    assert is_private(built_warehouse) and is_private(state)
    reports = built_warehouse.parent / "reports"
    published = {path.name: mode(path) for path in reports.iterdir()}
    assert set(published) == set(EXPORT_FILES)
    # the session's umask (the tests run as an operator would): not forced private
    assert set(published.values()) == {0o666 & ~shared_umask()}
    leftovers = [p.name for p in built_warehouse.parent.iterdir() if ".export-" in p.name]
    assert leftovers == []


def test_an_exported_warehouse_is_private(
    built_warehouse: Path,
    tiny_sources,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    open_umask: int,
) -> None:
    data_dir, _ = tiny_sources
    monkeypatch.delenv("B2B_WAREHOUSE", raising=False)
    for key, value in warehouse_env(data_dir, built_warehouse).items():
        monkeypatch.setenv(key, value)
    target = tmp_path / "exports" / "2026-11"
    assert main(["export-warehouse", str(target)]) == 0
    files = list(target.iterdir())
    assert len(files) > 20 and any(f.name.startswith("raw.") for f in files)
    assert mode(target) == 0o700
    assert {f.name: mode(f) for f in files if mode(f) != 0o600} == {}


# ------------------------------------------------------------------- the reports


def _write_export(directory: Path) -> None:
    # as the report step does: while the warehouse is open, when new files are private
    with private_umask():
        for name in EXPORT_FILES:
            (directory / name).write_text("month,orders\n2026-11,3\n")


def test_reports_are_staged_private_then_published_with_the_umask(
    tmp_path: Path, open_umask: int
) -> None:
    report_dir = tmp_path / "reports"
    with staged_export(report_dir) as staging:
        _write_export(staging.path)
        assert mode(staging.path) == 0o700
        assert {mode(staging.path / name) for name in EXPORT_FILES} == {0o600}
        assert staging.publish() == "created"
    assert mode(report_dir) == 0o755
    assert {mode(report_dir / name) for name in EXPORT_FILES} == {0o644}

    report_dir.chmod(0o750)  # shared with a group only: later exports keep that
    (report_dir / "notes.txt").write_text("mine")
    (report_dir / "notes.txt").chmod(0o600)
    with staged_export(report_dir) as staging:
        _write_export(staging.path)
        assert mode(staging.path) == 0o700
        staging.publish()
    assert mode(report_dir) == 0o750
    assert {mode(report_dir / name) for name in EXPORT_FILES} == {0o644}
    assert mode(report_dir / "notes.txt") == 0o600  # a file of the operator's is left alone


def test_reports_replaced_file_by_file_follow_the_umask(tmp_path: Path, open_umask: int) -> None:
    report_dir = tmp_path / "reports"
    (report_dir / "archive").mkdir(parents=True)  # a working folder: not swapped
    with staged_export(report_dir) as staging:
        _write_export(staging.path)
        with private_umask():  # published while another thread holds the warehouse
            assert staging.publish() == "file by file"
    assert {mode(report_dir / name) for name in EXPORT_FILES} == {0o644}


# ------------------------------------------------------------------- the quarantine

IPV4 = re.compile(r"(?<![0-9.])[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?![0-9])")


def _addresses(text: str) -> set[str]:
    """Every token of `text` that looks like an IP address, IPv4 or IPv6, leaving out a
    program's version (Chrome/120.0.0.0), which only looks like one."""
    text = re.sub(r"[A-Za-z]+/[0-9.]+", "", text)
    found = set(IPV4.findall(text))
    for token in re.split(r"[\s,\"\[\]=?&/]+", text):
        for candidate in (token, token.rsplit(":", 1)[0]):
            try:
                ipaddress.ip_address(candidate)
            except ValueError:
                continue
            found.add(candidate)
    return found


def _masked(line: str) -> str:
    conn = duckdb.connect()
    try:
        create_macros(conn, temporary=True)
        return conn.execute("SELECT mask_addresses(?)", [line]).fetchall()[0][0]
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        ('203.0.113.9 - - [10/Oct/2026:13:55:36 -0300] "GET /a HTTP/1.1" 200 12',
         '*.*.*.* - - [10/Oct/2026:13:55:36 -0300] "GET /a HTTP/1.1" 200 12'),
        # a forwarded-for list before the client, with and without a space
        ("198.51.100.7, 10.0.0.1 - ana [bad", "*.*.*.*, *.*.*.* - ana [bad"),
        ("198.51.100.7,10.0.0.1 - - [bad", "*.*.*.*,*.*.*.* - - [bad"),
        ("2001:db8::1 - - [bad", "*::* - - [bad"),
        ("::1 - - [bad", "*::* - - [bad"),
        ("fe80:0:0:0:202:b3ff:fe1e:8329 - - [bad", "*::* - - [bad"),
        ("::ffff:192.0.2.1 - - [bad", "*::*:*.*.*.* - - [bad"),
        # a virtual host first, an address in the URL, a bracketed IPv6 with a port
        ('shop.example.com [2001:db8:85a3::8a2e:370:7334]:443 - "GET /?ip=8.8.8.8"',
         'shop.example.com [*::*]:443 - "GET /?ip=*.*.*.*"'),
        ('"GET http://10.1.2.3/a HTTP/1.1" "-" "curl/8.5.0"',
         '"GET http://*.*.*.*/a HTTP/1.1" "-" "curl/8.5.0"'),
        # versions, times and Perl-ish names are no addresses
        ('192.0.2.1 "GET /Data::Dumper HTTP/1.1" "Mozilla/5.0 Chrome/120.0.0.0 Safari/537.36" 13:55:36',
         '*.*.*.* "GET /Data::Dumper HTTP/1.1" "Mozilla/5.0 Chrome/120.0.0.0 Safari/537.36" 13:55:36'),
    ],
)  # fmt: skip
def test_mask_addresses_hides_every_address_and_keeps_the_rest(line: str, masked: str) -> None:
    assert _masked(line) == masked
    assert _addresses(line) and not _addresses(masked)


def test_quarantined_log_lines_keep_no_client_address(built_warehouse: Path) -> None:
    lines = [
        line
        for (line,) in query(
            built_warehouse,
            "SELECT raw_record FROM quarantine.rejected_records"
            " WHERE source = 'weblogs' AND raw_record IS NOT NULL",
        )
    ]
    assert lines  # the tiny logs have lines to quarantine
    assert {line: _addresses(line) for line in lines if _addresses(line)} == {}
    # the line is still there for the operator, its client masked where it was
    written = [line for line in lines if line.strip()]  # a blank line is quarantined too
    assert written and all(line.startswith(("*.*.*.*", "*::*")) for line in written)


# ------------------------------------------------------------------- core


def test_fct_leads_masks_the_name_of_a_person_with_the_cuit(built_warehouse: Path) -> None:
    rows = query(
        built_warehouse,
        "SELECT is_personal_cuit(s.cuit), s.company_name, f.company_name, f.cuit"
        " FROM staging.leads s JOIN core.fct_leads f USING (lead_id)"
        " WHERE s.cuit IS NOT NULL AND s.company_name IS NOT NULL",
    )
    personal = [row for row in rows if row[0]]
    companies = [row for row in rows if not row[0]]
    assert personal and companies  # the tiny leads have both
    for _, name, shown, cuit in personal:
        assert "*" in cuit and shown != name
        assert len(shown) == len(name) and set(shown[1:-1]) <= {"*"}
    assert all(shown == name for _, name, shown, _ in companies)
