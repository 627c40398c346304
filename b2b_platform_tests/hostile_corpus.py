"""Hostile and unlucky input files, written on demand (nothing large is committed).

Each case is a file (or link, directory, FIFO) that an attacker or an unlucky operator
could leave in the log or leads directory, with what the warehouse must do with it.
`test_hostile_inputs.py` loads them all at once; run this module to measure each alone:

    python -m b2b_platform_tests.hostile_corpus measure   # peak RSS and wall per case
    python -m b2b_platform_tests.hostile_corpus write DIR # just write the corpus
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# a string that must never reach the warehouse, the quarantine or the terminal
SECRET = "B2B_SECRET_d41d8cd98f00b204"


def log_line(
    day: str, agent: str = "Mozilla/5.0 (X11; Linux x86_64)", client: str = "8.8.8.8"
) -> bytes:
    """One valid combined-format line at noon of `day` (dd/Mon/yyyy)."""
    return (
        f'{client} - - [{day}:12:00:00 +0000] "GET /products/1 HTTP/1.1" 200 512 "-" "{agent}"\n'
    ).encode()


@dataclass(frozen=True)
class Case:
    name: str  # the entry's name in its directory
    directory: str  # "logs" or "leads"
    write: Callable[[Path], None]  # writes the entry at the given path
    status: str  # its etl.file_manifest status: loaded, failed, skipped
    error: str = ""  # a fragment of the manifest error (failed, skipped)
    reasons: dict[str, int] = field(default_factory=dict)  # quarantine reason -> count


def _gzip_stream(path: Path, pieces: Callable[[], list[tuple[bytes, int]]]) -> None:
    """gzip (piece × count) without holding the inflated text in memory."""
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    with open(path, "wb") as out:
        for piece, count in pieces():
            for _ in range(count):
                out.write(packer.compress(piece))
        out.write(packer.flush())


def _one_huge_line(path: Path) -> None:
    # 400 MB of one line between two good lines: 389 KB of gzip
    _gzip_stream(
        path,
        lambda: [(log_line("01/Nov/2026"), 1), (b"x" * (1 << 20), 400), (b"\n", 1),
                 (log_line("01/Nov/2026"), 1)],
    )  # fmt: skip


def _newlines(path: Path) -> None:
    _gzip_stream(path, lambda: [(b"\n" * 1_000_000, 5)])  # 5M blank lines in 5 KB


def _secret_link(path: Path) -> None:
    target = path.parent.parent / f"outside-{path.name}.txt"
    target.write_text(f"{SECRET}\n" + log_line("03/Nov/2026", agent=SECRET).decode())
    path.symlink_to(target)


def _secret_hard_link(path: Path) -> None:
    """Another name of a file outside the directory (hard links need the same disk)."""
    target = path.parent.parent / f"outside-{path.name}"
    target.write_bytes(log_line("17/Nov/2026", agent=SECRET))
    os.link(target, path)


def _apple_double(path: Path) -> None:
    """What macOS leaves beside a file copied to a foreign disk: a name like the data's."""
    path.write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + b"\x00" * 64)


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _truncated_gzip(path: Path) -> None:
    path.write_bytes(gzip.compress(log_line("06/Nov/2026") * 5000)[:-40])


def _random_bytes(path: Path) -> None:
    path.write_bytes(os.urandom(1 << 16) + b"\0")


def _control_bytes(path: Path) -> None:
    path.write_bytes(
        log_line("08/Nov/2026", agent="Mozilla/5.0 \x1f unit-separator")
        + log_line("08/Nov/2026", agent="Mozilla/5.0 \x1e\x1c\x1d")
    )


def _long_agent(path: Path) -> None:
    path.write_bytes(log_line("09/Nov/2026", agent="Mozilla/5.0 " + "A" * 32_000))


def _bad_client(path: Path) -> None:
    path.write_bytes(log_line("10/Nov/2026", client="999.999.999.999"))


def _directory(path: Path) -> None:
    path.mkdir()


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _dangling(path: Path) -> None:
    path.symlink_to("/nonexistent/b2b-hostile")


