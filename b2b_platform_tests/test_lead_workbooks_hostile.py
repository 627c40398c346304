"""Hostile or unlucky lead workbooks: each fails alone, nothing takes the process down.

Every file is made here (no binaries in the repository): minimal .xlsx zips written
part by part, a zip bomb whose header lies, links, a directory, a name that is not UTF-8.
"""

import io
import os
import struct
import zipfile

import dagster as dg
import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from b2b_platform.lib.workbooks.lead_workbooks import (
    LeadWorkbookError,
    parse_workbook,
    read_lead_workbook,
)
from b2b_platform.lib.workbooks.workbook_reader import WorkbookReader, WorkbookReaders
from b2b_platform.lib.workbooks.workbook_size import WorkbookLimits, check_workbook_size
from b2b_platform_tests.helpers import materialize, query, snapshot
from b2b_platform_tests.test_leads_pipeline import leads_warehouse

LEADS = "tag:source=leads"
SECRET = "s3cr3t-db-password-do-not-load"
NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
    'package/2006/content-types"><Default Extension="rels" ContentType="application/'
    'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType='
    '"application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName='
    '"/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.'
    'spreadsheetml.worksheet+xml"/></Types>'
)
RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.'
    'org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats'
    '.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
WORKBOOK = (
    f'<?xml version="1.0" encoding="UTF-8"?><workbook {NS} xmlns:r="http://schemas.'
    'openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Leads" '
    'sheetId="1" r:id="rId1"/></sheets></workbook>'
)
WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.'
    'org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats'
    '.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
    "</Relationships>"
)
HEADER = ("Lead ID", "Email", "Empresa", "CUIT", "Campaña")


