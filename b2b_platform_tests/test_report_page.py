"""b2b_reports.html as a reader sees it: rendered by headless Chromium, every chart drawn,
no console error, no request leaving the page, and data that cannot become markup."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.support.ui import WebDriverWait

from b2b_platform.lib.report_files.notes import ReportContext, general_notes, report_notes
from b2b_platform.lib.report_files.output import HTML_NAME, REPORT_ORDER, Report
from b2b_platform.lib.report_files.page import report_page
from b2b_platform.lib.warehouse.run_log import HeldSlice
from b2b_platform_tests.browser import (
    console_errors,
    emulate_screen,
    headless_chromium,
    require_chromium,
)
from b2b_platform_tests.helpers import query

# Per chart: whether Plotly drew it, its bars (a bar is a path in a g.point, zero-height
# bars included), its lines and its panels; and the rows of each table.
PAGE_STATE = """
const charts = {};
for (const div of document.querySelectorAll('.js-plotly-plot')) {
  charts[div.id] = {
    drawn: Boolean(div._fullLayout) && div.querySelector('svg.main-svg') !== null,
    bars: div.querySelectorAll('g.trace.bars g.point path').length,
    lines: div.querySelectorAll('g.trace.scatter path.js-line').length,
    panels: div.querySelectorAll('g.cartesianlayer > g.subplot').length,
  };
}
const tables = {};
for (const section of document.querySelectorAll('section')) {
  tables[section.id] = section.querySelectorAll('table tbody tr').length;
}
return {charts, tables, title: document.title};
"""


def _load(driver: webdriver.Chrome, page: Path) -> dict:
    driver.get(page.as_uri())
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )
    return driver.execute_script(PAGE_STATE)


def test_report_page_draws_every_chart_in_a_real_browser(built_warehouse: Path) -> None:
    require_chromium()
    page = built_warehouse.parent / "reports" / HTML_NAME
    rows = {n: query(built_warehouse, f"SELECT count(*) FROM reports.{n}")[0][0]
            for n in REPORT_ORDER}  # fmt: skip
    rates = query(built_warehouse,
                  "SELECT count(new_conversion_rate) FROM reports.lead_conversion")[0][0]  # fmt: skip
    with headless_chromium() as driver:
        state = _load(driver, page)
        errors = console_errors(driver)
    assert errors == []
    charts = state["charts"]
    assert sorted(charts) == sorted(f"chart-{n}" for n in [*REPORT_ORDER, "data_quality"])
    assert all(c["drawn"] for c in charts.values()), charts
    # the 12 complete months before the as-of month, and the as-of month to date
    assert charts["chart-monthly_sales"]["bars"] == rows["monthly_sales"] == 13
    assert charts["chart-monthly_sales"]["lines"] == 1  # the month-on-month change
    assert charts["chart-top_devices"]["bars"] == rows["top_devices"] == 5
    assert charts["chart-top_products_by_country"]["bars"] == rows["top_products_by_country"]
    assert charts["chart-top_products_by_country"]["panels"] == 3  # one per top country
    assert charts["chart-lead_conversion"]["bars"] == rates > 0
    quality_rows = state["tables"].pop("data_quality")  # its two tables: accounting, rejects
    assert state["tables"] == rows
    accounted = query(built_warehouse, "SELECT count(DISTINCT (source, entity))"
                      " FROM etl.record_accounting")[0][0]  # fmt: skip
    assert quality_rows > accounted
    assert "as of" in state["title"]


def _sample(name: str, product: str = "Yerba") -> list[Report]:
    sales = Report(
        "monthly_sales",
        ["month", "orders", "units", "revenue", "avg_order_value", "revenue_change_pct",
         "is_partial"],
        ["DATE", "BIGINT", "BIGINT", "DECIMAL(18,2)", "DECIMAL(18,2)", "DECIMAL(12,2)",
         "BOOLEAN"],
        [(dt.date(2026, 10, 1), 2, 5, Decimal("100.00"), Decimal("50.00"), None, False),
         (dt.date(2026, 11, 1), 1, 1, Decimal("80.00"), Decimal("80.00"), Decimal("-20"), True)],
    )  # fmt: skip
    products = Report(
        "top_products_by_country",
        ["country_rank", "country_code", "country_name", "login_users", "product_rank",
         "product_id", "sku", "product_name", "units", "orders", "revenue"],
        ["BIGINT", "VARCHAR", "VARCHAR", "BIGINT", "BIGINT", "BIGINT", "VARCHAR", "VARCHAR",
         "BIGINT", "BIGINT", "DECIMAL(18,2)"],
        [(1, "AR", "Argentina", 3, 1, 7, "SKU-7", product, 4, 1, Decimal("10.00"))],
    )  # fmt: skip
    return [sales, products] if name == "both" else [sales]


LOADED = dt.datetime(2026, 11, 25, 7)
CONTEXT = ReportContext(dt.date(2026, 11, 25), dt.date(2025, 11, 1),
                        [("platform database", LOADED, LOADED), ("web logs", LOADED, LOADED),
                         ("lead workbooks", LOADED, LOADED)],
                        dt.datetime(2026, 11, 25, 8))  # fmt: skip


def test_text_in_the_data_cannot_become_markup_or_script(tmp_path: Path) -> None:
    require_chromium()
    hostile = '</script><script>window.owned=1</script><img src=x onerror="window.owned=2">'
    page = tmp_path / HTML_NAME
    page.write_text(report_page(_sample("both", hostile), CONTEXT), encoding="utf-8")
    with headless_chromium() as driver:
        state = _load(driver, page)
        owned = driver.execute_script("return window.owned === undefined ? null : window.owned")
        cells = driver.execute_script(
            "return [...document.querySelectorAll('td')].map(td => td.textContent)"
        )
        errors = console_errors(driver)
    assert owned is None and hostile in cells  # shown as text, never run
    assert all(c["drawn"] for c in state["charts"].values()) and errors == []


def test_the_browser_check_sees_a_request_leaving_the_page(tmp_path: Path) -> None:
    """The test of the test: a page that reaches for the network logs an error (the
    Content-Security-Policy refuses it), so 'no console errors' means something."""
    require_chromium()
    page = tmp_path / HTML_NAME
    text = report_page(_sample("sales"), CONTEXT)
    page.write_text(text.replace("</body>", '<img src="http://127.0.0.1:9/x.png"></body>'))
    with headless_chromium() as driver:
        _load(driver, page)
        errors = console_errors(driver)
    assert any("Content Security Policy" in e or "x.png" in e for e in errors), errors


def test_notes_explain_what_would_surprise_a_reader() -> None:
    sales = _sample("sales")[0]
    (note,) = report_notes(sales, CONTEXT)
    assert note.startswith("Nov 2026 is the month to date (01 Nov to 25 Nov 2026)")
    assert "compares it with 01 Oct to 25 Oct 2026, like for like" in note
    quiet = Report(sales.name, sales.columns, sales.types,
                   [(dt.date(2026, 9, 1), 0, 0, Decimal("0"), Decimal("0"), None, False),
                    *sales.rows])  # fmt: skip
    assert (
        report_notes(quiet, CONTEXT)[-1] == "No valid order in Sep 2026: those months show zeros."
    )
    devices = Report(
        "top_devices", ["rank", "device", "users", "share_of_users"],
        ["BIGINT", "VARCHAR", "BIGINT", "DECIMAL(6,4)"],
        [(1, "Windows desktop", 7, Decimal("0.7")), (2, "K", 4, Decimal("0.4"))],
    )  # fmt: skip
    notes = " ".join(report_notes(devices, CONTEXT))
    assert "add up to 110.0%" in notes and "Android (model hidden)" in notes
    one = Report("top_devices", devices.columns, devices.types, [(1, "Mac", 5, Decimal("0.5"))])
    assert report_notes(one, CONTEXT) == []


def test_notes_name_held_months_and_sources_with_nothing_loaded() -> None:
    held = HeldSlice(
        "staging/order_lines,staging/orders", "2026-11-01",
        "AuditFailed: blocking check failed in Nov 2026: staging/order_lines:order_lines"
        "_reject_rate (11.4% of 2,879 order items rejected > 10.0% (at least 10.3% at 95%"
        " confidence)); the slice was not published, the previous one stays",
        dt.datetime(2026, 11, 25, 7),
    )  # fmt: skip
    context = ReportContext(
        CONTEXT.as_of, CONTEXT.window_start,
        [("platform database", LOADED, LOADED), ("web logs", None, None),
         ("lead workbooks", LOADED, None)],
        CONTEXT.generated_at, held=[held],
    )  # fmt: skip
    said = general_notes(context)
    assert said[0].startswith("Nov 2026 of the platform database held back by a quality check")
    assert "order_lines_reject_rate (11.4% of 2,879 order items rejected > 10.0%" in said[0]
    assert said[1:] == [
        "Nothing from the web logs yet (it has not been loaded): reports built on it are empty.",
        "Nothing from the lead workbooks yet (it was loaded but held nothing): reports built on"
        " it are empty.",
    ]
    sales = report_notes(_sample("sales")[0], context)
    assert sales[0].startswith("Held: Nov 2026 of the platform database did not pass")
    devices = report_notes(Report("top_devices", ["rank"], ["BIGINT"], []), context)
    assert devices == [
        "Nothing from the web logs has been loaded yet, so this report has no data from it."
    ]
    text = report_page(_sample("sales"), context)
    assert '<section id="notes"><h2>Before you read</h2>' in text


def test_page_states_as_of_window_currency_and_freshness() -> None:
    text = report_page(_sample("sales"), CONTEXT)
    assert "25 Nov 2026" in text
    assert "01 Nov 2025 to 25 Nov 2026 (12 complete months and Nov 2026 to date)" in text
    assert "ARS" in text and "web logs: loaded 25 Nov 2026 07:00" in text
    assert "http://" not in text.split("<script>")[0]  # nothing fetched from the head


PHONE_STATE = """
const legends = [...document.querySelectorAll('.js-plotly-plot')].map(div => {
  const plot = div.querySelector('.cartesianlayer, .bglayer');
  const legend = div.querySelector('g.legend');
  if (!legend || !plot) return null;
  return {plotBottom: plot.getBoundingClientRect().bottom,
          legendTop: legend.getBoundingClientRect().top, id: div.id};
}).filter(Boolean);
const boxes = [...document.querySelectorAll('.table-box')].map(box => ({
  width: box.getBoundingClientRect().width, scrolls: box.scrollWidth > box.clientWidth}));
