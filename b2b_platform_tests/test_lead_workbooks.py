"""Reading messy lead workbooks: header position, languages, dates, corrupt files, links,
and the isolated reader. Hostile workbooks: test_lead_workbooks_hostile.py."""

import datetime as dt

import openpyxl
import pytest

from b2b_platform.lib.workbooks.lead_workbooks import (
    FOLDED_SYNONYMS,
    LeadWorkbookError,
    fold_header,
    read_lead_workbook,
    read_workbook_file,
)
from b2b_platform.lib.workbooks.workbook_reader import WorkbookReader
from generators.leads import HEADER_ALIASES


def _workbook(path, rows):
    wb = openpyxl.Workbook()
    for row in rows:
        wb.active.append(row)
    wb.save(path)
    return path


def test_header_on_row_three_with_spanish_names_and_mixed_dates(tmp_path):
    path = _workbook(tmp_path / "leads.xlsx", [
        ["Exportación campaña Expo Agro"],
        [],
        ["ID Lead", "Fecha de captura", "Razón Social", "C.U.I.T.", "Correo Electrónico ",
         "TELÉFONO", "Campaña", "Canal", "Notas"],
        ["LD-1", dt.datetime(2026, 3, 4, 10, 30), "Agro SA", 30546689979, "A@B.COM", None,
         "Expo Agro", "Feria", "llamar"],
        [],
        ["LD-2", "05/03/2026", "Otra SRL", "30-54668997-9", None, "+54 11 5555-1234",
         "Expo Agro", "Feria", None],
    ])  # fmt: skip
    sheet = read_lead_workbook(path)
    assert sheet.header_row == 3
    assert sheet.ignored_columns == ("Notas",)
    frame = sheet.frame
    assert frame.height == 2  # the blank row is not a record
    assert frame["sheet_row"].to_list() == [4, 6]
    assert frame["cuit"].to_list() == ["30546689979", "30-54668997-9"]  # number read as digits
    assert frame["captured_at"].to_list() == ["2026-03-04 10:30:00", "05/03/2026"]
    assert frame["email"].to_list() == ["A@B.COM", None]
    assert frame["country"].null_count() == 2  # missing column -> NULL


def test_english_headers_in_any_order(tmp_path):
    path = _workbook(tmp_path / "en.xlsx", [
        ["Email", "Company Name", "Lead ID", "Captured At", "CUIT"],
        ["x@y.com", "ACME", "LD-9", "01/02/2026", "20-12345678-6"],
    ])  # fmt: skip
    frame = read_lead_workbook(path).frame
    assert frame.row(0, named=True)["lead_id"] == "LD-9"
    assert frame.row(0, named=True)["company_name"] == "ACME"


def test_corrupt_file_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(LeadWorkbookError, match="cannot open workbook"):
        read_lead_workbook(path)


def test_sheet_without_a_lead_header_is_rejected(tmp_path):
    path = _workbook(tmp_path / "other.xlsx", [["Producto", "Precio"], ["Yerba", 10]])
    with pytest.raises(LeadWorkbookError, match="no header row"):
        read_lead_workbook(path)


def test_every_generator_header_alias_is_understood():
    for field, languages in HEADER_ALIASES.items():
        for aliases in languages.values():
            for alias in aliases:
                assert FOLDED_SYNONYMS.get(fold_header(alias)) == field, alias


def test_header_on_a_later_sheet_is_found(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.append(["Notas de la campaña"])
    leads = wb.create_sheet("Leads")
    leads.append(["Lead ID", "Email", "Empresa", "CUIT"])
    leads.append(["LD-1", "a@b.com", "Agro SA", "30546689979"])
    wb.save(tmp_path / "two_sheets.xlsx")
    sheet = read_lead_workbook(tmp_path / "two_sheets.xlsx")
    assert sheet.sheet_name == "Leads" and sheet.frame["lead_id"].to_list() == ["LD-1"]


def test_a_link_is_never_read(tmp_path):
    target = _workbook(tmp_path / "real.xlsx", [["Lead ID", "Email", "Empresa", "CUIT"]])
    (tmp_path / "link.xlsx").symlink_to(target)
    with pytest.raises(LeadWorkbookError, match="cannot read the file"):
        read_lead_workbook(tmp_path / "link.xlsx")


def test_isolated_reader_gives_what_the_in_process_reader_gives(tmp_path):
    path = _workbook(tmp_path / "leads.xlsx", [
        ["Lead ID", "Email", "Empresa", "CUIT", "Notas"],
        ["LD-1", "a@b.com", "Agro SA", 30546689979, "x"],
    ])  # fmt: skip
    with WorkbookReader() as reader:
        isolated = reader.read(read_workbook_file(path))
    local = read_lead_workbook(path)
    assert isolated.frame.equals(local.frame)
    assert (isolated.sheet_name, isolated.header_row, isolated.ignored_columns) == (
        local.sheet_name, local.header_row, local.ignored_columns,
    )  # fmt: skip