def _cell(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


def sheet_xml(cells: list[tuple[str, str]], dimension: str | None = None) -> bytes:
    """A worksheet with inline-string cells, one <row> per cell (rows may repeat)."""
    rows = "".join(
        f'<row r="{ref.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")}">{_cell(ref, text)}</row>'
        for ref, text in cells
    )
    declared = f'<dimension ref="{dimension}"/>' if dimension else ""
    return f"<worksheet {NS}>{declared}<sheetData>{rows}</sheetData></worksheet>".encode()


def lead_cells(extra: list[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    header = [(f"{col}1", name) for col, name in zip("ABCDE", HEADER, strict=True)]
    row = [("A2", "LD-1"), ("B2", "a@b.com"), ("C2", "Agro SA"), ("D2", "30546689979")]
    return header + row + list(extra)


PARTS = {
    "[Content_Types].xml": CONTENT_TYPES,
    "_rels/.rels": RELS,
    "xl/workbook.xml": WORKBOOK,
    "xl/_rels/workbook.xml.rels": WORKBOOK_RELS,
}


def workbook_bytes(sheet: bytes, parts: dict[str, str | bytes] = PARTS) -> bytes:
    """A minimal .xlsx around `sheet`, written part by part."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
        archive.writestr("xl/worksheets/sheet1.xml", sheet)
    return buffer.getvalue()


def xfd_workbook() -> bytes:
    """The known attack: one cell at XFD1048576 makes calamine ask for 512 GiB and abort."""
    return workbook_bytes(sheet_xml(lead_cells([("XFD1048576", "boom")])))


def zip_bomb(unpacked_mib: int = 300) -> bytes:
    """A workbook whose sheet XML is `unpacked_mib` MiB of spaces, its headers saying 1000 bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, text in PARTS.items():
            archive.writestr(name, text)
        with archive.open("xl/worksheets/sheet1.xml", "w") as sheet:  # written last
            spaces = b" " * (1 << 20)
            for _ in range(unpacked_mib):
                sheet.write(spaces)
    data = bytearray(buffer.getvalue())
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("xl/worksheets/sheet1.xml")
    struct.pack_into("<L", data, info.header_offset + 22, 1000)  # local header: unpacked size
    struct.pack_into("<L", data, data.rindex(b"PK\x01\x02") + 24, 1000)  # central directory
    return bytes(data)


def good_workbook() -> bytes:
    return workbook_bytes(sheet_xml(lead_cells()))


def no_workbook_part() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xl/worksheets/sheet1.xml", sheet_xml(lead_cells()))
    return buffer.getvalue()


def huge_shared_strings() -> bytes:
    strings = f'<sst {NS} count="1" uniqueCount="999999999999"><si><t>x</t></si></sst>'
    return workbook_bytes(sheet_xml(lead_cells()), {**PARTS, "xl/sharedStrings.xml": strings})


def unplaced_cells() -> bytes:
    """Cells without a reference take the next column: 300 of them make a wide sheet."""
    row = "<row>" + '<c t="inlineStr"><is><t>x</t></is></c>' * 300 + "</row>"
    return workbook_bytes(f"<worksheet {NS}><sheetData>{row}</sheetData></worksheet>".encode())


def prefixed_far_cell() -> bytes:
    sheet = (
        '<x:worksheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<x:sheetData><x:row r="1"><x:c r="A1"/><x:c r = \'xfd1048576\'/></x:row>'
        "</x:sheetData></x:worksheet>"
    )
    return workbook_bytes(sheet.encode())


REFUSED = {
    "xfd_one_cell": (xfd_workbook, r"cells up to row 1,048,576 and column XFD .*over the limit of 2,000,000 cells and 200 columns"),
    "declared_huge": (lambda: workbook_bytes(sheet_xml(lead_cells(), "A1:XFD1048576")), r"declares the range A1:XFD1048576 \(1,048,576 rows x 16,384 columns\), over the limit"),
    "zip_bomb": (zip_bomb, r"declares 1,000 bytes but unpacks to more, over the limit of 200 MiB unpacked"),
    "random_bytes": (lambda: bytes(range(256)) * 16, r"cannot open workbook: not a zip archive"),
    "empty": (lambda: b"", r"cannot open workbook: the file is empty"),
    "truncated": (lambda: good_workbook()[:900], r"cannot open workbook"),
    "no_workbook_xml": (no_workbook_part, r"without xl/workbook.xml"),
    "huge_shared_strings": (huge_shared_strings, r"999,999,999,999 shared strings declared, over the limit of 2,000,000"),
    "unplaced_cells": (unplaced_cells, r"300 columns\), over the limit"),
    "prefixed_far_cell": (prefixed_far_cell, r"column XFD"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_hostile_workbook_is_refused_before_calamine_sees_it(tmp_path, case):
    make, message = REFUSED[case]
    path = tmp_path / f"{case}.xlsx"
    path.write_bytes(make())
    with pytest.raises(LeadWorkbookError, match=message) as caught:
        read_lead_workbook(path)  # in this process: a miss here would abort pytest
    assert "\n" not in str(caught.value)


def test_xfd_attack_is_a_five_kilobyte_file():
    assert len(xfd_workbook()) < 5 * 1024


def test_limits_leave_room_for_real_exports(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.append(list(HEADER) + [f"extra {i}" for i in range(150)])
    for row in range(2_000):
        wb.active.append([f"LD-{row}", f"x{row}@y.com", "ACME", "30546689979", "Expo"])
    wb.save(tmp_path / "big_export.xlsx")
    assert read_lead_workbook(tmp_path / "big_export.xlsx").frame.height == 2_000


def test_reader_crash_fails_that_workbook_and_the_next_one_loads():
    # limits lifted so the XFD1048576 cell reaches calamine: it aborts the child process
    unguarded = WorkbookLimits(cells=10**15, columns=10**6)
    with WorkbookReader(limits=unguarded) as reader:
        with pytest.raises(LeadWorkbookError, match=r"the workbook reader crashed \(killed by SIG"):
            reader.read(xfd_workbook())
        assert reader.read(good_workbook()).frame["lead_id"].to_list() == ["LD-1"]


def test_readers_side_by_side_answer_in_order_and_a_crash_fails_alone():
    """Two readers: each workbook's answer comes back in the order given, and the one
    that kills its reader fails alone (the next ones get a new child)."""
    unguarded = WorkbookLimits(cells=10**15, columns=10**6)
    books = [
        workbook_bytes(sheet_xml(lead_cells([("A3", f"LD-{n}"), ("B3", "c@d.com")])))
        for n in range(10, 16)
    ]
    books.insert(2, xfd_workbook())

    def read(data: bytes, reader: WorkbookReader) -> list[str]:
        reader.limits = unguarded  # so the XFD cell reaches calamine and aborts the child
        return reader.read(data).frame["lead_id"].to_list()

    answers: list[object] = []
    with WorkbookReaders(2) as readers:
        for data, answer in readers.each(read, books):
            assert data is books[len(answers)]
            try:
                answers.append(answer.result())
            except LeadWorkbookError as exc:
                answers.append(str(exc))
    assert str(answers.pop(2)).startswith("the workbook reader crashed (killed by SIG")
    assert answers == [["LD-1", f"LD-{n}"] for n in range(10, 16)]


def test_reader_that_takes_too_long_is_stopped_and_replaced():
    with WorkbookReader(timeout_seconds=0.001) as reader:
        with pytest.raises(LeadWorkbookError, match=r"took over 0.001 s and was stopped"):
            reader.read(good_workbook())
        reader.timeout_seconds = 60
        sheet = reader.read(good_workbook())
    assert sheet.frame.equals(parse_workbook(good_workbook()).frame)


def test_reader_refuses_what_the_size_check_refuses():
    with WorkbookReader() as reader, pytest.raises(LeadWorkbookError, match="column XFD"):
        reader.read(xfd_workbook())


# ---------------------------------------------------------------- properties


def _read(data: bytes) -> None:
    """What read_lead_workbook does after reading the file, in this process: anything
    calamine aborts on that the size check misses would end the test run."""
    try:
        check_workbook_size(data)
        parse_workbook(data)
    except LeadWorkbookError as exc:
        assert str(exc) and "\n" not in str(exc)


PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GOOD = good_workbook()
XML_PIECES = st.sampled_from([
    "<row>", '<row r="7">', '<row r="1048576">', "</row>", "<c>", '<c r="A1">', '<c r="XFD1">',
    '<c r="ZZ99">', '<c r="XFD1048576">', "<x:c r='b2'>", "</c>", "<c/>", '<c t="s">',
    '<c t="inlineStr">', "<is><t>Email</t></is>", "<v>0</v>", "<v>99999999999</v>", "<v>x</v>",
    '<dimension ref="A1:C3"/>', '<dimension ref="A1:XFD1048576"/>', "<sheetData>",
    "</sheetData>", "<!--", "-->", "<![CDATA[", "]]>", "&amp;", "&#0;", "\x00", "é", " ",
])  # fmt: skip


@PROPERTY
@given(st.binary(max_size=4096))
def test_any_bytes_only_raise_lead_workbook_error(data):
    _read(data)


@PROPERTY
@given(st.binary(max_size=2048))
def test_any_sheet_bytes_in_a_valid_container_only_raise_lead_workbook_error(sheet):
    _read(workbook_bytes(sheet))


@PROPERTY
@given(st.lists(XML_PIECES, max_size=60))
def test_any_sheet_markup_only_raises_lead_workbook_error(pieces):
    sheet = f"<worksheet {NS}><sheetData>{''.join(pieces)}</sheetData></worksheet>"
    _read(workbook_bytes(sheet.encode()))


@PROPERTY
@given(
    st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)), min_size=1, max_size=8)
)
def test_mutated_workbook_bytes_only_raise_lead_workbook_error(mutations):
    data = bytearray(GOOD)
    for position, value in mutations:
        data[position] = value
    _read(bytes(data))


@PROPERTY
@given(st.integers(0, len(GOOD)))
def test_truncated_workbook_bytes_only_raise_lead_workbook_error(length):
    _read(GOOD[:length])


# ---------------------------------------------------------------- through the assets


def test_hostile_entries_fail_alone_while_good_workbooks_load(monkeypatch, tmp_path, tiny_sources):
    data_dir, _ = tiny_sources
    warehouse, leads, summary = leads_warehouse(monkeypatch, tmp_path, tiny_sources)
    good = next(leads.glob("*.xlsx")).read_bytes()
    for name, make in [
        ("xfd_one_cell", xfd_workbook),
        ("declared_huge", REFUSED["declared_huge"][0]),
        ("zip_bomb", zip_bomb),
        ("random_bytes", lambda: os.urandom(4096)),
        ("empty", lambda: b""),
        ("truncated", lambda: good[: len(good) // 2]),
    ]:
        (leads / f"{name}.xlsx").write_bytes(make())  # fmt: skip
    (leads / "x.xlsx").symlink_to("/nonexistent")
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.xlsx"  # a readable lead workbook: followed, it would load
    secret.write_bytes(
        workbook_bytes(sheet_xml(lead_cells([("A3", "LD-2"), ("B3", f"{SECRET}@x.com")])))
    )
    (leads / "linked.xlsx").symlink_to(secret)
    (leads / "d.xlsx").mkdir()
    handle = os.open(os.fsencode(leads) + b"/caf\xe9.xlsx", os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(handle, good)
    os.close(handle)

    instance = dg.DagsterInstance.ephemeral()
    for _ in range(2):  # the second run meets the same entries with a manifest
        outcome = materialize(LEADS, instance)
        assert outcome.ok, outcome.failed_runs
        assert not outcome.failed_checks, outcome.failed_checks
        manifest = {
            os.path.basename(path): (status, error)
            for path, status, error in query(
                warehouse, "SELECT path, status, error FROM etl.file_manifest"
            )
        }
        assert sorted(n for n, (s, _) in manifest.items() if s == "loaded") == sorted(
            p.name for p in (data_dir / "leads").glob("*.xlsx")
        )
        failed = {n: e for n, (s, e) in manifest.items() if s == "failed"}
        skipped = {n: e for n, (s, e) in manifest.items() if s == "skipped"}
        assert set(failed) == {"xfd_one_cell.xlsx", "declared_huge.xlsx", "zip_bomb.xlsx",
                               "random_bytes.xlsx", "empty.xlsx", "truncated.xlsx"}  # fmt: skip
        assert all(error and "\n" not in error for error in failed.values())
        assert "column XFD" in failed["xfd_one_cell.xlsx"]
        assert "200 MiB" in failed["zip_bomb.xlsx"]
        assert skipped == {
            "x.xlsx": skipped["x.xlsx"], "linked.xlsx": skipped["linked.xlsx"],
            "d.xlsx": "a directory, not a file", "caf\ufffd.xlsx": "file name is not valid UTF-8: rename it",
        }  # fmt: skip
        assert "symbolic link" in skipped["x.xlsx"] and "symbolic link" in skipped["linked.xlsx"]
        rows = query(warehouse, "SELECT count(*) FROM raw.marketing_leads")[0][0]
        assert rows == summary.leads.leads
    assert SECRET not in repr(snapshot(warehouse))
    metadata = instance.get_latest_materialization_event(
        dg.AssetKey(["raw", "marketing_leads"])
    ).asset_materialization.metadata
    # markdown lists, each item escaped as text: read without the escapes
    skipped_md, failed_md = (
        metadata[k].value.replace("\\", "") for k in ("files_skipped", "files_failed")
    )
    assert "- d.xlsx: a directory, not a file" in skipped_md
    assert "zip_bomb.xlsx: too large" in failed_md