return {width: window.innerWidth, pageWidth: document.documentElement.scrollWidth, legends,
        boxes};
"""


def test_the_page_reads_on_a_phone(built_warehouse: Path, tmp_path: Path) -> None:
    """At 420 px: nothing widens the page, legends sit under their charts, and a table
    wider than the screen scrolls inside its box."""
    require_chromium()
    page = built_warehouse.parent / "reports" / HTML_NAME
    with headless_chromium() as driver:
        emulate_screen(driver, 420)
        driver.get(page.as_uri())
        WebDriverWait(driver, 30).until(
            lambda d: d.execute_script("return document.readyState") == "complete"
        )
        state = driver.execute_script(PHONE_STATE)
        driver.save_screenshot(str(tmp_path / "phone.png"))
        errors = console_errors(driver)
    assert errors == []
    assert state["width"] == 420 and state["pageWidth"] <= 420, state
    assert state["legends"], "no chart with a legend"
    for legend in state["legends"]:
        assert legend["legendTop"] >= legend["plotBottom"] - 1, legend
    assert all(box["width"] <= 420 for box in state["boxes"])
    assert any(box["scrolls"] for box in state["boxes"])  # the wide ones scroll inside


def test_the_page_has_a_data_quality_section(built_warehouse: Path) -> None:
    text = (built_warehouse.parent / "reports" / HTML_NAME).read_text(encoding="utf-8")
    assert '<section id="data_quality"><h2>Data quality: records held back</h2>' in text
    assert 'id="chart-data_quality"' in text and "b2b quarantine" in text
