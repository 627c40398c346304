"""`make screenshots`: the two pictures in the README, made the way a reader sees them.

1. `b2b generate --scale small` and `b2b run` into a scratch directory (SHOTS_DIR, default
   a temp dir), as-of 2026-11-25 so the pictures do not change with the calendar;
2. headless Chromium opens the exported b2b_reports.html and saves the top of it;
3. the Dagster webserver starts on that run's instance and Chromium saves the asset page
   of reports/monthly_sales (preview in place, columns described).

Output: docs/screenshots/html_report.png and docs/screenshots/ui_report_asset.png.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from b2b_platform_tests.browser import headless_chromium
from b2b_platform_tests.dagster_dev import DEV_CONFIG, dagster_dev_process, wait_for

ROOT = Path(__file__).parents[1]
OUT = ROOT / "docs" / "screenshots"
AS_OF = "2026-11-25"


def _b2b(*args: str, env: dict[str, str]) -> None:
    b2b = Path(sys.executable).with_name("b2b")
    subprocess.run([str(b2b), *args], env=env, check=True, stdout=subprocess.DEVNULL)


def build(work: Path) -> dict[str, str]:
    """Generated sources and a built warehouse in `work`; the environment that reads them."""
    data, home = work / "data", work / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(DEV_CONFIG.read_text())
    env = {
        **os.environ,
        "B2B_SOURCE_DB_URL": f"sqlite:///{data / 'source' / 'b2b_platform.db'}",
        "B2B_LOG_DIR": str(data / "weblogs"),
        "B2B_LEADS_DIR": str(data / "leads"),
        "B2B_WAREHOUSE_PATH": str(work / "warehouse" / "b2b.duckdb"),
        "B2B_REPORT_DIR": str(work / "reports"),
        "B2B_AS_OF": AS_OF,
        "B2B_AUTOMATION": "off",
        "DAGSTER_HOME": str(home),
    }
    env.pop("B2B_FIRST_MONTH", None)  # small spans the warehouse's default 13 months
    if not (data / "leads").is_dir():  # SHOTS_DIR of an earlier run: its data is kept
        _b2b("generate", "--scale", "small", "--as-of", AS_OF, "--out", str(data), env=env)
    _b2b("run", env=env)  # nothing to do when the warehouse is current
    return env


def shoot_report_page(page: Path, target: Path) -> None:
    with headless_chromium(width=1280, height=1500) as driver:
        driver.get(page.as_uri())
        WebDriverWait(driver, 30).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg")) >= 4
        )
        time.sleep(1)  # let the last chart finish its layout
        driver.save_screenshot(str(target))


def shoot_asset_page(env: dict[str, str], work: Path, target: Path) -> None:
    with dagster_dev_process(work, env) as (graphql, _process):
        wait_for("the webserver", lambda: _answers(graphql.port), timeout=180)
        with headless_chromium(width=1400, height=2300) as driver:
            driver.get(f"http://127.0.0.1:{graphql.port}/assets/reports/monthly_sales")
            WebDriverWait(driver, 90).until(lambda d: d.find_elements(By.TAG_NAME, "button"))
            time.sleep(2)
            for skip in driver.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):
                skip.click()  # the first-visit community dialog
            try:
                WebDriverWait(driver, 90).until(
                    lambda d: "Dec 2025" in d.find_element(By.TAG_NAME, "body").text
                )
            except Exception:
                driver.save_screenshot(str(target.with_suffix(".failed.png")))
                raise
            time.sleep(2)
            driver.save_screenshot(str(target))


def _answers(port: int) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5):
            return True
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    given = os.environ.get("SHOTS_DIR")
    with tempfile.TemporaryDirectory(prefix="b2b-shots-") as scratch:
        work = Path(given) if given else Path(scratch)
        env = build(work)
        shoot_report_page(work / "reports" / "b2b_reports.html", OUT / "html_report.png")
        shoot_asset_page(env, work, OUT / "ui_report_asset.png")
    print(f"wrote {OUT / 'html_report.png'} and {OUT / 'ui_report_asset.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
