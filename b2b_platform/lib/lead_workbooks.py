"""Read a marketing-lead workbook written by people into canonical string columns.

fastexcel (Rust calamine, Arrow out) loads every cell as text in one call, so no
Python runs per cell; only the first rows are scanned in Python to find the header.

Workbooks come from outside, so none reaches calamine before it is sized here:
calamine allocates a sheet's whole bounding box (one cell at XFD1048576 asks for
512 GiB) and as many shared strings as the file declares, and aborts the process when
that fails. check_workbook_size() inflates every part itself, never trusting the sizes
the zip declares, and refuses a workbook too large to be a campaign export with a
one-line message naming the limit. The asset parses what passed in a child process
with a memory cap (WorkbookReader), so a reader crash fails one workbook, not the run.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import resource
import signal
import socket
import struct
import subprocess
import sys
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType

import fastexcel
import polars as pl

from b2b_platform.lib.file_manifest import error_line, open_regular_file

LEAD_FIELDS: tuple[str, ...] = (
    "lead_id", "captured_at", "campaign", "channel", "company_name", "cuit",
    "contact_name", "email", "phone", "country", "province", "city", "industry",
)  # fmt: skip

# Header names seen in exports, English and Spanish, compared after fold_header().
HEADER_SYNONYMS: dict[str, tuple[str, ...]] = {
    "lead_id": ("lead id", "lead_id", "id lead", "id de lead", "nro lead", "nro. lead", "lead nro",
                "lead number", "id"),
    "captured_at": ("captured at", "captured_at", "date", "fecha", "fecha de captura",
                    "fecha alta", "fecha de alta", "created", "capture date"),
    "campaign": ("campaign", "campaña", "campana", "nombre campaña", "campaign name"),
    "channel": ("channel", "canal", "medio", "source", "origen"),
    "company_name": ("company name", "company", "razón social", "razon social", "empresa",
                     "compañía", "compania", "organization"),
    "cuit": ("cuit", "c.u.i.t.", "nro. cuit", "nro cuit", "tax id (cuit)", "tax id", "cuit/cuil"),
    "contact_name": ("contact name", "contact", "full name", "nombre de contacto", "contacto",
                     "nombre y apellido", "nombre"),
    "email": ("email", "e-mail", "email address", "correo electrónico", "correo", "mail"),
    "phone": ("phone", "phone number", "teléfono", "telefono", "tel.", "celular", "movil"),
    "country": ("country", "país", "pais"),
    "province": ("province", "state", "provincia", "prov."),
    "city": ("city", "ciudad", "localidad"),
    "industry": ("industry", "rubro", "industria", "sector"),
}  # fmt: skip

HEADER_SCAN_ROWS = 20
MIN_HEADER_MATCHES = 4
MIB = 1 << 20


@dataclass(frozen=True)
class WorkbookLimits:
    """The largest workbook read. A campaign export is a few thousand rows of about
    fifteen columns (well under 1 MiB): each limit leaves fifty times that or more, and
    keeps calamine's allocations (~32 bytes a cell, then the Arrow copy) well under
    the reader's memory cap."""

    file_mib: int = 50
    entries: int = 1000  # an Excel file has about ten parts
    unpacked_mib: int = 200  # all parts together, as declared and as really inflated
    cells: int = 2_000_000  # rows x columns of a sheet's range, and of all sheets together
    columns: int = 200


LIMITS = WorkbookLimits()


class LeadWorkbookError(Exception):
    """The workbook cannot be used: unreadable, too large, or no recognizable header row.

    Its message is one line, for the operator and for etl.file_manifest.
    """


def fold_header(text: str) -> str:
    """Lower case, no accents, letters and digits only: 'Correo  Electrónico ' -> 'correoelectronico'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", ascii_text.lower())


FOLDED_SYNONYMS: dict[str, str] = {
    fold_header(name): field for field, names in HEADER_SYNONYMS.items() for name in names
}


@dataclass(frozen=True)
class LeadSheet:
    frame: pl.DataFrame  # canonical fields as strings + sheet_row
    sheet_name: str
    header_row: int  # 1-based row of the header in the sheet
    ignored_columns: tuple[str, ...]


def read_lead_workbook(path: Path, limits: WorkbookLimits = LIMITS) -> LeadSheet:
    """read_workbook_file(), check_workbook_size() and parse_workbook(), in this process."""
    data = read_workbook_file(path, limits)
    check_workbook_size(data, limits)
    return parse_workbook(data)


def read_workbook_file(path: Path, limits: WorkbookLimits = LIMITS) -> bytes:
    """A workbook's bytes, read once and never through a link (open_regular_file)."""
    try:
        with open_regular_file(path) as handle:
            return handle.read(limits.file_mib * MIB + 1)  # enough to tell it is too large
    except OSError as exc:
        raise _unreadable(f"cannot read the file ({error_line(exc)})") from exc


