"""Read a marketing-lead workbook written by people into canonical string columns.

fastexcel (Rust calamine, Arrow out) loads every cell as text in one call, so no
Python runs per cell; only the first rows are scanned in Python to find the header.

Workbooks come from outside, so none reaches calamine before workbook_size has sized
it (calamine aborts the process on an allocation it cannot make), and the asset parses
what passed in a child process with a memory cap (workbook_reader), so a reader crash
fails one workbook, not the run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import fastexcel
import polars as pl

from b2b_common.text import fold_accents
from b2b_platform.lib.input_files.file_manifest import error_line, open_regular_file
from b2b_platform.lib.workbooks.workbook_size import (
    LIMITS,
    MIB,
    LeadWorkbookError,
    WorkbookLimits,
    check_workbook_size,
    unreadable,
)

LEAD_FIELDS: tuple[str, ...] = (
    "lead_id", "captured_at", "campaign", "channel", "company_name", "cuit",
    "contact_name", "email", "phone", "country", "province", "city", "industry",
)  # fmt: skip


def lead_rows() -> pl.DataFrame:
    """No lead rows, with the columns a sheet's rows have (canonical fields, sheet row)."""
    return pl.DataFrame(schema={**dict.fromkeys(LEAD_FIELDS, pl.String), "sheet_row": pl.Int64})


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


def fold_header(text: str) -> str:
    """Lower case, no accents, letters and digits only: 'Correo  Electrónico ' -> 'correoelectronico'."""
    ascii_text = fold_accents(text)
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
        raise unreadable(f"cannot read the file ({error_line(exc)})") from exc


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
        raise unreadable(error_line(exc)) from exc
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
