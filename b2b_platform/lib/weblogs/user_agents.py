"""User-agent strings to device, OS, browser and bot flag, once per distinct string."""

from __future__ import annotations

import re
from collections.abc import Iterable

import polars as pl

# Tools and monitors that ua-parser does not call spiders but no person is behind.
AUTOMATION = re.compile(
    r"bot\b|crawl|spider|slurp|curl/|wget/|python-requests|python-urllib|go-http-client|"
    r"java/|libwww-perl|okhttp|httpclient|headlesschrome|phantomjs|uptime|monitor|scrapy|"
    r"facebookexternalhit|amazon cloudfront|zgrab|masscan|nmap",
    re.IGNORECASE,
)

# The parser cuts user agents to this many characters: real browsers send under 300, and
# ua-parser's regexes scan the whole string, so its time grows with the length (~11 µs
# a character for junk: 6 ms at 512, 88 ms at 8,192). The contract promises the cut.
MAX_USER_AGENT_CHARS = 512

USER_AGENT_SCHEMA: dict[str, pl.DataType] = {
    "user_agent": pl.String(),
    "device_label": pl.String(),
    "device_type": pl.String(),
    "device_family": pl.String(),
    "device_brand": pl.String(),
    "device_model": pl.String(),
    "os_family": pl.String(),
    "os_version": pl.String(),
    "browser_family": pl.String(),
    "browser_version": pl.String(),
    "is_bot": pl.Boolean(),
}


def device_label(family: str, os_family: str, is_pc: bool) -> str:
    """The report's device label: the device family unless 'Other'; then '<OS> desktop' for a PC, else unknown."""
    if family and family != "Other":
        return family
    return f"{os_family} desktop" if is_pc else "Unknown device"


def describe_user_agent(text: str) -> dict[str, object]:
    import user_agents  # compiles ua-parser's regexes: only when a new agent needs it

    # raw.weblogs rows loaded before the parser cut agents can be longer: parse the cut
    # text, but keep the whole string as the key the staging view joins on
    parsed = text[:MAX_USER_AGENT_CHARS]
    ua = user_agents.parse(parsed)
    is_bot = bool(ua.is_bot) or ua.device.family == "Spider" or bool(AUTOMATION.search(parsed))
    if is_bot:
        device_type = "other"
    elif ua.is_tablet:
        device_type = "tablet"
    elif ua.is_mobile:
        device_type = "mobile"
    elif ua.is_pc:
        device_type = "desktop"
    else:
        device_type = "other"
    return {
        "user_agent": text,
        "device_label": device_label(ua.device.family, ua.os.family, ua.is_pc),
        "device_type": device_type,
        "device_family": ua.device.family,
        "device_brand": ua.device.brand,
        "device_model": ua.device.model,
        "os_family": ua.os.family,
        "os_version": ua.os.version_string or None,
        "browser_family": ua.browser.family,
        "browser_version": ua.browser.version_string or None,
        "is_bot": is_bot,
    }


def describe_user_agents(values: Iterable[str]) -> pl.DataFrame:
    """One row per distinct user-agent string (the caller passes only unseen ones)."""
    rows = [describe_user_agent(v) for v in sorted(set(values))]
    return pl.DataFrame(rows, schema=USER_AGENT_SCHEMA)