def parse_workbook(data: bytes) -> LeadSheet:
    """The first sheet with a recognizable header, as canonical string columns.

    Only for bytes check_workbook_size() accepted. Sheets load one at a time until one
    has a header; blank rows are dropped; `sheet_row` keeps each record's 1-based row.
    """
    try:
        reader = fastexcel.read_excel(data)
        for name in reader.sheet_names:
            grid = reader.load_sheet(name, header_row=None, dtypes="string").to_polars()
            found = _find_header(grid)
            if found is not None:
                return _canonical(grid, name, *found)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # also pyo3's PanicException (a Rust panic), not an Exception
        raise _unreadable(error_line(exc)) from exc
    raise LeadWorkbookError(
        f"no header row with at least {MIN_HEADER_MATCHES} known lead columns "
        f"(e.g. Email, CUIT, Empresa) in the first {HEADER_SCAN_ROWS} rows"
    )


def _find_header(grid: pl.DataFrame) -> tuple[int, dict[int, str]] | None:
    for index, row in enumerate(grid.head(HEADER_SCAN_ROWS).iter_rows()):
        mapping: dict[int, str] = {}
        for col, value in enumerate(row):
            field = FOLDED_SYNONYMS.get(fold_header(value)) if value else None
            if field and field not in mapping.values():
                mapping[col] = field
        if len(mapping) >= MIN_HEADER_MATCHES:
            return index, mapping
    return None


def _canonical(
    grid: pl.DataFrame, sheet: str, header_index: int, mapping: dict[int, str]
) -> LeadSheet:
    columns = grid.columns
    body = grid.slice(header_index + 1).with_columns(
        sheet_row=pl.int_range(header_index + 2, header_index + 2 + grid.height - header_index - 1)
    )
    selected = [pl.col(columns[i]).str.strip_chars().alias(field) for i, field in mapping.items()]
    missing = [
        pl.lit(None, dtype=pl.String).alias(f) for f in LEAD_FIELDS if f not in mapping.values()
    ]
    frame = (
        body.select(*selected, *missing, "sheet_row")
        .with_columns(pl.col(LEAD_FIELDS).replace("", None))
        .filter(~pl.all_horizontal(pl.col(LEAD_FIELDS).is_null()))
        .select(*LEAD_FIELDS, "sheet_row")
    )
    header_values = grid.row(header_index)
    ignored = tuple(
        str(header_values[i]) for i in range(len(columns)) if i not in mapping and header_values[i]
    )
    return LeadSheet(
        frame=frame, sheet_name=sheet, header_row=header_index + 1, ignored_columns=ignored
    )


# ---------------------------------------------------------------- sizing

# polars (Rust, linear-time) regexes over a part's text. calamine matches local names,
# so <x:c r="A1"> is a cell too: every element may carry a namespace prefix.
_PREFIX = r"<(?:[\w.-]+:)?"
_CELL_REF = _PREFIX + r"c\s[^>]*?\br\s*=\s*[\"']\s*\$?[A-Za-z]*\$?[0-9]*"
_ROW_REF = _PREFIX + r"row\s[^>]*?\br\s*=\s*[\"']\s*[0-9]+"
_ROW_ELEMENT = r"(?s)" + _PREFIX + r"row[\s/>].*?(?:</(?:[\w.-]+:)?row>|$)"
_CELL_TAG = _PREFIX + r"c[\s/>]"
_ROW_TAG = _PREFIX + r"row[\s/>]"
_DIMENSION = _PREFIX + r"dimension\s[^>]*?\bref\s*=\s*[\"']([^\"']*)"
_SST_TAG = _PREFIX + r"sst\s[^>]*>"
_COUNT_ATTRIBUTE = re.compile(r"\b(?:uniqueCount|count)\s*=\s*[\"']\s*([0-9]+)")
_RANGE = re.compile(r"\$?([A-Za-z]{1,7})\$?([0-9]{1,12})(?::\$?([A-Za-z]{1,7})\$?([0-9]{1,12}))?$")
_UTF16_START = re.compile(rb"\xff\xfe|\xfe\xff|<\x00|\x00<")
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # signature .. name length, extra length