def _dates(path: Path) -> None:
    path.write_bytes(log_line("15/Nov/2026") + log_line("01/Jan/2027") + log_line("01/Oct/2026"))


def _prose(path: Path) -> None:
    path.write_bytes(b"This is not a log file, only someone's notes.\n" * 1500)


def _xlsx(path: Path, sheet_xml: str, dimension: str = "") -> None:
    """A minimal .xlsx (one sheet, inline strings) written as the zip of its XML parts."""
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><workbook {ns} xmlns:r="{rel}"><sheets>'
            '<sheet name="Leads" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
        ),
        "xl/worksheets/sheet1.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><worksheet {ns}>{dimension}'
            f"<sheetData>{sheet_xml}</sheetData></worksheet>"
        ),
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as book:
        for name, text in parts.items():
            book.writestr(name, text)


def _cell(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


def _far_cell(path: Path) -> None:
    # one cell at the sheet's last column and row: the reader once allocated 512 GiB
    _xlsx(path, f'<row r="1048576">{_cell("XFD1048576", "boom")}</row>')


def _leads_without_id(path: Path) -> None:
    header = ["Lead ID", "Fecha", "Campaña", "Canal", "Empresa", "CUIT", "Email"]
    rows = [header] + [
        ["", "01/11/2026", "Hostile", "Webinar", f"Empresa {n}", "", f"lead{n}@example.com"]
        for n in range(3)
    ]
    columns = "ABCDEFG"
    xml = "".join(
        f'<row r="{r}">'
        + "".join(_cell(f"{columns[c]}{r}", v) for c, v in enumerate(row) if v)
        + "</row>"
        for r, row in enumerate(rows, start=1)
    )
    _xlsx(path, xml)


def _secret_workbook_link(path: Path) -> None:
    target = path.parent.parent / "outside-secret.xlsx"
    _xlsx(target, f'<row r="1">{_cell("A1", SECRET)}</row>')
    path.symlink_to(target)


NON_UTF8_LEAD_NAME = "caf\udce9.xlsx"  # the bytes b"caf\xe9.xlsx" as os gives them


def _non_utf8_name(path: Path) -> None:
    path.write_bytes(b"PK not really a workbook")


CASES: tuple[Case, ...] = (
    Case("access-2026-11-01.log.gz", "logs", _one_huge_line, "loaded", reasons={"line_too_long": 1}),
    Case("access-2026-11-02.log.gz", "logs", _newlines, "failed", "not an access log"),
    Case("access.log-20261103", "logs", _secret_link, "skipped", "symbolic link"),
    Case("access-2026-11-04.log", "logs", _empty, "loaded"),
    Case("access-2026-11-05.log", "logs", _empty, "loaded"),
    Case("access-2026-11-06.log.gz", "logs", _truncated_gzip, "failed", "end-of-stream"),
    Case("access-2026-11-07.log", "logs", _random_bytes, "failed", "binary data"),
    Case("access-2026-11-08.log", "logs", _control_bytes, "loaded"),
    Case("access-2026-11-09.log", "logs", _long_agent, "loaded"),
    Case("access-2026-11-10.log", "logs", _bad_client, "loaded"),
    Case("access-2026-11-11.log", "logs", _directory, "skipped", "directory"),
    Case("access-2026-11-12.log", "logs", _fifo, "skipped", "named pipe"),
    Case("access-2026-11-13.log.gz", "logs", _dangling, "skipped", "symbolic link"),
    # 1 Jan 2027 is both far from the file's day and after the cutoff: the day decides,
    # whatever the clock says (it would never load)
    Case("access-2026-11-15.log", "logs", _dates, "loaded", reasons={"outside_file_day": 2}),
    Case("access-2026-11-16.log", "logs", _prose, "failed", "not an access log"),
    Case("access-2026-11-17.log", "logs", _secret_hard_link, "skipped", "hard link"),
    Case("far-cell.xlsx", "leads", _far_cell, "failed", "too large for a campaign export"),
    Case("no-lead-ids.xlsx", "leads", _leads_without_id, "loaded", reasons={"missing_lead_id": 3}),
    Case("outside.xlsx", "leads", _secret_workbook_link, "skipped", "symbolic link"),
    Case("gone.xlsx", "leads", _dangling, "skipped", "symbolic link"),
    Case(NON_UTF8_LEAD_NAME, "leads", _non_utf8_name, "skipped", "not valid UTF-8"),
    Case("._campaign.xlsx", "leads", _apple_double, "skipped", "macOS metadata"),
    Case("hard-linked.xlsx", "leads", _secret_hard_link, "skipped", "hard link"),
)  # fmt: skip


def write_case(case: Case, logs: Path, leads: Path) -> Path:
    path = (logs if case.directory == "logs" else leads) / case.name
    if path.is_file() and not path.is_symlink():
        path.unlink()  # a generated file of the same name: the hostile one replaces it
    case.write(path)
    return path


def write_corpus(logs: Path, leads: Path, cases: tuple[Case, ...] = CASES) -> None:
    for case in cases:
        write_case(case, logs, leads)


def run_b2b(
    env: dict[str, str], *args: str, timeout: float = 600
) -> tuple[int, float, float, str, str]:
    """`b2b ARGS` in a child process: exit code, wall seconds, peak RSS MiB, stdout, stderr."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(
            [sys.executable, "-m", "b2b_platform.cli", *args], env=env, stdout=out, stderr=err
        )
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                child.kill()
                raise TimeoutError(f"b2b {' '.join(args)} ran over {timeout} s")
            time.sleep(0.05)
        out.seek(0)
        err.seek(0)
        code = os.waitstatus_to_exitcode(status)
        return (code, time.perf_counter() - started, usage.ru_maxrss / 1024,
                out.read().decode(errors="replace"), err.read().decode(errors="replace"))  # fmt: skip


def _measure() -> None:
    """Each case alone on tiny data: `b2b run` exit code, wall time and peak RSS."""
    import datetime as dt

    from generators.config import SCALES, GenerationConfig
    from generators.sources import generate_sources

    base = Path(tempfile.mkdtemp(prefix="b2b-hostile-"))
    try:
        data = base / "data"
        config = GenerationConfig(scale=SCALES["tiny"], seed=7, as_of=dt.date(2026, 11, 25))
        generate_sources(config, data)
        env = {**os.environ, "B2B_AS_OF": "2026-11-25", "B2B_FIRST_MONTH": "2026-08",
               "B2B_SOURCE_DB_URL": f"sqlite:///{data / 'source' / 'b2b_platform.db'}"}  # fmt: skip
        print(f"{'case':<28} {'exit':>4} {'wall s':>7} {'peak MiB':>9}")
        for label, cases in [("(no hostile file)", ())] + [(c.name, (c,)) for c in CASES]:
            work = base / "work"
            shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(data / "weblogs", work / "logs" / "weblogs")
            shutil.copytree(data / "leads", work / "leads" / "leads")
            write_corpus(work / "logs" / "weblogs", work / "leads" / "leads", cases)
            run_env = {**env, "B2B_LOG_DIR": str(work / "logs" / "weblogs"),
                       "B2B_LEADS_DIR": str(work / "leads" / "leads"),
                       "B2B_WAREHOUSE_PATH": str(work / "warehouse.duckdb"),
                       "B2B_REPORT_DIR": str(work / "reports"),
                       "DAGSTER_HOME": str(work / "home")}  # fmt: skip
            code, wall, peak, _, _ = run_b2b(run_env, "run")
            print(f"{label.encode('utf-8', 'surrogateescape').decode('utf-8', 'replace'):<28}"
                  f" {code:>4} {wall:>7.1f} {peak:>9,.0f}")  # fmt: skip
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["measure"]:
        _measure()
    elif sys.argv[1:2] == ["write"] and len(sys.argv) == 3:
        target = Path(sys.argv[2])
        (target / "weblogs").mkdir(parents=True, exist_ok=True)
        (target / "leads").mkdir(parents=True, exist_ok=True)
        write_corpus(target / "weblogs", target / "leads")
    else:
        sys.exit(__doc__)
