"""Headless Chromium (Debian's chromium and chromium-driver, installed by
`make browser-deps`) driven through Selenium, for tests and screenshots of pages as a
reader sees them."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# Without the background-networking flags Chromium keeps trying to reach Google's
# services, which this machine's closed network refuses.
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars",
)  # fmt: skip


def require_chromium() -> None:
    """Skip without Chromium, except under CI, where its absence is a failure."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    if missing:
        message = f"{', '.join(missing)} missing: run `make browser-deps` (Debian chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@contextlib.contextmanager
def headless_chromium(width: int = 1280, height: int = 1000) -> Iterator[webdriver.Chrome]:
    """A fresh headless Chromium with its console log readable through get_log."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        # An explicit driver: Selenium Manager would try to download one.
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            yield driver
        finally:
            driver.quit()


def console_errors(driver: webdriver.Chrome) -> list[str]:
    """What the page logged as errors: script errors, failed or refused requests."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def emulate_screen(driver: webdriver.Chrome, width: int, height: int = 900) -> None:
    """A phone's screen: Chromium's windows are at least 500 pixels wide, so a narrower
    one is emulated (DevTools' device metrics), as its device toolbar does."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True},
    )