def check_workbook_size(data: bytes, limits: WorkbookLimits = LIMITS) -> None:
    """Raise LeadWorkbookError unless `data` is a zip holding a workbook within `limits`.

    Every part is inflated here with a cap on what it really unpacks to (a zip bomb
    declares a few bytes); every sheet's declared <dimension> and the bounding box of
    its cell references are measured, vectorized in polars.
    """
    if not data:
        raise _unreadable("the file is empty (0 bytes)")
    if len(data) > limits.file_mib * MIB:
        raise _too_large("the file", f"{limits.file_mib} MiB")
    # counted before zipfile builds an object per entry (a chance match only adds one)
    if (entries := data.count(b"PK\x01\x02")) > limits.entries:
        raise _too_large(f"the zip holds {entries:,} parts", f"{limits.entries:,} parts")
    try:
        parts = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except Exception as exc:  # BadZipFile, and struct/unicode errors from a mangled directory
        raise _unreadable(f"not a zip archive, as an .xlsx is ({error_line(exc)})") from exc
    budget = limits.unpacked_mib * MIB
    if (declared := sum(part.file_size for part in parts)) > budget:
        raise _too_large(
            f"the parts declare {declared / MIB:,.0f} MiB", f"{limits.unpacked_mib} MiB unpacked"
        )
    if "xl/workbook.xml" not in {part.filename for part in parts}:
        raise _unreadable("a zip archive without xl/workbook.xml")
    total_cells = 0
    for part in parts:
        content = _inflate(data, part, budget, limits)
        budget -= len(content)
        total_cells += _check_part(_printable(part.filename), content, limits)
    if total_cells > limits.cells:
        raise _too_large(f"the sheets span {total_cells:,} cells", f"{limits.cells:,} cells")


def _inflate(data: bytes, entry: zipfile.ZipInfo, budget: int, limits: WorkbookLimits) -> bytes:
    """One part's bytes, inflated to at most budget + 1 bytes whatever its header says."""
    name = _printable(entry.filename)
    start = entry.header_offset
    header = data[start : start + _LOCAL_HEADER.size] if start >= 0 else b""
    if len(header) < _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
        raise _unreadable(f"part {name} is missing (a truncated file?)")
    _, _, flags, method, *_, name_length, extra_length = _LOCAL_HEADER.unpack(header)
    if flags & 0x1:
        raise _unreadable("the workbook is encrypted (save it without a password)")
    start += _LOCAL_HEADER.size + name_length + extra_length
    packed = data[start : start + entry.compress_size]
    part = packed
    if method == zipfile.ZIP_DEFLATED:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            part = inflater.decompress(packed, budget + 1)
        except zlib.error as exc:
            raise _unreadable(f"part {name} is damaged ({exc})") from exc
        if len(part) <= budget and not inflater.eof:
            packed = b""  # cut short: reported below
    elif method != zipfile.ZIP_STORED:
        raise _unreadable(f"part {name} uses zip compression {method}, which Excel never writes")
    if len(part) > budget:
        limit = f"{limits.unpacked_mib} MiB unpacked"
        raise _too_large(
            f"part {name} declares {entry.file_size:,} bytes but unpacks to more", limit
        )
    if len(packed) < entry.compress_size:
        raise _unreadable(f"part {name} is cut short (a truncated file?)")
    if len(part) != entry.file_size or zlib.crc32(part) != entry.CRC:
        raise _unreadable(f"part {name} does not match its declared size and checksum")
    return part


