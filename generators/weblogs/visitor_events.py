"""Events of traffic without an account: anonymous visitors (and scanners among them),
crawlers from their real networks, and the load balancer's health checks."""

from __future__ import annotations

import numpy as np

from generators.weblogs.calendar import FLAT_HOURS, PUBLIC_HOURS, Calendar
from generators.weblogs.events import Events, expand_sessions, make_events, no_events, trim_sessions
from generators.weblogs.pages import (
    ANY_PROBE,
    ANY_SEARCH,
    ANY_STATIC_FILE,
    ENTRY_REFERER_CODES,
    ENTRY_REFERERS,
    GET,
    PAGE_INDEX,
    PROBE_PAGES,
    PRODUCT_PAGE,
    REFERER_HOME,
    REFERER_NONE,
    SEARCH_PAGES,
    STATIC_PAGES,
    Products,
    page_responses,
    pick_within,
)
from generators.weblogs.population import (
    ADDRESSES_PER_CRAWLER,
    HEALTH_CHECK_ADDRESSES,
    AddressPools,
)
from generators.weblogs.tables import StringTables
from generators.weblogs.user_agents import (
    ANONYMOUS_DEVICE_KINDS,
    CRAWLERS,
    FIRST_CRAWLER_AGENT,
    FIRST_HEALTH_CHECK_AGENT,
    FIRST_SCANNER_AGENT,
    HEALTH_CHECK_AGENTS,
    SCANNER_AGENTS,
    pick_browser_agents,
)

_HOME, _LOGIN = PAGE_INDEX["/"], PAGE_INDEX["/login"]
_ANONYMOUS_ENTRY_PAGES = np.array([_HOME, PRODUCT_PAGE, _LOGIN, ANY_SEARCH])
_ANONYMOUS_LATER_PAGES = np.array(
    [ANY_STATIC_FILE, PRODUCT_PAGE, _HOME, _LOGIN, ANY_PROBE, ANY_SEARCH]
)
_CRAWLER_ENTRY_PAGES = np.array([PAGE_INDEX["/robots.txt"], PRODUCT_PAGE])
_CRAWLER_LATER_PAGES = np.array(
    [PRODUCT_PAGE, _HOME, PAGE_INDEX["/sitemap.xml"], PAGE_INDEX["/catalogo-2019.pdf"]]
)


def _anonymous_pages(
    rng: np.random.Generator, position: np.ndarray, scanner: np.ndarray
) -> np.ndarray:
    """The page of each visit's events: scanners only probe."""
    lines = len(position)
    entry = rng.choice(_ANONYMOUS_ENTRY_PAGES, lines, p=[0.45, 0.40, 0.10, 0.05])
    later = rng.choice(_ANONYMOUS_LATER_PAGES, lines, p=[0.40, 0.35, 0.05, 0.10, 0.04, 0.06])
    page = np.where(position == 0, entry, later)
    page = np.where(scanner, ANY_PROBE, page)
    page = pick_within(rng, page, ANY_SEARCH, SEARCH_PAGES)
    page = pick_within(rng, page, ANY_STATIC_FILE, STATIC_PAGES)
    return pick_within(rng, page, ANY_PROBE, PROBE_PAGES)


def _anonymous_referers(
    rng: np.random.Generator, position: np.ndarray, scanner: np.ndarray
) -> np.ndarray:
    """Search engines and social sites for a visit's first page, the home page after it."""
    weights = np.array([weight for _, weight in ENTRY_REFERERS], dtype=float)
    entry = ENTRY_REFERER_CODES[rng.choice(len(weights), len(position), p=weights / weights.sum())]
    return np.where(scanner, REFERER_NONE, np.where(position == 0, entry, REFERER_HOME))


