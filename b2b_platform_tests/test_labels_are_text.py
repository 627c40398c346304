"""Every string from the data is text in the medium that shows it: a product name,
device, campaign or file name never becomes a link or a style in a chart of the web
page, a link or an image in the markdown of the Dagster asset page, or an escape
sequence in the terminal. The payloads are those of the security review."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest
from markdown_it import MarkdownIt
from selenium.webdriver.support.ui import WebDriverWait

from b2b_platform.cli import main
from b2b_platform.lib.literal_text import (
    WORD_JOINER,
    markdown_text,
    plotly_text,
    terminal_lines,
    terminal_text,
)
from b2b_platform.lib.report_files.output import (
    HTML_NAME,
    Report,
    markdown_table,
    report_as,
    short_preview,
    text_table,
)
from b2b_platform.lib.report_files.page import quality_section, report_page
from b2b_platform.lib.warehouse.schema import ensure_warehouse_schema
from b2b_platform_tests.browser import console_errors, headless_chromium, require_chromium
from b2b_platform_tests.test_report_page import CONTEXT

LINK = '<a href="https://evil.example/p4">CLICK p4</a>'
BIG = "<b style='font-size:80px'>BIG</b>"
MARKDOWN_LINK = "[Click](https://evil.example/p8) ![t](https://evil.example/t.png)"
RAW_HTML = '<img src="https://evil.example/h.png"> <b>bold</b> &lt;kept&gt;'
AUTOLINKS = "<https://evil.example/auto> https://evil.example/bare www.evil.example me@evil.example"
EMPHASIS = "*star* _under_ `code` ~~gone~~ # heading | pipe \\ slash"
ESCAPES = "Evil\x1b[2J\x1b]0;pwned\x07 \x9b31m red\x1b[0m \u202eexe.csv\u202c \u2066x\u2069"
TERMINAL_PAYLOADS = [ESCAPES, "line\nbreak\rback\ttab", "nul\x00 del\x7f c1\x85\x9f"]
# what no terminal line may hold: controls but the line break, C1, direction overrides
UNPRINTABLE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# remark-gfm (the Dagster UI's markdown) links bare URLs and e-mail addresses it finds in
# the rendered text, after backslash escapes are read: its two patterns, as it has them
GFM_URL = re.compile(r"(https?://|www(?=\.))([-.\w]+)", re.ASCII | re.IGNORECASE)
GFM_EMAIL = re.compile(r"([-.\w+]+)@([-\w]+(?:\.[-\w]+)+)", re.ASCII)
# the payload's ESC as the terminal shows it (in markdown its backslash is escaped too)
VISIBLE_ESCAPE = re.compile(r"Evil\\{1,2}x1b")


def _unescaped(syntax: str, markdown: str) -> bool:
    """Whether `syntax` occurs in markdown other than escaped (after an odd number of
    backslashes, the first character is text)."""
    return re.search(r"(?<!\\)(?:\\\\)*" + re.escape(syntax), markdown) is not None


# ---- the functions ------------------------------------------------------------------


def test_plotly_text_turns_tags_entities_and_tex_into_entities() -> None:
    assert plotly_text(LINK) == '&lt;a href="https://evil.example/p4"&gt;CLICK p4&lt;/a&gt;'
    assert plotly_text(BIG) == "&lt;b style='font-size:80px'&gt;BIG&lt;/b&gt;"
    assert plotly_text("&lt;br&gt; &amp;") == "&amp;lt;br&amp;gt; &amp;amp;"  # shown as typed
    assert plotly_text("$x^2$") == "&#36;x^2&#36;"  # never TeX
    assert plotly_text("Yerba Mate 1 kg") == "Yerba Mate 1 kg"


@pytest.mark.parametrize("payload", [MARKDOWN_LINK, RAW_HTML, AUTOLINKS, EMPHASIS, ESCAPES])
def test_markdown_text_renders_as_the_text_itself(payload: str) -> None:
    escaped = markdown_text(payload)
    for syntax in ("](", "![", "<http", "<img", "<b>", "~~", "\n"):
        assert not _unescaped(syntax, escaped), syntax
    page = _Page(MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(escaped))
    assert page.tags == {"p"}  # no link, image, HTML, emphasis, code or heading
    text = page.text.replace(WORD_JOINER, "")
    assert text == terminal_text(payload)  # reads as written (controls made visible)
    assert not GFM_URL.search(page.text) and not GFM_EMAIL.search(page.text)


def test_metadata_lists_show_file_names_and_notes_as_written() -> None:
    """File names, errors and report notes reach the asset page as bulleted markdown."""
    from b2b_platform.lib.metadata import markdown_list

    listed = markdown_list([MARKDOWN_LINK, RAW_HTML]).value
    page = _Page(MarkdownIt("commonmark").render(listed))
    assert page.tags == {"ul", "li"}  # the bullets only: no link, image or HTML
    assert markdown_list([]).value == "none"


def test_markdown_text_leaves_plain_text_and_numbers_readable() -> None:
    assert markdown_text("Yerba Mate 1 kg") == "Yerba Mate 1 kg"
    assert markdown_text("1,234.50") == "1,234\\.50"
    assert markdown_text("12.5%") == "12\\.5%"


@pytest.mark.parametrize("payload", TERMINAL_PAYLOADS)
def test_terminal_text_shows_control_characters_as_escapes(payload: str) -> None:
    shown = terminal_text(payload)
    assert not UNPRINTABLE.search(shown) and shown.isprintable()


def test_terminal_text_names_what_it_replaced() -> None:
    assert terminal_text(ESCAPES) == (
        "Evil\\x1b[2J\\x1b]0;pwned\\x07 \\x9b31m red\\x1b[0m \\u202eexe.csv\\u202c \\u2066x\\u2069"
    )
    assert terminal_text("a\nb\tc\rd") == "a\\nb\\tc\\rd"
    assert terminal_text("Café Ñandú 1,5 kg") == "Café Ñandú 1,5 kg"  # letters stay letters
    assert terminal_lines("first\x1b[2J\r\nsecond\rthird", "  ") == (
        "first\\x1b[2J\n  second\\rthird"
    )


# ---- the web page -------------------------------------------------------------------

_PRODUCTS_COLUMNS = (
    ["country_rank", "country_code", "country_name", "login_users", "product_rank",
     "product_id", "sku", "product_name", "units", "orders", "revenue"],
    ["BIGINT", "VARCHAR", "VARCHAR", "BIGINT", "BIGINT", "BIGINT", "VARCHAR", "VARCHAR",
     "BIGINT", "BIGINT", "DECIMAL(18,2)"],
)  # fmt: skip


def _hostile_reports() -> list[Report]:
    """The four charted reports, each with the review's payloads where data goes."""
    devices = Report(
        "top_devices", ["rank", "device", "users", "share_of_users"],
        ["BIGINT", "VARCHAR", "BIGINT", "DECIMAL(6,4)"],
        [(1, LINK, 7, Decimal("0.7")), (2, BIG, 4, Decimal("0.4"))],
    )  # fmt: skip
    products = Report(
        "top_products_by_country", *_PRODUCTS_COLUMNS,
        [(1, "AR", BIG, 3, 1, 7, "SKU-7", LINK, 4, 1, Decimal("10.00")),
         (1, "AR", BIG, 3, 2, 8, "SKU-8", MARKDOWN_LINK, 2, 1, Decimal("5.00"))],
    )  # fmt: skip
    leads = Report(
        "lead_conversion", ["campaign", "channel", "leads", "new_conversion_rate"],
        ["VARCHAR", "VARCHAR", "BIGINT", "DOUBLE"],
        [(LINK, BIG, 3, 0.5), ("Expo", "email", 2, 0.25), (BIG, LINK, 4, 0.75)],
    )  # fmt: skip
    sales = Report(
        "monthly_sales", ["month", "orders", "units", "revenue", "revenue_change_pct",
                          "is_partial"],
        ["DATE", "BIGINT", "BIGINT", "DECIMAL(18,2)", "DECIMAL(12,2)", "BOOLEAN"],
        [(dt.date(2026, 10, 1), 2, 5, Decimal("100.00"), None, False)],
    )  # fmt: skip
    return [sales, devices, products, leads]