def _check_part(name: str, part: bytes, limits: WorkbookLimits) -> int:
    """Raise if the part declares or holds too much; return the cells its sheet spans."""
    if _UTF16_START.match(part[:2]):  # the patterns below would not see UTF-16 text
        raise _unreadable(f"part {name} is UTF-16, not UTF-8")
    text = pl.DataFrame({"xml": [part.decode("utf-8", "replace")]})
    xml = pl.col("xml")
    found = text.select(
        sst=xml.str.extract(_SST_TAG, 0),
        dimension=xml.str.extract(_DIMENSION, 1),
        cells=xml.str.count_matches(_CELL_TAG),
        rows=xml.str.count_matches(_ROW_TAG),
    ).row(0, named=True)
    for count in _COUNT_ATTRIBUTE.findall(found["sst"] or ""):
        if len(count) > 12 or int(count) > limits.cells:  # calamine reserves this many strings
            raise _too_large(f"{int(count):,} shared strings declared", f"{limits.cells:,}")
    declared = _RANGE.match((found["dimension"] or "").strip())
    if declared:
        first_col, first_row, last_col, last_row = declared.groups()
        rows = abs(int(last_row or first_row) - int(first_row)) + 1
        cols = abs(_column_number(last_col or first_col) - _column_number(first_col)) + 1
        _check_extent(f"sheet {name} declares the range {declared.group(0)}", rows, cols, limits)
    if not (found["cells"] or found["rows"]):
        return 0
    rows, cols = _cell_extent(text, found["cells"], found["rows"])
    where = f"sheet {name} has cells up to row {rows:,} and column {_column_name(cols)}"
    _check_extent(where, rows, cols, limits)
    return rows * cols


def _check_extent(what: str, rows: int, cols: int, limits: WorkbookLimits) -> None:
    if cols > limits.columns or rows * cols > limits.cells:
        limit = f"{limits.cells:,} cells and {limits.columns} columns"
        raise _too_large(f"{what} ({rows:,} rows x {cols:,} columns)", limit)


def _cell_extent(text: pl.DataFrame, cell_tags: int, row_tags: int) -> tuple[int, int]:
    """Rows and columns calamine makes of a sheet: its largest row and column references,
    plus the rows, and the cells in a row, that carry no reference and take the next one.

    Counted with polars regexes over the whole text (no Python per cell); comments or
    odd markup can only make the count larger, never smaller.
    """
    refs = text.select(ref=pl.col("xml").str.extract_all(_CELL_REF)).explode("ref").drop_nulls()
    row_refs = text.select(ref=pl.col("xml").str.extract_all(_ROW_REF)).explode("ref").drop_nulls()
    row_number = pl.col("ref").str.extract(r"([0-9]*)$", 1).str.strip_chars_start("0")
    cells = refs.select(col=pl.col("ref").str.extract(r"([A-Za-z]*)\$?[0-9]*$", 1), row=row_number)
    rows_placed = row_refs.select(row=row_number)
    max_row = max(_largest(cells, "row"), _largest(rows_placed, "row"), key=lambda d: (len(d), d))
    rows = (int(max_row or 0) if len(max_row) <= 12 else 10**12) + max(
        0, row_tags - row_refs.height
    )
    cols = _column_number(_largest(cells, "col"))
    unplaced = cell_tags - refs.height
    if unplaced > 0:  # rare: then count them row by row (outside any row: anywhere)
        per_row = text.select(row=pl.col("xml").str.extract_all(_ROW_ELEMENT)).explode("row")
        in_rows = per_row.select(
            pl.col("row").str.count_matches(_CELL_TAG) - pl.col("row").str.count_matches(_CELL_REF)
        ).to_series()
        cols += int(in_rows.max() or 0) + max(0, unplaced - int(in_rows.sum() or 0))
    return max(rows, 1), max(cols, 1)


def _largest(values: pl.DataFrame, column: str) -> str:
    """The largest column name or row number (no leading zeros): the longest, then the
    greatest."""
    length = pl.col(column).str.len_bytes()
    largest = pl.col(column).filter(length == length.max()).str.to_uppercase().max()
    return values.select(largest).item() or ""


def _unreadable(what: str) -> LeadWorkbookError:
    return LeadWorkbookError(f"cannot open workbook: {what}")


def _too_large(what: str, limit: str) -> LeadWorkbookError:
    return LeadWorkbookError(f"too large for a campaign export: {what}, over the limit of {limit}")


def _printable(name: str) -> str:
    """A part name fit for a one-line message."""
    return "".join(c if c.isprintable() else "?" for c in name[:120])


def _column_number(letters: str) -> int:
    number = 0
    for letter in letters.upper()[:8]:  # eight letters already exceed any sheet
        number = number * 26 + ord(letter) - ord("A") + 1
    return number


def _column_name(number: int) -> str:
    name = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        name = chr(ord("A") + rest) + name
    return name or "A"


# ---------------------------------------------------------------- isolated reading

READ_TIMEOUT_SECONDS = 120.0  # a campaign export parses in well under a second
CHILD_MEMORY_HEADROOM = 1 << 30  # what the reader may map beyond its warmed-up footprint
# The child imports this module only: multiprocessing's spawn would also import the
# parent's __main__ (the dagster command line, a second of imports) in every child.
_CHILD = "from b2b_platform.lib.lead_workbooks import _serve; _serve({fd}, {headroom})"