def anonymous_events(
    rng: np.random.Generator, calendar: Calendar, month: int, lines: int, tables: StringTables,
    pools: AddressPools, products: Products,
) -> Events:  # fmt: skip
    """Visitors without an account: home page, products, static files, the login form, probes."""
    if lines <= 0:
        return no_events()
    counts = trim_sessions(rng.geometric(0.45, lines), lines)  # pages per visit, mean ~2.2
    n = len(counts)
    by_day = calendar.day_weights((0.7, 0.6), 0.3)
    start_at = calendar.sample_times(rng, n, by_day, PUBLIC_HOURS, calendar.month_days(month))
    scanner = rng.random(n) < 0.05
    agent = np.where(
        scanner,
        FIRST_SCANNER_AGENT + rng.integers(0, len(SCANNER_AGENTS), n),
        pick_browser_agents(rng, rng.choice(3, n, p=ANONYMOUS_DEVICE_KINDS)),
    )
    host = tables.first_anonymous_host + pools.sample_anonymous(rng, n)
    protocol = (rng.random(n) < 0.5).astype(np.int64)
    gaps = 1 + rng.exponential(20, lines).astype(np.int64)
    session, position, offset = expand_sessions(counts, gaps)
    page = _anonymous_pages(rng, position, scanner[session])
    path, status, size = page_responses(rng, page, products)
    # Browsers revalidate cached static files.
    cached = np.isin(page, STATIC_PAGES) & (rng.random(lines) < 0.3)
    referer = _anonymous_referers(rng, position, scanner[session])
    return make_events(
        lines, True, time=start_at[session] + offset, host=host[session], user=0, method=GET,
        path=path, protocol=protocol[session], status=np.where(cached, 304, status),
        size=np.where(cached, 0, size), referer=referer, user_agent=agent[session],
    )  # fmt: skip


def crawler_events(
    rng: np.random.Generator, calendar: Calendar, month: int, lines: int, tables: StringTables,
    products: Products,
) -> Events:  # fmt: skip
    """Crawlers from their real networks: robots.txt, the sitemap and product pages."""
    if lines <= 0:
        return no_events()
    counts = trim_sessions(rng.geometric(0.18, lines), lines)  # pages per crawl burst, mean ~5.6
    n = len(counts)
    by_day = calendar.day_weights((1, 1), 0.1)
    start_at = calendar.sample_times(rng, n, by_day, FLAT_HOURS, calendar.month_days(month))
    weights = np.array([crawler.weight for crawler in CRAWLERS], dtype=float)
    crawler = rng.choice(len(CRAWLERS), n, p=weights / weights.sum())
    host = (
        tables.first_crawler_host
        + crawler * ADDRESSES_PER_CRAWLER
        + rng.integers(0, ADDRESSES_PER_CRAWLER, n)
    )
    session, position, offset = expand_sessions(
        counts, 1 + rng.exponential(8, lines).astype(np.int64)
    )
    entry = rng.choice(_CRAWLER_ENTRY_PAGES, lines, p=[0.3, 0.7])
    later = rng.choice(_CRAWLER_LATER_PAGES, lines, p=[0.86, 0.05, 0.05, 0.04])
    path, status, size = page_responses(rng, np.where(position == 0, entry, later), products)
    return make_events(
        lines, True, time=start_at[session] + offset, host=host[session], user=0, method=GET,
        path=path, protocol=0, status=status, size=size, referer=REFERER_NONE,
        user_agent=FIRST_CRAWLER_AGENT + crawler[session],
    )  # fmt: skip


def health_check_events(
    rng: np.random.Generator, calendar: Calendar, month: int, lines: int, tables: StringTables
) -> Events:
    """The load balancer's health probes from the private network."""
    start, end = calendar.month_bounds[month : month + 2]
    return make_events(
        lines, False, time=rng.integers(start, end, lines),
        host=tables.first_health_check_host + rng.integers(0, len(HEALTH_CHECK_ADDRESSES), lines),
        user=0, method=GET,
        path=PAGE_INDEX["/health"], protocol=0, status=200, size=15, referer=REFERER_NONE,
        user_agent=FIRST_HEALTH_CHECK_AGENT + rng.integers(0, len(HEALTH_CHECK_AGENTS), lines),
    )  # fmt: skip