def _hostile_quality() -> str:
    rejects = Report(
        "rejects_by_month", ["month", "source", "entity", "reason", "action", "records"],
        ["VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "BIGINT"],
        [(LINK, BIG, "orders", "bad", "rejected", 3), ("2026-10", LINK, "orders", "bad",
                                                       "rejected", 2)],
    )  # fmt: skip
    accounting = Report("accounting", ["source", "records_read"], ["VARCHAR", "BIGINT"],
                        [(LINK, 5)])  # fmt: skip
    return quality_section(rejects, accounting)


# In every chart: links and data-sized styles anywhere in its SVG, and the text of its
# ticks, legend entries and annotations (subplot titles).
CHART_TEXT = """
const plots = [...document.querySelectorAll('.js-plotly-plot')];
const inSvg = sel => plots.flatMap(div => [...div.querySelectorAll('svg ' + sel)]);
const visible = el => el.getBBox().width > 0;
return {
  drawn: plots.map(div => Boolean(div._fullLayout) && div.querySelector('svg.main-svg') !== null),
  links: inSvg('a').map(a => a.getAttribute('href') || a.getAttribute('xlink:href') || ''),
  styled: inSvg('[style]').filter(e => /font-size:\\s*80px/.test(e.getAttribute('style')))
                          .map(e => e.outerHTML),
  ticks: inSvg('g.xtick text, g.ytick text').filter(visible).map(t => t.textContent),
  legend: inSvg('g.legend text.legendtext').filter(visible).map(t => t.textContent),
  annotations: inSvg('g.annotation text').filter(visible).map(t => t.textContent),
};
"""
# The hover label of a chart's first bar of its first trace, as a reader pointing at it.
HOVER = """
const div = document.getElementById(arguments[0]);
Plotly.Fx.hover(div, [{curveNumber: 0, pointNumber: 0}]);
const layer = div.querySelector('g.hoverlayer');
return {text: [...layer.querySelectorAll('text')].map(t => t.textContent),
        links: layer.querySelectorAll('a').length,
        styled: [...layer.querySelectorAll('[style]')]
                  .filter(e => /font-size:\\s*80px/.test(e.getAttribute('style'))).length};
"""


def test_chart_labels_from_data_are_text_in_a_real_browser(tmp_path: Path) -> None:
    require_chromium()
    page = tmp_path / HTML_NAME
    page.write_text(report_page(_hostile_reports(), CONTEXT, _hostile_quality()),
                    encoding="utf-8")  # fmt: skip
    with headless_chromium() as driver:
        driver.get(page.as_uri())
        WebDriverWait(driver, 30).until(
            lambda d: d.execute_script("return document.readyState") == "complete"
        )
        charts = driver.execute_script(CHART_TEXT)
        hovers = {
            chart: driver.execute_script(HOVER, chart)
            for chart in ("chart-top_devices", "chart-top_products_by_country",
                          "chart-lead_conversion", "chart-data_quality")
        }  # fmt: skip
        errors = console_errors(driver)
    assert len(charts["drawn"]) == 5 and all(charts["drawn"]) and errors == []
    assert charts["links"] == []  # no <a> from data in any chart, to evil.example or not
    assert charts["styled"] == []  # no 80px label
    # the names read as written: in the ticks, the legend and the panel titles
    ticks = charts["ticks"]
    # devices, products, leads, and the data-quality chart's month (a category axis:
    # the month is a label as written, never parsed as a date)
    assert ticks.count(LINK) == 4 and ticks.count(BIG) == 2, ticks
    assert MARKDOWN_LINK in ticks and any(t.startswith("<a href=") for t in ticks)
    assert sorted(charts["legend"]) == sorted([
        "Revenue (millions of ARS)", "Change vs previous month (%)",  # monthly sales
        LINK, BIG, "email",  # lead conversion's channels
        LINK, BIG,  # the sources of the records held back
    ]), charts["legend"]  # fmt: skip
    assert BIG in charts["annotations"]  # the country's panel title
    for chart, hover in hovers.items():
        assert hover["links"] == 0 and hover["styled"] == 0, (chart, hover)
        assert any(LINK in t or BIG in t for t in hover["text"]), (chart, hover)
    # the first channel (LINK) and its campaign (BIG): the bar's label, then its series
    assert hovers["chart-lead_conversion"]["text"] == [LINK, f"{BIG}: 75.0%"]


# ---- the markdown of the asset page -------------------------------------------------


class _Page(HTMLParser):
    """The tags of rendered markdown, the text of its table cells, and all its text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.cells: list[str] = []
        self.parts: list[str] = []
        self._cell: list[str] | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag in ("td", "th"):
            self._cell = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
        if self._cell is not None:
            self._cell.append(data)

    @property
    def text(self) -> str:
        return "".join(self.parts).strip()


MARKDOWN_PAYLOADS = [LINK, BIG, MARKDOWN_LINK, RAW_HTML, AUTOLINKS, EMPHASIS, ESCAPES]


def test_markdown_previews_show_names_from_data_as_text() -> None:
    """The preview and all_rows of the asset page, rendered by a CommonMark renderer with
    tables: no link, no image, no HTML; each cell reads as the data (controls visible);
    and nothing GitHub-flavoured markdown would turn into a link."""
    rows = [(1, "AR", i + 1, name, 10 - i) for i, name in enumerate(MARKDOWN_PAYLOADS)]
    report = Report(
        "top_products_by_country",
        ["country_rank", "country_code", "product_rank", "product_name", "units"],
        ["BIGINT", "VARCHAR", "BIGINT", "VARCHAR", "BIGINT"], rows,
    )  # fmt: skip
    # a heading built from data, as the quarantine's tables by reason could have
    headed = Report("by_reason", [MARKDOWN_LINK, "records"], ["VARCHAR", "BIGINT"],
                    [(AUTOLINKS, 3), (ESCAPES, 1)])  # fmt: skip
    preview = short_preview(report)
    shown = len([line for line in preview.splitlines() if line.startswith("|")]) - 2
    assert shown >= 2  # the preview shows rows, as many as fit
    renderer = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    for markdown, names in (
        (markdown_table(report), MARKDOWN_PAYLOADS),
        (preview, MARKDOWN_PAYLOADS[:shown]),
        (report_as(report, "markdown"), MARKDOWN_PAYLOADS),
        (markdown_table(headed, totals=False), [MARKDOWN_LINK, AUTOLINKS, ESCAPES]),
    ):
        for syntax in ("](", "![", "<http", "<img", "<a ", "<b"):
            assert not _unescaped(syntax, markdown), (syntax, markdown)
        assert not UNPRINTABLE.search(markdown)
        page = _Page(renderer.render(markdown))
        assert page.tags <= {"table", "thead", "tbody", "tr", "th", "td", "p"}, page.tags
        cells = [c.replace(WORD_JOINER, "") for c in page.cells]
        assert all(terminal_text(name) in cells for name in names), cells
        assert not GFM_URL.search(page.text) and not GFM_EMAIL.search(page.text)
        lines = [line for line in markdown.splitlines() if line.startswith("|")]
        assert len({line.count("|") - line.count("\\|") for line in lines}) == 1  # one grid


# ---- the terminal -------------------------------------------------------------------


def test_terminal_tables_print_no_control_character() -> None:
    report = Report(
        "products", ["product_rank", "product_name", "units"],
        ["BIGINT", "VARCHAR", "BIGINT"],
        [(i + 1, name, 3) for i, name in enumerate(TERMINAL_PAYLOADS)],
    )  # fmt: skip
    for printed in (text_table(report), report_as(report, "table"),
                    report_as(report, "markdown")):  # fmt: skip
        assert "\x1b" not in printed and not UNPRINTABLE.search(printed), printed
        assert VISIBLE_ESCAPE.search(printed) and "\\u202eexe" in printed
        assert len(printed.splitlines()) == 2 + len(TERMINAL_PAYLOADS)  # no line from data
    # programs read the raw values
    rows = json.loads(report_as(report, "json"))["rows"]
    assert [r["product_name"] for r in rows] == TERMINAL_PAYLOADS
    assert "\x1b" in report_as(report, "csv")


def _hostile_warehouse(path: Path) -> None:
    """A warehouse whose run log, file manifest, quarantine and a report hold names with
    escape sequences, as a file or product could be named."""
    at = dt.datetime(2026, 11, 25, 7)
    with duckdb.connect(str(path)) as conn:
        ensure_warehouse_schema(conn)
        conn.execute(
            "INSERT INTO etl.run_log (run_id, asset_key, partition_key, started_at, broken_at,"
            " status, error) VALUES ('r1', ?, '2026-11-01', ?, ?, 'failed', ?)",
            [f"raw/{ESCAPES}", at, at, f"could not read {ESCAPES}\nsecond line {ESCAPES}"],
        )
        conn.execute(
            "INSERT INTO etl.file_manifest (source, path, status, error, rows_read)"
            " VALUES ('weblogs', ?, 'failed', ?, 0), ('weblogs', ?, 'skipped', ?, 0)",
            [f"/logs/{ESCAPES}.log", f"bad gzip {ESCAPES}", f"/logs/{ESCAPES}", ESCAPES],
        )
        conn.execute(
            "INSERT INTO quarantine.rejected_records (source, entity, record_key, reason_code,"
            " action, detail, raw_record, partition_key) VALUES"
            " ('weblogs', 'requests', ?, 'bad_line', 'rejected', ?, ?, '2026-11-01')",
            [f"/logs/{ESCAPES}.log:3", f"detail {ESCAPES}", json.dumps({"ua": ESCAPES})],
        )
        conn.execute(
            "INSERT INTO etl.record_accounting VALUES (?, 'requests', '2026-11-01', 1, 0, 1,"
            " 0, 0, 'r1', ?)",
            [ESCAPES, at],
        )
        columns = ", ".join(f"{c} {t}" for c, t in zip(*_PRODUCTS_COLUMNS, strict=True))
        conn.execute(f"CREATE TABLE reports.top_products_by_country ({columns})")
        conn.execute(
            "INSERT INTO reports.top_products_by_country VALUES"
            " (1, 'AR', ?, 3, 1, 7, 'SKU-7', ?, 4, 1, 10.00)",
            [ESCAPES, ESCAPES],
        )


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["quarantine"],
        ["quarantine", "--format", "markdown"],
        ["report", "top_products_by_country"],
        ["report", "top_products_by_country", "--format", "markdown"],
    ],
)
def test_b2b_commands_print_no_control_character(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    warehouse = tmp_path / "hostile.duckdb"
    _hostile_warehouse(warehouse)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "b2b-pending-run-failures.jsonl").write_text(
        json.dumps({"run_id": "r2-abcdefgh", "partition_key": "2026-11-01",
                    "status": "failed", "failed_at": "2026-11-25T07:00:00",
                    "error": f"stopped {ESCAPES}"}) + "\n", encoding="utf-8",
    )  # fmt: skip
    monkeypatch.delenv("B2B_WAREHOUSE", raising=False)
    monkeypatch.setenv("B2B_WAREHOUSE_PATH", str(warehouse))
    monkeypatch.setenv("B2B_REPORT_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert main(command) == 0
    printed = capsys.readouterr().out
    assert "\x1b" not in printed and not UNPRINTABLE.search(printed), printed
    assert VISIBLE_ESCAPE.search(printed)  # the name is there, its escapes visible