class WorkbookReader:
    """Parses workbooks in one child process, started once and reused for every workbook.

    A child that dies (calamine aborts on an allocation it cannot make, a signal) or
    stops answering fails the workbook it was reading; the next workbook gets a new
    child. Its address space is capped (RLIMIT_AS) at CHILD_MEMORY_HEADROOM beyond what
    it maps once warmed up, so an allocation that would swamp the machine fails there.
    Answers come back as JSON and Arrow IPC, never as a pickle from the child.
    """

    def __init__(
        self,
        limits: WorkbookLimits = LIMITS,
        timeout_seconds: float = READ_TIMEOUT_SECONDS,
        memory_headroom: int = CHILD_MEMORY_HEADROOM,
    ) -> None:
        self.limits = limits
        self.timeout_seconds = timeout_seconds
        self.memory_headroom = memory_headroom
        self._child: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None

    def __enter__(self) -> WorkbookReader:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def read(self, data: bytes) -> LeadSheet:
        """check_workbook_size(), then parse_workbook() in the child."""
        check_workbook_size(data, self.limits)
        conn = self._start()
        try:
            conn.send_bytes(data)
            if not conn.poll(self.timeout_seconds):
                self._stop()
                raise _unreadable(
                    f"the reader took over {self.timeout_seconds:g} s and was stopped"
                )
            answer = json.loads(conn.recv_bytes())
            if "error" in answer:
                raise LeadWorkbookError(answer["error"])
            frame = pl.read_ipc(conn.recv_bytes())
        except LeadWorkbookError:
            raise
        except (EOFError, OSError) as exc:  # the child is gone: a broken pipe or end of file
            raise LeadWorkbookError(f"the workbook reader crashed ({self._stop()})") from exc
        except BaseException:
            self._stop()  # an answer read halfway would be taken for the next workbook's
            raise
        return LeadSheet(
            frame, answer["sheet_name"], answer["header_row"], tuple(answer["ignored"])
        )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()  # the child reads end of file and exits
            self._conn = None
        if self._child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):  # then killed below
                self._child.wait(timeout=5)
        self._stop()

    def _start(self) -> Connection:
        if self._conn is None or self._child is None:
            ours, theirs = socket.socketpair()
            code = _CHILD.format(fd=theirs.fileno(), headroom=self.memory_headroom)
            # the child sees the modules the parent sees, as multiprocessing would do
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
            with theirs:  # closed here once the child holds it: its death reads as end of file
                self._child = subprocess.Popen(
                    [sys.executable, "-c", code], pass_fds=[theirs.fileno()], env=env,
                    stdin=subprocess.DEVNULL,
                )  # fmt: skip
            self._conn = Connection(ours.detach())
        return self._conn

    def _stop(self) -> str:
        """End the child if it still runs; how it ended."""
        child, conn = self._child, self._conn
        self._child = self._conn = None
        if conn is not None:
            conn.close()
        if child is None:
            return "no reader"
        if child.poll() is None:
            child.kill()
        code = child.wait()
        return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"


def _serve(fd: int, memory_headroom: int) -> None:
    """The child: parse each workbook the parent sends, until it closes the connection."""
    _limit_memory(memory_headroom)
    conn = Connection(fd)
    while True:
        try:
            data = conn.recv_bytes()
        except EOFError:
            return
        try:
            sheet = parse_workbook(data)
        except LeadWorkbookError as exc:
            conn.send_bytes(json.dumps({"error": str(exc)}).encode())
            continue
        answer = {"sheet_name": sheet.sheet_name, "header_row": sheet.header_row}
        conn.send_bytes(json.dumps({**answer, "ignored": sheet.ignored_columns}).encode())
        conn.send_bytes(sheet.frame.write_ipc(None).getvalue())


def _limit_memory(headroom: int) -> None:
    # polars' thread pool and allocator arenas map address space as they start: start
    # them first, so the cap leaves the headroom for data whatever the number of cores
    pl.DataFrame({"n": range(64)}).select(pl.col("n").cast(pl.String).str.len_bytes().sum())
    try:
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith("VmSize:"))
    except (OSError, StopIteration):
        return  # not Linux: no cap, and a crash still stays in the child
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = int(line.split()[1]) * 1024 + headroom
    resource.setrlimit(
        resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard)
    )
