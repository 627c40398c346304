"""The whole graph on tiny generated data: report shapes, reconciliation, files, `b2b report`."""

import codecs
import csv
import datetime as dt
from pathlib import Path

import openpyxl
import pytest

from b2b_platform.cli import main
from b2b_platform.lib.report_files.output import EXPORT_FILES, REPORT_ORDER, WORKBOOK_NAME
from b2b_platform_tests.helpers import query, warehouse_env

WINDOW_START, WINDOW_END = dt.datetime(2025, 11, 1), dt.datetime(2026, 11, 26)


def test_monthly_sales_reconciles_with_staging(built_warehouse: Path) -> None:
    # computed independently from staging, not from the fact table the report reads
    expected = query(
        built_warehouse,
        """SELECT date_trunc('month', l.ordered_at)::DATE, count(DISTINCT l.order_id),
                  sum(l.quantity), sum(l.revenue)
           FROM staging.order_lines l JOIN staging.orders o USING (order_id)
           WHERE o.status NOT IN ('cancelled', 'returned')
             AND l.ordered_at >= ? AND l.ordered_at < ?
           GROUP BY 1 ORDER BY 1""",
        [WINDOW_START, WINDOW_END],
    )
    report = query(
        built_warehouse,
        "SELECT month, orders, units, revenue FROM reports.monthly_sales WHERE orders > 0"
        " ORDER BY month",
    )
    assert report == expected and len(report) == 4  # tiny spans four months
    # 12 complete months and the as-of month to date
    assert query(built_warehouse, "SELECT count(*) FROM reports.monthly_sales") == [(13,)]


def test_report_shapes(built_warehouse: Path) -> None:
    devices = query(built_warehouse, "SELECT rank, users FROM reports.top_devices ORDER BY rank")
    assert [r[0] for r in devices] == [1, 2, 3, 4, 5]
    assert [r[1] for r in devices] == sorted((r[1] for r in devices), reverse=True)
    countries = query(
        built_warehouse,
        "SELECT country_rank, country_code, count(*), max(product_rank)"
        " FROM reports.top_products_by_country GROUP BY ALL ORDER BY 1",
    )
    assert [c[0] for c in countries] == [1, 2, 3]
    assert countries[0][1] == "AR"  # the simulator's users mostly live in Argentina
    assert all(c[2] == 5 and c[3] == 5 for c in countries)
    leads = query(
        built_warehouse,
        "SELECT sum(leads), bool_and(companies_converted <= companies_matched)"
        " FROM reports.lead_conversion",
    )
    staged = query(built_warehouse, "SELECT count(*) FROM staging.leads")
    assert leads[0][0] == staged[0][0] and leads[0][1]


def test_lead_conversion_credits_each_order_once_and_never_more_than_sales(
    built_warehouse: Path,
) -> None:
    """Attribution: the campaigns together are credited at most what was sold, and the
    new/existing split adds up."""
    attributed, sales = query(
        built_warehouse,
        "SELECT (SELECT sum(attributed_revenue) FROM reports.lead_conversion),"
        " (SELECT sum(revenue) FROM reports.monthly_sales)",
    )[0]
    assert 0 < attributed <= sales
    rows = query(
        built_warehouse,
        """SELECT bool_and(companies_new + companies_existing = companies_matched),
                  bool_and(converted_new + converted_existing = companies_converted),
                  bool_and(converted_new <= companies_new
                           AND converted_existing <= companies_existing),
                  bool_and(new_conversion_rate IS NOT DISTINCT FROM  -- stored to 4 places
                           CASE WHEN companies_new > 0
                                THEN round(converted_new / companies_new, 4) END)
           FROM reports.lead_conversion""",
    )
    assert rows == [(True, True, True, True)]


