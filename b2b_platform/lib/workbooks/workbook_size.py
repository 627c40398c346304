"""Size a workbook before any reader opens it: nothing too large to be a campaign export
reaches calamine.

calamine allocates a sheet's whole bounding box (one cell at XFD1048576 asks for
512 GiB) and as many shared strings as the file declares, and aborts the process when
that fails. check_workbook_size() inflates every part itself, never trusting the sizes
the zip declares, and refuses a workbook beyond WorkbookLimits with a one-line message
naming the limit.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass

import polars as pl

from b2b_platform.lib.input_files.file_manifest import error_line

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
        raise unreadable("the file is empty (0 bytes)")
    if len(data) > limits.file_mib * MIB:
        raise _too_large("the file", f"{limits.file_mib} MiB")
    # counted before zipfile builds an object per entry (a chance match only adds one)
    if (entries := data.count(b"PK\x01\x02")) > limits.entries:
        raise _too_large(f"the zip holds {entries:,} parts", f"{limits.entries:,} parts")
    try:
        parts = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except Exception as exc:  # BadZipFile, and struct/unicode errors from a mangled directory
        raise unreadable(f"not a zip archive, as an .xlsx is ({error_line(exc)})") from exc
    budget = limits.unpacked_mib * MIB
    if (declared := sum(part.file_size for part in parts)) > budget:
        raise _too_large(
            f"the parts declare {declared / MIB:,.0f} MiB", f"{limits.unpacked_mib} MiB unpacked"
        )
    if "xl/workbook.xml" not in {part.filename for part in parts}:
        raise unreadable("a zip archive without xl/workbook.xml")
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
        raise unreadable(f"part {name} is missing (a truncated file?)")
    _, _, flags, method, *_, name_length, extra_length = _LOCAL_HEADER.unpack(header)
    if flags & 0x1:
        raise unreadable("the workbook is encrypted (save it without a password)")
    start += _LOCAL_HEADER.size + name_length + extra_length
    packed = data[start : start + entry.compress_size]
    part = packed
    if method == zipfile.ZIP_DEFLATED:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            part = inflater.decompress(packed, budget + 1)
        except zlib.error as exc:
            raise unreadable(f"part {name} is damaged ({exc})") from exc
        if len(part) <= budget and not inflater.eof:
            packed = b""  # cut short: reported below
    elif method != zipfile.ZIP_STORED:
        raise unreadable(f"part {name} uses zip compression {method}, which Excel never writes")
    if len(part) > budget:
        limit = f"{limits.unpacked_mib} MiB unpacked"
        raise _too_large(
            f"part {name} declares {entry.file_size:,} bytes but unpacks to more", limit
        )
    if len(packed) < entry.compress_size:
        raise unreadable(f"part {name} is cut short (a truncated file?)")
    if len(part) != entry.file_size or zlib.crc32(part) != entry.CRC:
        raise unreadable(f"part {name} does not match its declared size and checksum")
    return part


def _check_part(name: str, part: bytes, limits: WorkbookLimits) -> int:
    """Raise if the part declares or holds too much; return the cells its sheet spans."""
    if _UTF16_START.match(part[:2]):  # the patterns below would not see UTF-16 text
        raise unreadable(f"part {name} is UTF-16, not UTF-8")
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


def unreadable(what: str) -> LeadWorkbookError:
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
