"""Writing one campaign's lead file: its rows in the file's order with re-exported leads
pasted in and blank rows between, titles above the header, and cells by type.

The workbook is written by xlsxwriter in memory (fixed zip timestamps) with the creation
date set from the campaign, so the same config gives byte-identical files.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from generators.draws import ascii_lower
from generators.leads.campaigns import Campaign
from generators.leads.cells import extra_values, row_values
from generators.leads.records import Leads
from generators.leads.styles import FileStyle


def write_workbook(
    path: Path,
    campaign: Campaign,
    style: FileStyle,
    leads: Leads,
    originals: list[int],
    duplicates: list[int],
    campaigns: list[Campaign],
    owners: list[str],
    rng: np.random.Generator,
) -> int:
    """Write one campaign export; returns the number of data rows."""
    rows = [
        row_values(leads, lead, False, campaigns, style, extra_values(style, owners, rng), rng)
        for lead in originals
    ]
    if style.sort_by_company:
        rows.sort(key=lambda row: (ascii_lower(row["company_name"]), row["lead_id"]))
    for lead in duplicates:  # pasted in from another export, wherever the cursor was
        row = row_values(leads, lead, True, campaigns, style, extra_values(style, owners, rng), rng)
        rows.insert(int(rng.integers(0, len(rows) + 1)), row)
    # Blank rows between data (a deleted lead, a visual separator).
    grid: list[list[Any] | None] = [[row.get(c) for c in style.columns] for row in rows]
    for _ in range(int(rng.binomial(len(rows), 0.02)) + int(rng.random() < 0.5) if rows else 0):
        grid.insert(int(rng.integers(1, len(grid) + 1)), None)
    owner = owners[int(rng.integers(len(owners)))]
    _write(path, campaign, style, owner, grid)
    return len(rows)


def _title_rows(campaign: Campaign, style: FileStyle, owner: str) -> list[list[Any]]:
    """What stands above the header: nothing, a title, or a title and who exported it."""
    spanish = style.language != "en"
    title = (
        f"Exportación campaña {campaign.name}" if spanish else f"Campaign export: {campaign.name}"
    )
    subtitle = (
        f"Generado el {campaign.exported_at:%d/%m/%Y %H:%M} por {owner}"
        if spanish
        else f"Exported {campaign.exported_at:%Y-%m-%d %H:%M} by {owner}"
    )
    layouts: dict[int, list[list[Any]]] = {
        0: [],
        1: [[title]],
        2: [[title], []],
        3: [[title], [subtitle], []],
        4: [[title], [subtitle], [], []],
    }
    return layouts[style.header_offset]


def _write(
    path: Path, campaign: Campaign, style: FileStyle, owner: str, grid: list[list[Any] | None]
) -> None:
    """The file: titles, header and the grid's rows (None leaves a row blank)."""
    workbook = xlsxwriter.Workbook(str(path), {"in_memory": True})
    # Fixed creation date: otherwise docProps/core.xml holds "now" and the bytes differ.
    workbook.set_properties(
        {"created": campaign.exported_at, "author": owner, "title": campaign.name}
    )
    sheet = workbook.add_worksheet(style.sheet_name)
    # formats in this order: their order is in the file's bytes
    date_format = workbook.add_format({"num_format": style.date_format})
    integer = workbook.add_format({"num_format": "0"})
    bold = workbook.add_format({"bold": True})
    titles = _title_rows(campaign, style, owner)
    for row, cells in enumerate(titles):
        for column, value in enumerate(cells):
            sheet.write_string(row, column, value, bold if row == 0 else None)
    header_row = len(titles)
    for column, header in enumerate(style.headers):
        sheet.write_string(header_row, column, header, bold)
    for row, cells in enumerate(grid, start=header_row + 1):
        if cells is not None:
            _write_cells(sheet, row, cells, date_format, integer)
    sheet.set_column(0, len(style.columns) - 1, 18)
    workbook.close()


def _write_cells(
    sheet: Worksheet, row: int, cells: list[Any], date_format: Format, integer: Format
) -> None:
    """A data row: text as text, dates with the file's format, numbers as integers."""
    for column, value in enumerate(cells):
        if value is None:
            continue
        if isinstance(value, str):
            sheet.write_string(row, column, value)
        elif isinstance(value, dt.datetime):
            sheet.write_datetime(row, column, value, date_format)
        else:
            sheet.write_number(row, column, value, integer)