def test_report_files(built_warehouse: Path) -> None:
    directory = built_warehouse.parent / "reports"
    for name in REPORT_ORDER:
        assert (directory / f"{name}.csv").read_bytes().startswith(codecs.BOM_UTF8), name
        with open(directory / f"{name}.csv", newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
        count = query(built_warehouse, f"SELECT count(*) FROM reports.{name}")[0][0]
        assert len(rows) == count + 1, name
        columns = query(built_warehouse, f"SELECT column_name FROM (DESCRIBE reports.{name})")
        assert rows[0] == [c[0] for c in columns], name  # no byte-order mark in the header
    book = openpyxl.load_workbook(directory / WORKBOOK_NAME)
    assert book.sheetnames == ["About", *REPORT_ORDER]
    about = {row[0].value: row[1].value for row in book["About"].iter_rows(min_row=3)}
    assert about["As of"] == "25 Nov 2026 (UTC)"
    assert about["Window"] == "01 Nov 2025 to 25 Nov 2026 (12 complete months and Nov 2026 to date)"
    sales = book["monthly_sales"]
    # headings in words, money with its currency
    assert [c.value for c in sales[1]] == [
        "Month", "Orders", "Units", "Revenue (ARS)", "Avg order value (ARS)", "Revenue change",
        "Partial month",
    ]  # fmt: skip
    assert sales["A1"].font.bold and sales.freeze_panes == "A2"
    assert sales["D2"].number_format == '"ARS "#,##0.00'  # money says its currency
    assert sales["A2"].number_format == "mmm yyyy"  # months read as Dec 2025
    # one percentage convention: a fraction with a percent format, stored points divided
    assert sales["F2"].number_format == book["top_devices"]["F2"].number_format == "0.0%"
    change = query(built_warehouse, "SELECT revenue_change_pct FROM reports.monthly_sales"
                   " WHERE revenue_change_pct IS NOT NULL ORDER BY month LIMIT 1")[0][0]  # fmt: skip
    stored = next(c.value for c in sales["F"][1:] if c.value is not None)
    assert stored == pytest.approx(float(change) / 100)
    products = book["top_products_by_country"]
    assert products["F2"].number_format == "0"  # a product id is not a quantity
    assert sales.column_dimensions["D"].width >= len("revenue")
    charts = sales._charts  # openpyxl keeps the charts it read here
    assert len(charts) == 1 and charts[0].tagname == "barChart"
    # the partial months' bars are lighter: before the first loaded month, and to date
    partial = [i for i, (flag,) in enumerate(query(
        built_warehouse, "SELECT is_partial FROM reports.monthly_sales ORDER BY month")) if flag]  # fmt: skip
    lighter = {p.idx for p in charts[0].series[0].dPt if p.spPr.solidFill.srgbClr == "9DC3E6"}
    assert lighter == set(partial) and len(partial) == 10
    # a native chart on every report sheet; top products one per country, by name
    countries = query(built_warehouse, "SELECT count(DISTINCT country_code)"
                      " FROM reports.top_products_by_country")[0][0]  # fmt: skip
    for name in REPORT_ORDER:
        expected = countries if name == "top_products_by_country" else 1
        assert len(book[name]._charts) == expected, name
    # totals where adding up means something, below the data, as values
    total = [c.value for c in sales[15]]
    revenue = query(built_warehouse, "SELECT sum(revenue), sum(orders) FROM reports.monthly_sales")
    assert total[0] == "Total (13 months)" and sales["A15"].font.bold
    assert round(total[3], 2) == float(revenue[0][0]) and total[1] == revenue[0][1]
    assert book["top_devices"].max_row == 6  # shares overlap: no total
    assert not (directory / (WORKBOOK_NAME + ".part")).exists()
    assert not any(c.data_type == "f" for ws in book for row in ws.iter_rows() for c in row)
    # the export was staged next to the report directory and swapped in: nothing left over
    assert sorted(p.name for p in directory.iterdir()) == sorted(EXPORT_FILES)
    assert not [p for p in directory.parent.iterdir() if p.name.startswith(".reports.")]


def test_b2b_report_prints_aligned_tables(
    built_warehouse: Path, tiny_sources, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    data_dir, _ = tiny_sources
    for key, value in warehouse_env(data_dir, built_warehouse).items():
        monkeypatch.setenv(key, value)
    assert main(["report", "top_devices"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        "As of 25 Nov 2026, window 01 Nov 2025 to 25 Nov 2026"
        " (12 complete months and Nov 2026 to date)"
    )
    out = out[out.index("top_devices (5 rows)") :]
    assert out[1].split() == ["rank", "device", "device_type", "users", "requests",
                              "share_of_users"]  # fmt: skip
    assert out[2].strip().startswith("----") and out[3].split()[0] == "1"
    assert out[3].endswith("%")  # shares read as percentages
    assert main(["report"]) == 0
    printed = capsys.readouterr().out
    assert all(f"{name} (" in printed for name in REPORT_ORDER)
    # the tables and notes fit; the lines naming the files are as long as their paths
    fitted = [
        line for line in printed.splitlines() if not line.startswith(("Workbook:", "Charts:"))
    ]
    assert max(len(line) for line in fitted) <= 120
    starts = [printed.index(f"{name} (") for name in REPORT_ORDER] + [len(printed)]
    for i, name in enumerate(REPORT_ORDER):  # a table split in parts shows every column
        columns = query(built_warehouse, f"SELECT column_name FROM (DESCRIBE reports.{name})")
        section = printed[starts[i] : starts[i + 1]]
        heads = [h for line in section.splitlines() for h in line.split()]
        assert all(c in heads for (c,) in columns), name


def test_b2b_report_one_month_and_machine_formats(
    built_warehouse: Path, tiny_sources, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import io
    import json

    data_dir, _ = tiny_sources
    for key, value in warehouse_env(data_dir, built_warehouse).items():
        monkeypatch.setenv(key, value)
    month = query(built_warehouse, "SELECT month, orders, revenue FROM reports.monthly_sales"
                  " WHERE month = DATE '2026-10-01'")[0]  # fmt: skip
    assert main(["report", "monthly_sales", "--month", "2026-10", "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    [row] = printed["reports"]["monthly_sales"]
    assert printed["as_of"] == "2026-11-25" and row["month"] == "2026-10-01"
    assert (row["orders"], row["revenue"]) == (month[1], float(month[2]))  # raw, unrounded
    assert main(["report", "top_devices", "--format", "csv"]) == 0
    devices = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [d["rank"] for d in devices] == ["1", "2", "3", "4", "5"]
    assert 0 < float(devices[0]["share_of_users"]) < 1  # a fraction, as stored
    assert main(["report", "lead_conversion", "--format", "markdown"]) == 0
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    campaigns = query(built_warehouse, "SELECT count(*) FROM reports.lead_conversion")[0][0]
    assert len(table) == 2 + campaigns + 1  # heading, rule, campaigns, total
    # a month is for monthly_sales only, and must be in its window
    assert main(["report", "top_devices", "--month", "2026-10"]) == 2
    assert main(["report", "monthly_sales", "--month", "2020-01"]) == 2
    assert "not in the report window" in capsys.readouterr().err


def test_b2b_quarantine_reaches_every_record_without_sql(
    built_warehouse: Path, tiny_sources, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import json

    data_dir, _ = tiny_sources
    for key, value in warehouse_env(data_dir, built_warehouse).items():
        monkeypatch.setenv(key, value)
    total = query(built_warehouse, "SELECT count(*) FROM quarantine.rejected_records")[0][0]
    assert main(["quarantine", "--limit", str(total), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert len(rows) == total > 50
    assert main(["quarantine"]) == 0  # 50 by default, and says how to see the rest
    out = capsys.readouterr().out
    assert f"50 of {total:,} records shown" in out and len(out.splitlines()) == 3 * 50 + 1
    # the filters pick exactly the records SQL picks
    for source, reason, month, expected in query(
        built_warehouse,
        "SELECT source, reason_code, partition_key[:7], count(*)"
        " FROM quarantine.rejected_records WHERE partition_key IS NOT NULL"
        " GROUP BY ALL ORDER BY 4 DESC, 1, 2, 3 LIMIT 3",
    ):
        assert main(["quarantine", "--source", source, "--reason", reason, "--month", month,
                     "--limit", "1000", "--format", "json"]) == 0  # fmt: skip
        picked = json.loads(capsys.readouterr().out)["rows"]
        assert len(picked) == expected
        assert {(r["source"], r["reason"], r["month"]) for r in picked} == {(source, reason, month)}
    no_month = query(built_warehouse, "SELECT count(*) FROM quarantine.rejected_records"
                     " WHERE partition_key IS NULL")[0][0]  # fmt: skip
    assert main(["quarantine", "--month", "none", "--limit", "1000", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 + no_month and all(line.startswith(",") for line in lines[1:])
    # documents are shown masked, as stored: no 8-digit document number in clear
    assert main(["quarantine", "--reason", "invalid_document", "--format", "json"]) == 0
    documents = json.loads(capsys.readouterr().out)["rows"]
    assert documents and all("*" in json.loads(r["raw_record"])["document_number"]
                             for r in documents)  # fmt: skip
    # a reason that holds nothing lists the ones that do
    assert main(["quarantine", "--reason", "no_such_reason"]) == 0
    assert "the quarantine holds: " in capsys.readouterr().out
    assert main(["quarantine", "--month", "2026-1"]) == 2
    assert "is not a month" in capsys.readouterr().err


def test_a_table_wider_than_the_terminal_is_printed_in_parts_with_its_row_labels() -> None:
    from b2b_platform.lib.report_files.output import Report, text_table

    columns = ["campaign", *(f"measure_{i:02d}_with_a_long_name" for i in range(8))]
    wide = Report("lead_conversion", columns, ["VARCHAR", *["BIGINT"] * 8],
                  [("Expo", *range(8)), ("Webinar", *range(8, 16))])  # fmt: skip
    printed = text_table(wide, width=80)
    parts = printed.split("\n\n")
    assert len(parts) == 4 and all("(part " in p for p in parts)
    assert all(len(line) <= 80 for line in printed.splitlines())
    assert all("Webinar" in p for p in parts)  # each part says which row it is
    assert all(printed.count(c) == 1 for c in columns[1:])  # every column, once
    narrow = text_table(wide, width=1000)
    assert "(part" not in narrow and narrow.count("campaign") == 1


def test_b2b_report_before_any_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("B2B_WAREHOUSE_PATH", str(tmp_path / "none.duckdb"))
    assert main(["report", "monthly_sales"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == f"b2b: error: warehouse {tmp_path / 'none.duckdb'} does not exist: run `b2b run` first"
    )


def test_people_read_months_money_ids_percentages_and_hidden_android_models() -> None:
    import datetime as dt
    from decimal import Decimal

    from b2b_platform.lib.report_files.output import Report, text_table

    sales = Report(
        "monthly_sales", ["month", "revenue", "revenue_change_pct", "product_id", "device",
                          "share_of_users"],
        ["DATE", "DECIMAL(18,2)", "DECIMAL(9,2)", "BIGINT", "VARCHAR", "DOUBLE"],
        [(dt.date(2025, 12, 1), Decimal("1234567.5"), Decimal("12.34"), 1440, "K", 0.1234)],
    )  # fmt: skip
    header, _, row, *_total = text_table(sales).splitlines()
    assert "revenue (ARS)" in header
    assert row.split("  ")[1:] and "Dec 2025" in row and "1,234,567.50" in row
    assert "12.3%" in row and " 1440" in row and "1,440" not in row
    assert "Android (model hidden)" in row


def test_run_lines_say_months_as_people_read_them() -> None:
    from b2b_platform.lib.orchestration.runner import month_span

    assert month_span(["2026-11-01"]) == "Nov 2026"
    assert (
        month_span(["2025-12-01", "2026-01-01", "2026-02-01"]) == "Dec 2025 to Feb 2026 (3 months)"
    )


def test_documented_columns_are_the_columns_the_graph_builds(built_warehouse: Path) -> None:
    from b2b_platform.lib.column_docs import column_docs

    built = query(
        built_warehouse,
        "SELECT table_schema || '/' || table_name, column_name, data_type"
        " FROM information_schema.columns WHERE table_schema IN ('core', 'reports')"
        " ORDER BY table_schema, table_name, ordinal_position",
    )
    tables: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in built:
        tables.setdefault(table, []).append((column, kind))
    documented = {
        table: [(column, kind) for column, (kind, _) in columns.items()]
        for table, columns in column_docs().items()
    }
    assert documented == tables  # same tables, same columns in the same order, same types


def test_the_asset_page_preview_is_short_enough_to_show_in_place(built_warehouse: Path) -> None:
    import duckdb

    from b2b_platform.lib.report_files.output import INLINE_MARKDOWN, read_report, short_preview

    with duckdb.connect(str(built_warehouse), read_only=True) as conn:
        for name in REPORT_ORDER:
            report = read_report(conn, name)
            preview = short_preview(report)
            assert len(preview) < INLINE_MARKDOWN and preview.startswith("| "), name
            assert preview.count("\n") >= min(len(report.rows), 5) + 1, name  # rows shown
