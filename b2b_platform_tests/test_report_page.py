"""b2b_reports.html as a reader sees it: rendered by headless Chromium, every chart drawn,
no console error, no request leaving the page, and data that cannot become markup."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.support.ui import WebDriverWait

from b2b_platform.lib.report_html import PageContext, report_notes, report_page
from b2b_platform.lib.report_output import HTML_NAME, REPORT_ORDER, Report
from b2b_platform_tests.browser import console_errors, headless_chromium, require_chromium
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
                  "SELECT count(conversion_rate) FROM reports.lead_conversion")[0][0]  # fmt: skip
    with headless_chromium() as driver:
        state = _load(driver, page)
        errors = console_errors(driver)
    assert errors == []
    charts = state["charts"]
    assert sorted(charts) == sorted(f"chart-{n}" for n in REPORT_ORDER)
    assert all(c["drawn"] for c in charts.values()), charts
    assert charts["chart-monthly_sales"]["bars"] == rows["monthly_sales"] == 12
    assert charts["chart-monthly_sales"]["lines"] == 1  # the month-on-month change
    assert charts["chart-top_devices"]["bars"] == rows["top_devices"] == 5
    assert charts["chart-top_products_by_country"]["bars"] == rows["top_products_by_country"]
    assert charts["chart-top_products_by_country"]["panels"] == 3  # one per top country
    assert charts["chart-lead_conversion"]["bars"] == rates > 0
    assert state["tables"] == rows
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


CONTEXT = PageContext(dt.date(2026, 11, 25), dt.date(2025, 12, 1),
                      [("web logs", None, None)], dt.datetime(2026, 11, 25, 8))  # fmt: skip


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
    assert any("Nov 2026 is partial" in n for n in report_notes(sales, CONTEXT))
    devices = Report(
        "top_devices", ["rank", "device", "users", "share_of_users"],
        ["BIGINT", "VARCHAR", "BIGINT", "DECIMAL(6,4)"],
        [(1, "Windows desktop", 7, Decimal("0.7")), (2, "K", 4, Decimal("0.4"))],
    )  # fmt: skip
    notes = " ".join(report_notes(devices, CONTEXT))
    assert "add up to 110.0%" in notes and "Android (model hidden)" in notes
    one = Report("top_devices", devices.columns, devices.types, [(1, "Mac", 5, Decimal("0.5"))])
    assert report_notes(one, CONTEXT) == []


def test_page_states_as_of_window_currency_and_freshness() -> None:
    text = report_page(_sample("sales"), CONTEXT)
    assert "25 Nov 2026" in text and "01 Dec 2025 to 25 Nov 2026" in text
    assert "ARS" in text and "web logs: loaded never" in text
    assert "http://" not in text.split("<script>")[0]  # nothing fetched from the head
