"""Web server access logs that tell the same story as the platform database.

One file per server-local day in Apache/NGINX combined format. Users of client companies log
in, browse real products and check out at the ``ordered_at`` of their orders; others log in
and browse without buying; anonymous visitors, crawlers and internal health checks fill the
rest. Client IPs are real allocations of each user's country as ``iptocc`` sees them, so the
warehouse's login countries are the generator's countries.

Everything is vectorized: sessions and events are numpy arrays of integer codes into small
string tables, and a day of lines is one polars expression. Events are made one server-local
calendar month at a time and turned into text a day at a time, so memory stays bounded at
the ``xlarge`` scale (~8M lines a month); events of a session that crosses a month boundary
are carried into the next month.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import iptocc
import numpy as np
import polars as pl
import pyarrow as pa
from isal import isal_zlib

from generators.config import GenerationConfig

# The platform runs in Argentina: no DST since 2009, so a fixed offset is exact.
SERVER_UTC_OFFSET_S = -3 * 3600
SERVER_TZ = "-0300"
SITE = "https://www.example.com"
VHOST = "www.example.com:443"
GZIP_AFTER_DAYS = 7  # files of days older than this are compressed, like logrotate's delaycompress
LOGROTATE_EVERY = 10  # every 10th compressed day uses logrotate's dateext name instead

# Every kind of odd line the log contract lists, injected in turn. Most are valid real-world lines a robust parser
# loads; REJECTED_KINDS can only be quarantined.
MALFORMED_KINDS: tuple[str, ...] = (
    "ipv6_client",
    "escaped_quote",
    "request_dash",
    "request_empty",
    "size_dash",
    "hostname_client",
    "extra_field",
    "vhost_prefix",
    "truncated",
    "blank",
    "non_utf8",
    "invalid_timestamp",
)
REJECTED_KINDS: frozenset[str] = frozenset({"truncated", "blank", "invalid_timestamp"})

# Private-use characters stand in for raw non-UTF-8 bytes inside polars strings; they are
# swapped for the bytes when a file is written.
_NON_UTF8_PLACEHOLDERS: tuple[tuple[str, bytes], ...] = (
    ("\ue000", b"\xf3"),  # latin-1 "ó" typed into a search box
    ("\ue001", b"\xff\xfe"),  # a UTF-16 BOM pasted into a user agent
)

# Our file names, and the temporary names they are written under.
_FILE_PATTERN = re.compile(
    r"^\.?(access-\d{4}-\d{2}-\d{2}\.log(\.gz)?|access\.log-\d{8}(\.gz)?)(\.tmp)?$"
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_SALT = 0x3EB1065  # keeps these random streams apart from the other generators' for one seed

# Random stream ids: each part of the plan draws from its own stream, so changing one part
# does not reshuffle the others.
_S_USERS, _S_IPS, _S_ORDERS, _S_BROWSE, _S_PRODUCTS, _S_POOLS, _S_CHUNK = range(1, 8)

# --------------------------------------------------------------------------------------------
# User agents: (kind, weight within kind, string). Real strings of current browsers.
# --------------------------------------------------------------------------------------------
_DESKTOP, _PHONE, _TABLET = 0, 1, 2
_KHTML = "AppleWebKit/537.36 (KHTML, like Gecko)"
_SAFARI_WK = "AppleWebKit/605.1.15 (KHTML, like Gecko)"


def _chrome(platform: str, version: str, mobile: bool = False) -> str:
    tail = "Mobile Safari/537.36" if mobile else "Safari/537.36"
    return f"Mozilla/5.0 ({platform}) {_KHTML} Chrome/{version} {tail}"


def _android(version: int, model: str, chrome: str, mobile: bool = True) -> str:
    return _chrome(f"Linux; Android {version}; {model}", chrome, mobile)


def _apple(device: str, ios: str, version: str, browser: str = "Version") -> str:
    os_name = "iPhone OS" if device == "iPhone" else "OS"
    return (
        f"Mozilla/5.0 ({device}; CPU {os_name} {ios} like Mac OS X) {_SAFARI_WK} "
        f"{browser}/{version} Mobile/15E148 Safari/604.1"
    )


def _firefox(platform: str, version: int) -> str:
    return f"Mozilla/5.0 ({platform}; rv:{version}.0) Gecko/20100101 Firefox/{version}.0"


_WIN_NT = "Windows NT 10.0; Win64; x64"
_MAC_OS = "Macintosh; Intel Mac OS X 10_15_7"
_BROWSER_UAS: tuple[tuple[int, float, str], ...] = (
    (_DESKTOP, 20, _chrome(_WIN_NT, "131.0.0.0")),
    (_DESKTOP, 12, _chrome(_WIN_NT, "133.0.0.0")),
    (_DESKTOP, 8, _chrome(_WIN_NT, "137.0.0.0")),
    (_DESKTOP, 8, _chrome(_WIN_NT, "131.0.0.0") + " Edg/131.0.0.0"),
    (_DESKTOP, 5, _chrome(_WIN_NT, "136.0.0.0") + " Edg/136.0.0.0"),
    (_DESKTOP, 5, _firefox(_WIN_NT, 133)),
    (_DESKTOP, 3, _firefox(_WIN_NT, 139)),
    (_DESKTOP, 1, _chrome(_WIN_NT, "130.0.0.0") + " OPR/115.0.0.0"),
    (_DESKTOP, 6, _chrome(_MAC_OS, "131.0.0.0")),
    (_DESKTOP, 5, f"Mozilla/5.0 ({_MAC_OS}) {_SAFARI_WK} Version/18.1 Safari/605.1.15"),
    (_DESKTOP, 2, f"Mozilla/5.0 ({_MAC_OS}) {_SAFARI_WK} Version/17.6 Safari/605.1.15"),
    (_DESKTOP, 2, _firefox("Macintosh; Intel Mac OS X 10.15", 133)),
    (_DESKTOP, 2, _chrome("X11; Linux x86_64", "131.0.0.0")),
    (_DESKTOP, 1.5, _firefox("X11; Ubuntu; Linux x86_64", 133)),
    (_DESKTOP, 1, _chrome("X11; CrOS x86_64 14541.0.0", "131.0.0.0")),
    # Chrome's reduced UA hides the Android model ("Android 10; K") on most phones today.
    (_PHONE, 18, _android(10, "K", "131.0.0.0")),
    (_PHONE, 8, _android(10, "K", "137.0.0.0")),
    (_PHONE, 5, _android(14, "SM-S911B", "131.0.6778.81")),
    (_PHONE, 6, _android(14, "SM-A546B", "131.0.6778.81")),
    (_PHONE, 6, _android(14, "SM-A155M", "130.0.6723.102")),
    (_PHONE, 2, _android(13, "SM-G991B", "129.0.6668.100")),
    (_PHONE, 2, _android(14, "Pixel 8", "131.0.6778.81")),
    (_PHONE, 1.5, _android(14, "Pixel 7a", "131.0.6778.81")),
    (_PHONE, 4, _android(13, "moto g54 5G", "130.0.0.0")),
    (_PHONE, 3, _android(13, "moto e13", "130.0.0.0")),
    (_PHONE, 2, _android(14, "motorola edge 40", "131.0.0.0")),
    (_PHONE, 3, _android(13, "Redmi Note 12", "130.0.0.0")),
    (_PHONE, 2, _android(13, "23053RN02L", "130.0.0.0")),
    (_PHONE, 10, _apple("iPhone", "18_1", "18.1")),
    (_PHONE, 5, _apple("iPhone", "17_6", "17.6")),
    (_PHONE, 2, _apple("iPhone", "18_1", "131.0.6778.73", browser="CriOS")),
    (
        _PHONE,
        2,
        f"Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S911B) {_KHTML} SamsungBrowser/26.0 "
        "Chrome/122.0.0.0 Mobile Safari/537.36",
    ),
    (_PHONE, 1, "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0"),
    (_TABLET, 5, _apple("iPad", "17_6", "17.6")),
    (_TABLET, 4, _apple("iPad", "18_1", "18.1")),
    (_TABLET, 3, _android(10, "K", "131.0.0.0", mobile=False)),  # no "Mobile": a tablet
    (_TABLET, 2, _android(14, "SM-X710", "131.0.0.0", mobile=False)),
    (_TABLET, 2, _android(14, "SM-X205", "130.0.0.0", mobile=False)),
    (_TABLET, 1, _android(12, "Lenovo TB-X606F", "129.0.0.0", mobile=False)),
)
# Device slots of a user: the first is usually the office desktop, the second a phone.
_SLOT_KIND_P = ((0.80, 0.16, 0.04), (0.20, 0.68, 0.12), (0.25, 0.35, 0.40))
_ANON_KIND_P = (0.45, 0.48, 0.07)  # anonymous visitors are more often on phones
_SCANNER_UAS = ("python-requests/2.32.3", "Go-http-client/1.1", "Mozilla/5.0 zgrab/0.x")
_HEALTH_UAS = ("curl/8.5.0", "curl/7.81.0")
_HEALTH_IPS = ("10.0.1.15", "10.0.2.23", "192.168.10.5")

# Crawlers: (weight, user agent, real source prefixes, reverse-DNS domain or "").
_GOOGLEBOT_PREFIXES = ("66.249.64.0/19",)
_BOTS: tuple[tuple[float, str, tuple[str, ...], str], ...] = (
    (22, "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
     _GOOGLEBOT_PREFIXES, "googlebot.com"),
    (14, "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, "
         "like Gecko) Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
         "+http://www.google.com/bot.html)", _GOOGLEBOT_PREFIXES, "googlebot.com"),
    (15, "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
         "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
     ("157.55.39.0/24", "207.46.13.0/24", "40.77.167.0/24"), "search.msn.com"),
    (10, "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
     ("54.36.148.0/23",), "a.ahrefs.com"),
    (8, "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
     ("85.208.96.0/22",), "bot.semrush.com"),
    (5, "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
     ("5.255.231.0/24", "213.180.203.0/24"), "spider.yandex.com"),
    (8, "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; GPTBot/1.2; "
        "+https://openai.com/gptbot", ("20.171.206.0/24",), ""),
    (5, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
     ("17.241.75.0/24",), "applebot.apple.com"),
    (4, "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
     ("69.171.224.0/19", "173.252.64.0/19"), "fbsv.net"),
    (3, "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
     ("20.191.45.0/24",), ""),
    (3, "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
     ("220.181.108.0/24", "116.179.32.0/24"), "crawl.baidu.com"),
)  # fmt: skip

# --------------------------------------------------------------------------------------------
# Pages that are not product pages: (path, status, typical bytes, dynamic size?).
# --------------------------------------------------------------------------------------------
_PAGES: tuple[tuple[str, int, int, bool], ...] = (
    ("/", 200, 31_840, True),
    ("/login", 200, 5_312, True),
    ("/orders", 200, 15_200, True),
    ("/account", 200, 9_400, True),
    ("/cart", 200, 11_050, True),
    ("/search?q=tornillos", 200, 28_500, True),
    ("/search?q=guantes+de+nitrilo", 200, 26_100, True),
    ("/search?q=cable+unipolar", 200, 27_300, True),
    ("/search?q=pintura+latex", 200, 25_900, True),
    ("/search?q=taladro", 200, 29_400, True),
    ("/search?q=cinta+aisladora", 200, 24_800, True),
    ("/static/css/app.4f1c2a9e.css", 200, 48_213, False),
    ("/static/js/app.9b7e3d11.js", 200, 183_420, False),
    ("/static/js/vendor.1a2b3c4d.js", 200, 402_311, False),
    ("/static/img/logo.svg", 200, 5_120, False),
    ("/favicon.ico", 200, 15_086, False),
    ("/robots.txt", 200, 214, False),
    ("/sitemap.xml", 200, 96_004, False),
    ("/wp-login.php", 404, 153, False),
    ("/.env", 404, 153, False),
    ("/xmlrpc.php", 404, 153, False),
    ("/phpmyadmin/", 404, 153, False),
    ("/.git/config", 404, 153, False),
    ("/apple-touch-icon.png", 404, 153, False),
    ("/catalogo-2019.pdf", 404, 153, False),
    ("/health", 200, 15, False),
)
_P = {path: i for i, (path, *_rest) in enumerate(_PAGES)}
_P_SEARCH = np.array([i for i, p in enumerate(_PAGES) if p[0].startswith("/search")])
_P_STATIC = np.array([i for i, p in enumerate(_PAGES) if p[0].startswith(("/static", "/fav"))])
_P_PROBES = np.array([i for i, p in enumerate(_PAGES) if p[1] == 404])
# Page codes that are not one _PAGES row: a product page, and any search, static file or probe.
_PRODUCT, _SEARCH, _STATIC, _PROBE = -1, -2, -3, -4

_ENTRY_REFERERS = (
    ("-", 40), ("https://www.google.com/", 30), ("https://www.google.com.ar/", 14),
    ("https://www.bing.com/", 5), ("https://duckduckgo.com/", 3),
    ("https://www.facebook.com/", 5), ("https://l.instagram.com/", 3),
)  # fmt: skip

# Share of lines per server-local hour: business hours for users, evenings too for the public.
_HOURS_BUSINESS = np.array(
    [0.2, 0.1, 0.05, 0.05, 0.05, 0.1, 0.3, 0.8, 2.0, 3.5, 4.2, 4.3,
     3.6, 2.8, 3.4, 4.0, 3.9, 3.2, 2.2, 1.5, 1.1, 0.8, 0.5, 0.3]
)  # fmt: skip
_HOURS_PUBLIC = np.array(
    [0.8, 0.5, 0.3, 0.2, 0.2, 0.3, 0.6, 1.2, 2.0, 2.6, 3.0, 3.1,
     3.0, 2.8, 2.9, 3.0, 3.0, 2.9, 2.8, 3.0, 3.2, 3.0, 2.2, 1.4]
)  # fmt: skip
_HOURS_FLAT = np.ones(24)

# Countries of anonymous visitors: mostly Argentina and neighbours, then a long tail.
_ANON_COUNTRIES = (
    ("AR", 50), ("BR", 7), ("US", 8), ("UY", 4), ("CL", 4), ("PY", 3), ("MX", 3), ("ES", 3),
    ("BO", 2), ("PE", 2), ("CO", 2), ("CN", 2), ("DE", 1.5), ("RU", 1.5), ("IN", 1.5),
    ("FR", 1), ("GB", 1), ("IT", 1), ("NL", 1), ("VN", 1), ("EC", 1), ("VE", 1), ("CA", 1),
    ("JP", 0.5), ("SG", 0.5),
)  # fmt: skip

# LACNIC's /8 blocks: candidates for Latin American countries hit far more often there.
_LACNIC_SLASH8 = np.array([177, 179, 181, 186, 187, 189, 190, 191, 200, 201], dtype=np.int64)
_PUBLIC_SLASH8 = np.array([i for i in range(1, 224) if i not in (10, 127)], dtype=np.int64)
_LACNIC = frozenset(
    ("AR", "BO", "BR", "BZ", "CL", "CO", "CR", "CU", "DO", "EC", "GT", "GY"),
) | frozenset(("HN", "HT", "MX", "NI", "PA", "PE", "PY", "SR", "SV", "TT", "UY", "VE"))
# First 16 bits of the RIRs' IPv6 /12 blocks (LACNIC 2800::/12 first).
_IPV6_LACNIC = (0x2800,)
_IPV6_ALL = (0x2400, 0x2600, 0x2800, 0x2A00, 0x2C00)

# String tables: events are integer codes into these, and a month of lines is formatted in
# one polars expression.
_METHODS = ("GET", "POST")
_GET, _POST = 0, 1
_PROTOS = ("HTTP/1.1", "HTTP/2.0")
_PATHS = (
    *(p[0] for p in _PAGES),
    "/cart/items",
    "/checkout",
    "/login?next=/orders",
    "/login?next=%2Fcart",
)
_X_CART, _X_CHECKOUT = len(_PAGES), len(_PAGES) + 1
_X_LOGIN_PATHS = np.array([_P["/login"], _P["/login"], len(_PAGES) + 2, len(_PAGES) + 3])
_PATH_PRODUCT0 = len(_PATHS)  # then /products/<id> per product
_REFERERS = (
    "-",
    f"{SITE}/",
    f"{SITE}/login",
    f"{SITE}/cart",
    f"{SITE}/orders",
    *(f"{SITE}{_PAGES[i][0]}" for i in _P_SEARCH),
    *(r for r, _ in _ENTRY_REFERERS[1:]),
)
_R_NONE, _R_HOME, _R_LOGIN, _R_CART, _R_ORDERS = range(5)
_R_SEARCH = 5 + np.arange(len(_P_SEARCH))
_R_ENTRY = np.array([_R_NONE, *range(5 + len(_P_SEARCH), len(_REFERERS))])  # as _ENTRY_REFERERS
_REF_PRODUCT0 = len(_REFERERS)  # then the product pages
_UAS = (
    *(ua for _, _, ua in _BROWSER_UAS),
    *_SCANNER_UAS,
    *(b[1] for b in _BOTS),
    *_HEALTH_UAS,
)
_UA_SCANNER0 = len(_BROWSER_UAS)
_UA_BOT0 = _UA_SCANNER0 + len(_SCANNER_UAS)
_UA_HEALTH0 = _UA_BOT0 + len(_BOTS)


class PlatformLike(Protocol):
    """What this module needs of ``generators.platform.PlatformData``."""

    @property
    def tables(self) -> Mapping[str, pl.DataFrame]: ...

    @property
    def user_profiles(self) -> pl.DataFrame: ...


@dataclass(frozen=True)
class WeblogSummary:
    """What was written. ``malformed_lines`` counts every injected edge case by kind,
    including the valid real-world ones (see MALFORMED_KINDS / REJECTED_KINDS)."""

    files: int
    lines: int
    malformed_lines: dict[str, int]
    bytes_written: int
    events_out_of_range: int = 0  # session events before the first or after the last day
    # parseable lines of the as-of evening that are already the next day in UTC: a load
    # whose cut-off is the end of the as-of day (UTC) quarantines them as future requests
    lines_after_cutoff: int = 0

    @property
    def rejected_lines(self) -> dict[str, int]:
        """The quarantine reasons the warehouse will give, with their line counts."""
        kinds = self.malformed_lines
        found = {
            "unparseable_line": kinds.get("truncated", 0) + kinds.get("blank", 0),
            "invalid_timestamp": kinds.get("invalid_timestamp", 0),
            "future_request": self.lines_after_cutoff,
        }
        return {code: n for code, n in found.items() if n}

    @property
    def injected_edge_cases(self) -> dict[str, int]:
        return self.malformed_lines


# --------------------------------------------------------------------------------------------
# IP addresses
# --------------------------------------------------------------------------------------------
def _format_ipv4(values: np.ndarray) -> pl.Series:
    v = values.astype(np.int64)
    octets = pl.DataFrame({"a": v >> 24, "b": (v >> 16) & 255, "c": (v >> 8) & 255, "d": v & 255})
    return octets.select(pl.format("{}.{}.{}.{}", "a", "b", "c", "d")).to_series()


_HEX16: list[pl.Series] = []


def _hex16() -> pl.Series:
    if not _HEX16:
        _HEX16.append(pl.Series([f"{i:x}" for i in range(65536)], dtype=pl.String))
    return _HEX16[0]


def _format_ipv6(groups: np.ndarray) -> pl.Series:
    """Groups (n, 8) → text; callers keep groups 2..7 non-zero so this is RFC 5952 form."""
    hexes = pl.DataFrame({f"g{i}": _hex16().gather(groups[:, i]) for i in range(8)})
    return hexes.select(pl.concat_str(pl.all(), separator=":")).to_series()


def _format_ipv6_prefix(prefix: np.ndarray) -> pl.Series:
    """A /32 prefix number → ``g0:g1::1``, an address that stands for the whole /32."""
    hexes = pl.DataFrame(
        {"a": _hex16().gather(prefix >> 16), "b": _hex16().gather(prefix & 0xFFFF)}
    )
    return hexes.select(pl.format("{}:{}::1", "a", "b")).to_series()


def _country_ids(text: pl.Series, countries: Sequence[str]) -> np.ndarray:
    """Index in ``countries`` of each address's country per ``iptocc``, -1 for any other."""
    codes = pl.Series(iptocc.country_code(text.to_list()), dtype=pl.String)
    ids = codes.replace_strict(list(countries), list(range(len(countries))), default=-1)
    return ids.cast(pl.Int64).to_numpy()


def _candidates(blocks: np.ndarray, rng: np.random.Generator, ipv6: bool) -> pl.Series:
    """One random address inside each block (IPv4 /20 or IPv6 /32 number)."""
    m = len(blocks)
    if ipv6:
        groups = np.empty((m, 8), dtype=np.int64)
        groups[:, 0], groups[:, 1] = blocks >> 16, blocks & 0xFFFF
        groups[:, 2:] = rng.integers(1, 65536, (m, 6))  # non-zero: RFC 5952 text as is
        return _format_ipv6(groups)
    low = (rng.integers(0, 16, m) << 8) | rng.integers(1, 255, m)  # no .0 / .255 hosts
    return _format_ipv4((blocks << 12) | low)


def _probe(
    countries: Sequence[str], targets: np.ndarray, rng: np.random.Generator, ipv6: bool
) -> list[np.ndarray]:
    """Blocks allocated to each country (IPv4 /20 or IPv6 /32 numbers), by random probes.

    Latin American countries are probed in LACNIC's space, where they hit far more often;
    every probe is classified against every wanted country, so one round serves them all.
    """
    latin = np.array([c in _LACNIC for c in countries])
    found: list[np.ndarray] = [np.zeros(0, np.int64) for _ in countries]
    done = targets <= 0
    batch = 16_384
    for attempt in range(12):
        spaces = []
        if not done[latin].all():
            spaces.append(np.array(_IPV6_LACNIC) if ipv6 else _LACNIC_SLASH8)
        if not done[~latin].all() or attempt >= 3:  # rare Latin countries: look everywhere
            spaces.append(np.array(_IPV6_ALL) if ipv6 else _PUBLIC_SLASH8)
        top = np.concatenate([rng.choice(space, batch) for space in spaces])
        if ipv6:
            block = ((top + rng.integers(0, 16, len(top))) << 16) | rng.integers(0, 65536, len(top))
            ids = _country_ids(_format_ipv6_prefix(block), countries)
        else:
            addr = (top << 24) | rng.integers(0, 1 << 24, len(top))
            block, ids = addr >> 12, _country_ids(_format_ipv4(addr), countries)
        for i in np.flatnonzero(~done):  # per country
            hits = block[ids == i]
            merged = np.concatenate([found[i], hits])
            merged = merged[np.sort(np.unique(merged, return_index=True)[1])]  # keep order
            new = len(merged) - len(found[i])
            found[i] = merged
            # Enough, or mostly repeats: a small country, and this is what it has.
            done[i] = len(merged) >= targets[i] or (len(merged) >= 8 and new < 0.25 * len(hits))
        if attempt >= 7:  # about 4M probes: a code with no allocation at all
            done |= np.array([len(f) == 0 for f in found])
        if done.all():
            break
        batch = min(batch * 2, 1 << 20)
    return [f[: max(t, 0)] for f, t in zip(found, targets, strict=True)]


def _sample_many(
    wanted: Mapping[str, int], rng: np.random.Generator, ipv6: bool = False
) -> dict[str, list[str]]:
    """``sample_ips_in_country`` for several countries at once (a few lookups in all)."""
    countries = sorted(c for c, n in wanted.items() if n > 0)
    if not countries:
        return {}
    for country in countries:
        if not re.fullmatch(r"[A-Z]{2}", country):
            raise ValueError(f"not an ISO-3166 alpha-2 country code: {country!r}")
    need = np.array([wanted[c] for c in countries], dtype=np.int64)
    # A few dozen networks per country, more for big asks so that addresses stay distinct:
    # past 128 /20s, enough that at most ~1,500 of each one's 4,000 hosts are used (the
    # xlarge scale's 1.5M Argentine home addresses); an IPv6 /32 is big enough for anyone,
    # and rare: a few will do.
    blocks_for = np.maximum(np.clip(-(-need // 512), 16, 128), -(-need // 1_500))
    targets = np.full(len(need), 4) if ipv6 else blocks_for
    blocks = _probe(countries, np.minimum(targets, need), rng, ipv6)
    found = [pl.Series(dtype=pl.String) for _ in countries]
    hit_rate = np.full(len(countries), 0.5)
    for _ in range(10):
        short = [i for i in range(len(countries)) if found[i].len() < need[i] and len(blocks[i])]
        if not short:
            break
        # Addresses inside the blocks found, checked again: a block can be split.
        asks = [int((need[i] - found[i].len()) / max(hit_rate[i], 0.02) * 1.3) + 16 for i in short]
        owner = np.repeat(np.array(short), asks)
        pick = np.concatenate(
            [
                blocks[i][rng.integers(0, len(blocks[i]), k)]
                for i, k in zip(short, asks, strict=True)
            ]
        )
        text = _candidates(pick, rng, ipv6)
        ids = _country_ids(text, countries)
        for i, k in zip(short, asks, strict=True):  # per country
            ok = (owner == i) & (ids == i)
            hit_rate[i] = max(ok.sum() / k, 0.001)
            found[i] = pl.concat([found[i], text.filter(pl.Series(ok))]).unique(maintain_order=True)
    out = {}
    for i, country in enumerate(countries):
        if found[i].len() < need[i]:
            kind = "IPv6" if ipv6 else "IPv4"
            raise ValueError(f"could not find {need[i]} {kind} addresses in {country}")
        out[country] = found[i].head(int(need[i])).to_list()
    return out


def sample_ips_in_country(
    country: str, n: int, rng: np.random.Generator, *, ipv6: bool = False
) -> list[str]:
    """``n`` distinct public addresses that ``iptocc`` places in ``country`` (ISO-2).

    Random probes find blocks allocated to the country (in LACNIC's space first for Latin
    American countries); addresses are then drawn inside those blocks, like the customers of
    a few ISPs, and each one is checked with the same offline lookup the warehouse uses, so
    the warehouse sees the same country. IPv6 addresses get a random non-zero interface part.
    """
    country = country.strip().upper()
    if n <= 0:
        return []
    return _sample_many({country: n}, rng, ipv6)[country]


def _prefix_hosts(prefixes: Sequence[str], n: int, rng: np.random.Generator) -> pl.Series:
    """Random host addresses inside the given IPv4 CIDR prefixes."""
    bases, sizes = [], []
    for prefix in prefixes:
        net, bits = prefix.split("/")
        a, b, c, d = (int(x) for x in net.split("."))
        bases.append((a << 24) | (b << 16) | (c << 8) | d)
        sizes.append(1 << (32 - int(bits)))
    pick = rng.integers(0, len(prefixes), n)
    size = np.array(sizes)[pick]
    return _format_ipv4(np.array(bases)[pick] + 1 + (rng.random(n) * (size - 2)).astype(np.int64))


# --------------------------------------------------------------------------------------------
# Calendar
# --------------------------------------------------------------------------------------------
def _epoch_day(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


@dataclass(frozen=True)
class _Calendar:
    first_day: dt.date
    as_of: dt.date
    n_days: int
    start: int  # server-local epoch seconds of first_day 00:00
    end: int  # ... of the day after as_of
    chunk_bounds: np.ndarray  # local epoch seconds of month starts, then ``end``
    day_str: pl.Series  # "dd/Mon/YYYY:" per day, as in the log's %t

    @classmethod
    def of(cls, config: GenerationConfig) -> _Calendar:
        first, as_of = config.first_day, config.as_of
        bounds, month = [], first
        while month <= as_of:
            bounds.append(_epoch_day(month) * 86400)
            month = (month + dt.timedelta(days=32)).replace(day=1)
        end = (_epoch_day(as_of) + 1) * 86400
        n_days = (as_of - first).days + 1
        days = [first + dt.timedelta(days=i) for i in range(n_days)]
        # Month names by hand: strftime's %b follows the locale.
        day_str = pl.Series([f"{d.day:02d}/{_MONTHS[d.month - 1]}/{d.year}:" for d in days])
        return cls(first, as_of, n_days, bounds[0], end, np.array([*bounds, end]), day_str)

    @property
    def n_chunks(self) -> int:
        return len(self.chunk_bounds) - 1

    def chunk_days(self, k: int) -> tuple[int, int]:
        lo, hi = self.chunk_bounds[k : k + 2]
        return int(lo - self.start) // 86400, int(hi - self.start) // 86400

    def chunk_of(self, ts: np.ndarray) -> np.ndarray:
        k = np.searchsorted(self.chunk_bounds, ts, side="right") - 1
        return np.clip(k, 0, self.n_chunks - 1)

    def day_weights(self, weekend: tuple[float, float], growth: float) -> np.ndarray:
        """Relative traffic per day: quieter weekends and a business that grows."""
        idx = np.arange(self.n_days)
        factor = np.ones(7)
        factor[5], factor[6] = weekend
        trend = 1 + growth * (idx / max(self.n_days - 1, 1) - 0.5)
        return factor[(self.first_day.weekday() + idx) % 7] * trend

    def sample_times(
        self,
        rng: np.random.Generator,
        n: int,
        day_w: np.ndarray,
        hour_w: np.ndarray,
        days: tuple[int, int] | None = None,
    ) -> np.ndarray:
        lo, hi = days if days is not None else (0, self.n_days)
        p = day_w[lo:hi] / day_w[lo:hi].sum()
        day = lo + rng.choice(hi - lo, n, p=p)
        hour = rng.choice(24, n, p=hour_w / hour_w.sum())
        return self.start + day * 86400 + hour * 3600 + rng.integers(0, 3600, n)


def _split(total: int, weights: np.ndarray) -> np.ndarray:
    """Integer shares of ``total`` proportional to ``weights`` (largest remainder)."""
    if total <= 0 or weights.sum() <= 0:
        return np.zeros(len(weights), dtype=np.int64)
    exact = total * weights / weights.sum()
    out = np.floor(exact).astype(np.int64)
    out[np.argsort(-(exact - out), kind="stable")[: total - out.sum()]] += 1
    return out


def _rng(config: GenerationConfig, stream: int, *more: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, _SALT, stream, *more])


# --------------------------------------------------------------------------------------------
# Users, products, orders
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Users:
    ids: pl.DataFrame  # user_id, uidx
    usernames: pl.Series  # "-" first, then by uidx: the %u column is ``uidx + 1``
    ua: np.ndarray  # (n, 3) user agents of the user's devices (codes into _UAS)
    n_dev: np.ndarray
    ip: np.ndarray  # (n, 3) home addresses (codes into ip_pool)
    n_ip: np.ndarray
    travel_ip: np.ndarray  # code into ip_pool, -1 for users who do not travel
    ip_pool: pl.Series

    @property
    def n(self) -> int:
        return len(self.n_dev)

    def devices(self, rng: np.random.Generator, uidx: np.ndarray) -> np.ndarray:
        """Per session, one of the user's own devices (the first ones more often)."""
        slot = rng.choice(3, len(uidx), p=[0.6, 0.28, 0.12]) % self.n_dev[uidx]
        return self.ua[uidx, slot]

    def addresses(self, rng: np.random.Generator, uidx: np.ndarray) -> np.ndarray:
        """Per session, a home IP; travellers use their travel IP in about 1 in 5 sessions."""
        slot = rng.choice(3, len(uidx), p=[0.65, 0.25, 0.10]) % self.n_ip[uidx]
        away = (self.travel_ip[uidx] >= 0) & (rng.random(len(uidx)) < 0.2)
        return np.where(away, self.travel_ip[uidx], self.ip[uidx, slot])


def _pick_uas(rng: np.random.Generator, kind: np.ndarray) -> np.ndarray:
    """A browser user agent of each requested kind (desktop, phone, tablet), by weight."""
    kinds = np.array([k for k, _, _ in _BROWSER_UAS])
    weights = np.array([w for _, w, _ in _BROWSER_UAS], dtype=float)
    out = np.empty(len(kind), dtype=np.int64)
    for k in (_DESKTOP, _PHONE, _TABLET):
        ids = np.flatnonzero(kinds == k)
        mask = kind == k
        out[mask] = rng.choice(ids, int(mask.sum()), p=weights[ids] / weights[ids].sum())
    return out


def _build_users(config: GenerationConfig, profiles: pl.DataFrame) -> _Users:
    prof = profiles.select(
        pl.col("user_id").cast(pl.Int64),
        pl.col("username").cast(pl.String),
        pl.col("home_country").cast(pl.String).str.strip_chars().str.to_uppercase().fill_null("AR"),
        pl.col("travel_country").cast(pl.String).str.strip_chars().str.to_uppercase(),
    ).sort("user_id")
    n = prof.height
    rng = _rng(config, _S_USERS)
    kind = np.stack([rng.choice(3, n, p=p) for p in _SLOT_KIND_P], axis=1)
    ua = _pick_uas(rng, kind.ravel()).reshape(n, 3)
    n_dev = rng.choice([1, 2, 3], n, p=[0.4, 0.4, 0.2])
    n_ip = rng.choice([1, 2, 3], n, p=[0.45, 0.4, 0.15])
    home = prof["home_country"].to_numpy().astype(str)
    travel = prof["travel_country"].fill_null("").to_numpy().astype(str)
    on_ipv6 = np.isin(home, sorted(_LACNIC)) & (rng.random(n) < 0.06)

    # All countries at once: a few lookups instead of a few per country.
    ip_rng = _rng(config, _S_IPS)
    countries = sorted(set(home.tolist()))
    v6_countries = sorted(set(home[on_ipv6].tolist()))
    travel_countries = sorted(set(travel.tolist()) - {""})
    home_ips = _sample_many({c: 3 * int((home == c).sum()) for c in countries}, ip_rng)
    v6_ips = _sample_many(
        {c: int((on_ipv6 & (home == c)).sum()) for c in v6_countries}, ip_rng, True
    )
    travel_ips = _sample_many({c: int((travel == c).sum()) for c in travel_countries}, ip_rng)
    parts: list[list[str]] = []
    ip = np.zeros((n, 3), dtype=np.int64)
    travel_ip = np.full(n, -1, dtype=np.int64)
    used = 0
    for got, group, column in (
        (home_ips, home, ip),
        (v6_ips, np.where(on_ipv6, home, ""), ip[:, 0]),  # dual stack: IPv6 at home
        (travel_ips, travel, travel_ip),
    ):
        for country in sorted(got):  # per country
            rows = np.flatnonzero(group == country)
            parts.append(got[country])
            codes = used + np.arange(len(got[country]))
            column[rows] = codes.reshape(len(rows), -1) if column.ndim == 2 else codes
            used += len(got[country])
    pool = pl.Series([a for part in parts for a in part], dtype=pl.String)
    ids = pl.DataFrame({"user_id": prof["user_id"], "uidx": np.arange(n, dtype=np.int64)})
    usernames = pl.concat([pl.Series(["-"], dtype=pl.String), prof["username"]])
    return _Users(ids, usernames, ua, n_dev, ip, n_ip, travel_ip, pool)


@dataclass(frozen=True)
class _Products:
    ids: np.ndarray  # sorted; events refer to products by position here
    p: np.ndarray  # popularity: a few products get most of the views

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if len(self.ids) == 0:
            return np.zeros(n, dtype=np.int64)
        return rng.choice(len(self.ids), n, p=self.p)


def _build_products(config: GenerationConfig, products: pl.DataFrame) -> _Products:
    ids = np.sort(products["product_id"].drop_nulls().unique().to_numpy().astype(np.int64))
    rank = _rng(config, _S_PRODUCTS).permutation(len(ids))
    w = 1.0 / (rank + 5.0) ** 0.9
    return _Products(ids, w / w.sum() if len(ids) else w)


def _naive_utc(col: str, dtype: pl.DataType) -> pl.Expr:
    expr = pl.col(col)
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        expr = expr.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return expr


@dataclass(frozen=True)
class _Orders:
    """One checkout session per order a user placed in the range, sorted by login time."""

    t0: np.ndarray  # login, server-local epoch seconds
    t1: np.ndarray  # checkout = ordered_at
    uidx: np.ndarray
    item_sess: np.ndarray  # items with an existing product, one per product: session ...
    item_pos: np.ndarray  # ... and product position
    n_items: np.ndarray
    failed: np.ndarray  # a failed login attempt first
    n_extra: np.ndarray  # products browsed but not bought (set by the budget)

    @property
    def n(self) -> int:
        return len(self.t0)

    def fixed_lines(self) -> int:
        return int((2 + 2 * self.n_items + self.failed).sum())


def _plan_orders(
    config: GenerationConfig, platform: PlatformLike, users: _Users, products: _Products
) -> _Orders:
    orders = platform.tables["orders"]
    start = config.start.replace(tzinfo=None)
    end = config.end.replace(tzinfo=None)
    # Lazy, and only the columns that are used: at the xlarge scale (10M orders, 28M lines)
    # eager steps would hold several copies of the lines at once.
    od = (
        orders.lazy()
        .select(
            pl.col("order_id").cast(pl.Int64),
            pl.col("user_id").cast(pl.Int64),
            _naive_utc("ordered_at", orders.schema["ordered_at"]).alias("ordered_at"),
        )
        .filter(
            pl.col("user_id").is_not_null()
            & (pl.col("ordered_at") >= start)
            & (pl.col("ordered_at") < end)
        )
        .unique("order_id", keep="first", maintain_order=True)
        .join(users.ids.lazy(), on="user_id", how="inner")
        .select("order_id", "uidx", t1=pl.col("ordered_at").dt.epoch("s") + SERVER_UTC_OFFSET_S)
        .sort("t1", "order_id")
        .collect()
    )
    rng = _rng(config, _S_ORDERS)
    n = od.height
    # Log in minutes to a couple of hours before checking out (median ~20 minutes).
    delta = np.clip(np.exp(rng.normal(np.log(1200), 0.9, n)), 60, 9000).astype(np.int64)
    od = od.with_columns(t0=pl.col("t1") - pl.Series(delta)).sort("t0", "order_id")
    od = od.with_columns(sess=pl.int_range(pl.len(), dtype=pl.Int64))
    items = (
        platform.tables["order_items"]
        .lazy()
        .select(
            pl.col("order_id").cast(pl.Int64),
            pl.col("line_number").cast(pl.Int64),
            pl.col("product_id").cast(pl.Int64),
        )
        .filter(pl.col("product_id").is_in(pl.Series(products.ids).implode()))
        .join(od.lazy().select("order_id", "sess"), on="order_id", how="inner")
        .select("sess", "line_number", "product_id")
        .sort("sess", "line_number")
        .unique(["sess", "product_id"], keep="first", maintain_order=True)
        .collect()
    )
    item_sess = items["sess"].to_numpy()
    return _Orders(
        t0=od["t0"].to_numpy(),
        t1=od["t1"].to_numpy(),
        uidx=od["uidx"].to_numpy(),
        item_sess=item_sess,
        item_pos=np.searchsorted(products.ids, items["product_id"].to_numpy()),
        n_items=np.bincount(item_sess, minlength=n).astype(np.int64),
        failed=rng.random(n) < 0.04,
        n_extra=np.zeros(n, dtype=np.int64),
    )


@dataclass(frozen=True)
class _Browse:
    """Sessions of users who log in and look around without ordering, sorted by start."""

    t0: np.ndarray
    uidx: np.ndarray
    n_pages: np.ndarray
    failed: np.ndarray

    def lines(self) -> int:
        return int((1 + self.n_pages + self.failed).sum())


def _plan_browse(config: GenerationConfig, users: _Users, cal: _Calendar, target: int) -> _Browse:
    rng = _rng(config, _S_BROWSE)
    est = int(target / 6.5 * 1.2) + 8 if users.n and target > 0 else 0
    n_pages = 1 + rng.poisson(4.5, est)
    failed = rng.random(est) < 0.03
    count = int(np.searchsorted(np.cumsum(1 + n_pages + failed), target, side="right"))
    n_pages, failed = n_pages[:count], failed[:count]
    # Nearly every user gets a session before the more active ones get more.
    covered = min(count, int(0.97 * users.n))
    activity = np.exp(rng.normal(0, 1, users.n))
    more = (
        rng.choice(users.n, count - covered, p=activity / activity.sum())
        if count > covered
        else np.zeros(0, dtype=np.int64)
    )
    uidx = np.concatenate([rng.permutation(users.n)[:covered], more]).astype(np.int64)
    t0 = cal.sample_times(rng, count, cal.day_weights((0.25, 0.12), 0.3), _HOURS_BUSINESS)
    order = np.argsort(t0, kind="stable")
    return _Browse(t0[order], uidx[order], n_pages[order], failed[order])


def _plan_budget(
    config: GenerationConfig, orders: _Orders, users: _Users
) -> tuple[float, int, int, int]:
    """Extra product views per order, browse lines, bot lines and health lines.

    Order sessions are fixed by the database; the rest is sized to reach ~log_lines, and
    anonymous traffic takes whatever is left (see _plan).
    """
    total = config.scale.log_lines
    health = round(0.01 * total)
    room = max(total - orders.fixed_lines() - health, 0)
    bots, anon = 0.15 * total, 0.20 * total
    if room < 1.5 * (bots + anon):  # many orders for few lines: shrink the rest alike
        scale = room / (1.5 * (bots + anon))
        bots, anon = bots * scale, anon * scale
    for_users = room - bots - anon if users.n else 0.0
    extra = 0.3 * for_users if orders.n else 0.0
    lam_extra = extra / orders.n if orders.n else 0.0
    return lam_extra, int(for_users - extra), round(bots), health


@dataclass(frozen=True)
class _Pools:
    """Addresses of anonymous visitors by country, of crawlers and of the internal network."""

    anon: pl.Series
    lo: np.ndarray  # per country: first address in ``anon`` ...
    size: np.ndarray  # ... and how many
    p: np.ndarray
    bots: pl.Series  # _BOT_HOSTS addresses per crawler, in _BOTS order
    ipv6: pl.Series  # for the injected IPv6 lines

    def sample_anon(self, rng: np.random.Generator, n: int) -> np.ndarray:
        c = rng.choice(len(self.p), n, p=self.p)
        return self.lo[c] + (rng.random(n) * self.size[c]).astype(np.int64)


_BOT_HOSTS = 256


def _build_pools(config: GenerationConfig, anon_lines: int) -> _Pools:
    rng = _rng(config, _S_POOLS)
    weights = np.array([w for _, w in _ANON_COUNTRIES], dtype=float)
    p = weights / weights.sum()
    sizes = np.clip((p * anon_lines / 5).astype(np.int64), 4, 3000)
    got = _sample_many({c: int(k) for (c, _), k in zip(_ANON_COUNTRIES, sizes, strict=True)}, rng)
    parts = [got[c] for c, _ in _ANON_COUNTRIES]
    lo = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    bots = pl.concat([_prefix_hosts(prefixes, _BOT_HOSTS, rng) for _, _, prefixes, _ in _BOTS])
    v6 = [a for part in _sample_many({"AR": 8, "BR": 8}, rng, ipv6=True).values() for a in part]
    anon = pl.Series([a for part in parts for a in part], dtype=pl.String)
    return _Pools(anon, lo, sizes, p, bots, pl.Series(v6, dtype=pl.String))


@dataclass(frozen=True)
class _Tables:
    """String tables that the integer event codes point into."""

    hosts: pl.Series  # users' addresses, then anonymous, crawler and internal ones
    anon0: int
    bot0: int
    health0: int
    users: pl.Series
    paths: pl.Series  # _PATHS, then /products/<id> per product
    referers: pl.Series  # _REFERERS, then the product pages
    ipv6: pl.Series

    @classmethod
    def of(cls, users: _Users, pools: _Pools, products: _Products) -> _Tables:
        anon0 = users.ip_pool.len()
        bot0 = anon0 + pools.anon.len()
        health0 = bot0 + pools.bots.len()
        hosts = pl.concat([users.ip_pool, pools.anon, pools.bots, pl.Series(_HEALTH_IPS)])
        product = pl.Series(products.ids, dtype=pl.Int64).cast(pl.String)
        paths = pl.concat([pl.Series(_PATHS, dtype=pl.String), "/products/" + product])
        referers = pl.concat([pl.Series(_REFERERS, dtype=pl.String), f"{SITE}/products/" + product])
        return cls(hosts, anon0, bot0, health0, users.usernames, paths, referers, pools.ipv6)


# --------------------------------------------------------------------------------------------
# _Events: numpy columns of integer codes, one dict per batch
# --------------------------------------------------------------------------------------------
_FIELDS = ("ts", "host", "user", "method", "path", "proto", "status", "size", "referer", "ua")
_Events = dict[str, np.ndarray]


def _ev(n: int, injectable: bool, **cols: np.ndarray | int) -> _Events:
    """A batch of events; scalar arguments become constant columns."""
    out = {f: np.broadcast_to(np.asarray(cols[f], dtype=np.int64), (n,)) for f in _FIELDS}
    out["injectable"] = np.full(n, injectable)
    return out


def _concat(batches: Sequence[_Events]) -> _Events:
    return {f: np.concatenate([b[f] for b in batches]) for f in (*_FIELDS, "injectable")}


def _take(events: _Events, idx: np.ndarray) -> _Events:
    return {f: v[idx] for f, v in events.items()}


def _no_events() -> _Events:
    return _ev(0, False, **dict.fromkeys(_FIELDS, 0))


def _sessions(counts: np.ndarray, gaps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expand sessions to events: session index, position in session, seconds since start."""
    sess = np.repeat(np.arange(len(counts)), counts)
    first = np.cumsum(counts) - counts
    pos = np.arange(len(sess)) - first[sess]
    gaps = np.where(pos == 0, 0, gaps)
    cum = np.cumsum(gaps)
    return sess, pos, cum - cum[first][sess]


def _cut(counts: np.ndarray, lines: int) -> np.ndarray:
    """Session lengths trimmed so that they add up to exactly ``lines``."""
    counts = counts[: int(np.searchsorted(np.cumsum(counts), lines)) + 1]
    counts[-1] -= counts.sum() - lines
    return counts


_PAGE_STATUS = np.array([p[1] for p in _PAGES])
_PAGE_BYTES = np.array([p[2] for p in _PAGES])
_PAGE_DYNAMIC = np.array([p[3] for p in _PAGES])


def _pages(
    rng: np.random.Generator, page: np.ndarray, products: _Products, pos: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Path code, status and size per event; ``page`` is a _PAGES index or _PRODUCT, and
    product pages show ``pos`` (product positions) or else popular products."""
    if len(products.ids) == 0:
        page = np.where(page == _PRODUCT, _P["/"], page)
    is_product = page == _PRODUCT
    pos = products.sample(rng, len(page)) if pos is None else pos
    code = np.where(is_product, 0, page)
    path = np.where(is_product, _PATH_PRODUCT0 + pos, page)
    status = _PAGE_STATUS[code]
    # Product pages differ by product; dynamic pages by a few percent per request.
    pid = products.ids[pos] if len(products.ids) else pos
    base = np.where(is_product, 21_000 + (pid * 2_654_435_761) % 15_000, _PAGE_BYTES[code])
    dynamic = _PAGE_DYNAMIC[code] | is_product
    size = np.where(dynamic, (base * rng.uniform(0.97, 1.03, len(page))).astype(np.int64), base)
    # Now and then the application fails.
    boom = dynamic & (rng.random(len(page)) < 0.0015)
    return path, np.where(boom, 502, status), np.where(boom, 559, size)


def _product_views(
    rng: np.random.Generator, pos: np.ndarray, products: _Products
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Path code, status and size for views of the given product positions."""
    return _pages(rng, np.full(len(pos), _PRODUCT), products, pos)


def _user_sessions(
    rng: np.random.Generator,
    users: _Users,
    t0: np.ndarray,
    uidx: np.ndarray,
    failed: np.ndarray,
) -> tuple[list[_Events], dict[str, np.ndarray]]:
    """The logins that open users' sessions, and per session the user, address, device."""
    n = len(t0)
    per_session = {
        "user": uidx + 1,
        "host": users.addresses(rng, uidx),
        "ua": users.devices(rng, uidx),
        "proto": (rng.random(n) < 0.6).astype(np.int64),  # HTTP/2 for most browsers
    }
    ok200 = rng.random(n) < 0.12  # the single-page login answers 200 JSON, the form a 302
    login = _ev(
        n, False, ts=t0, method=_POST, path=_P["/login"], status=np.where(ok200, 200, 302),
        size=np.where(ok200, 87, 0), referer=_R_LOGIN, **per_session,
    )  # fmt: skip
    f = np.flatnonzero(failed)
    bad = _ev(
        len(f), False, ts=t0[f] - rng.integers(8, 90, len(f)), method=_POST,
        path=_X_LOGIN_PATHS[rng.integers(0, len(_X_LOGIN_PATHS), len(f))], status=401,
        size=5_480 + rng.integers(0, 40, len(f)), referer=_R_LOGIN,
        **{k: v[f] for k, v in per_session.items()},
    )  # fmt: skip
    return [bad, login], per_session


def _order_events(
    rng: np.random.Generator, orders: _Orders, users: _Users, products: _Products, lo: int, hi: int
) -> _Events:
    """Login, product views, cart additions and the checkout at ordered_at, per order."""
    if hi <= lo:
        return _no_events()
    sl = slice(lo, hi)
    t0, t1 = orders.t0[sl], orders.t1[sl]
    batches, per_session = _user_sessions(rng, users, t0, orders.uidx[sl], orders.failed[sl])
    dur = t1 - t0

    a, b = np.searchsorted(orders.item_sess, [lo, hi])
    i = orders.item_sess[a:b] - lo
    pos = orders.item_pos[a:b]
    seen = t0[i] + (rng.uniform(0.05, 0.8, len(i)) * dur[i]).astype(np.int64)
    path, status, size = _product_views(rng, pos, products)
    came_from = np.array([_R_HOME, _R_ORDERS, *_R_SEARCH])
    batches.append(
        _ev(
            len(i),
            False,
            ts=seen,
            method=_GET,
            path=path,
            status=status,
            size=size,
            referer=came_from[rng.integers(0, len(came_from), len(i))],
            **{k: v[i] for k, v in per_session.items()},
        )
    )
    added = seen + np.minimum(rng.integers(5, 120, len(i)), t1[i] - seen - 1)
    batches.append(
        _ev(
            len(i),
            False,
            ts=added,
            method=_POST,
            path=_X_CART,
            status=201,
            size=310 + rng.integers(0, 60, len(i)),
            referer=_REF_PRODUCT0 + pos,
            **{k: v[i] for k, v in per_session.items()},
        )
    )
    x = np.repeat(np.arange(hi - lo), orders.n_extra[sl])
    path, status, size = _product_views(rng, products.sample(rng, len(x)), products)
    batches.append(
        _ev(
            len(x),
            False,
            ts=t0[x] + (rng.uniform(0.02, 0.95, len(x)) * dur[x]).astype(np.int64),
            method=_GET,
            path=path,
            status=status,
            size=size,
            referer=_R_HOME,
            **{k: v[x] for k, v in per_session.items()},
        )
    )
    batches.append(
        _ev(
            hi - lo,
            False,
            ts=t1,
            method=_POST,
            path=_X_CHECKOUT,
            status=302,
            size=0,
            referer=_R_CART,
            **per_session,
        )
    )
    return _concat(batches)


_BROWSE_PAGES = np.array([_PRODUCT, _P["/orders"], _P["/account"], _P["/cart"], _P["/"], _SEARCH])
_BROWSE_P = np.array([0.76, 0.08, 0.03, 0.05, 0.03, 0.05])


def _browse_events(
    rng: np.random.Generator, browse: _Browse, users: _Users, products: _Products, lo: int, hi: int
) -> _Events:
    """Logged-in users looking at products, their orders and their account."""
    if hi <= lo:
        return _no_events()
    sl = slice(lo, hi)
    t0 = browse.t0[sl]
    batches, per_session = _user_sessions(rng, users, t0, browse.uidx[sl], browse.failed[sl])
    counts = browse.n_pages[sl]
    i, _, offset = _sessions(counts, 3 + rng.exponential(45, int(counts.sum())).astype(np.int64))
    page = rng.choice(_BROWSE_PAGES, len(i), p=_BROWSE_P)
    page = np.where(page == _SEARCH, rng.choice(_P_SEARCH, len(i)), page)
    path, status, size = _pages(rng, page, products)
    batches.append(
        _ev(
            len(i),
            False,
            ts=t0[i] + 2 + offset,
            method=_GET,
            path=path,
            status=status,
            size=size,
            referer=_R_HOME,
            **{k: v[i] for k, v in per_session.items()},
        )
    )
    return _concat(batches)


def _anon_events(
    rng: np.random.Generator, cal: _Calendar, k: int, lines: int, t: _Tables, pools: _Pools,
    products: _Products,
) -> _Events:  # fmt: skip
    """Visitors without an account: home page, products, static files, the login form, probes."""
    if lines <= 0:
        return _no_events()
    counts = _cut(rng.geometric(0.45, lines), lines)  # pages per visit, mean ~2.2
    n = len(counts)
    t0 = cal.sample_times(
        rng, n, cal.day_weights((0.7, 0.6), 0.3), _HOURS_PUBLIC, cal.chunk_days(k)
    )
    scanner = rng.random(n) < 0.05
    ua = np.where(
        scanner,
        _UA_SCANNER0 + rng.integers(0, len(_SCANNER_UAS), n),
        _pick_uas(rng, rng.choice(3, n, p=_ANON_KIND_P)),
    )
    host = t.anon0 + pools.sample_anon(rng, n)
    proto = (rng.random(n) < 0.5).astype(np.int64)
    i, pos, offset = _sessions(counts, 1 + rng.exponential(20, lines).astype(np.int64))
    entry = rng.choice(
        np.array([_P["/"], _PRODUCT, _P["/login"], _SEARCH]), lines, p=[0.45, 0.40, 0.10, 0.05]
    )
    later = rng.choice(
        np.array([_STATIC, _PRODUCT, _P["/"], _P["/login"], _PROBE, _SEARCH]),
        lines,
        p=[0.40, 0.35, 0.05, 0.10, 0.04, 0.06],
    )
    page = np.where(pos == 0, entry, later)
    page = np.where(scanner[i], _PROBE, page)
    page = np.where(page == _SEARCH, rng.choice(_P_SEARCH, lines), page)
    page = np.where(page == _STATIC, rng.choice(_P_STATIC, lines), page)
    page = np.where(page == _PROBE, rng.choice(_P_PROBES, lines), page)
    path, status, size = _pages(rng, page, products)
    # Browsers revalidate cached static files.
    cached = np.isin(page, _P_STATIC) & (rng.random(lines) < 0.3)
    ref_w = np.array([w for _, w in _ENTRY_REFERERS], dtype=float)
    entry_ref = _R_ENTRY[rng.choice(len(ref_w), lines, p=ref_w / ref_w.sum())]
    referer = np.where(scanner[i], _R_NONE, np.where(pos == 0, entry_ref, _R_HOME))
    return _ev(
        lines, True, ts=t0[i] + offset, host=host[i], user=0, method=_GET, path=path,
        proto=proto[i], status=np.where(cached, 304, status), size=np.where(cached, 0, size),
        referer=referer, ua=ua[i],
    )  # fmt: skip


def _bot_events(
    rng: np.random.Generator, cal: _Calendar, k: int, lines: int, t: _Tables,
    products: _Products,
) -> _Events:  # fmt: skip
    """Crawlers from their real networks: robots.txt, the sitemap and product pages."""
    if lines <= 0:
        return _no_events()
    counts = _cut(rng.geometric(0.18, lines), lines)  # pages per crawl burst, mean ~5.6
    n = len(counts)
    t0 = cal.sample_times(rng, n, cal.day_weights((1, 1), 0.1), _HOURS_FLAT, cal.chunk_days(k))
    w = np.array([b[0] for b in _BOTS], dtype=float)
    bot = rng.choice(len(_BOTS), n, p=w / w.sum())
    host = t.bot0 + bot * _BOT_HOSTS + rng.integers(0, _BOT_HOSTS, n)
    i, pos, offset = _sessions(counts, 1 + rng.exponential(8, lines).astype(np.int64))
    entry = rng.choice(np.array([_P["/robots.txt"], _PRODUCT]), lines, p=[0.3, 0.7])
    later = rng.choice(
        np.array([_PRODUCT, _P["/"], _P["/sitemap.xml"], _P["/catalogo-2019.pdf"]]),
        lines,
        p=[0.86, 0.05, 0.05, 0.04],
    )
    path, status, size = _pages(rng, np.where(pos == 0, entry, later), products)
    return _ev(
        lines, True, ts=t0[i] + offset, host=host[i], user=0, method=_GET, path=path, proto=0,
        status=status, size=size, referer=_R_NONE, ua=_UA_BOT0 + bot[i],
    )  # fmt: skip


def _health_events(
    rng: np.random.Generator, cal: _Calendar, k: int, lines: int, t: _Tables
) -> _Events:
    """The load balancer's health probes from the private network."""
    lo, hi = cal.chunk_bounds[k : k + 2]
    return _ev(
        lines, False, ts=rng.integers(lo, hi, lines), host=t.health0 + rng.integers(0, 3, lines),
        user=0, method=_GET, path=_P["/health"], proto=0, status=200, size=15, referer=_R_NONE,
        ua=_UA_HEALTH0 + rng.integers(0, len(_HEALTH_UAS), lines),
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Lines
# --------------------------------------------------------------------------------------------
_HMS: list[pl.Series] = []


def _stamp_parts(ts: pl.Expr, cal: _Calendar) -> tuple[pl.Expr, pl.Expr]:
    """``dd/Mon/YYYY:`` and ``HH:MM:SS`` by lookup: far faster than strftime per line."""
    if not _HMS:
        sec = pl.int_range(86400, eager=True)
        two = [(x.cast(pl.String).str.zfill(2)) for x in (sec // 3600, sec // 60 % 60, sec % 60)]
        _HMS.append(pl.select(pl.concat_str([pl.lit(x) for x in two], separator=":")).to_series())
    return pl.lit(cal.day_str).gather((ts - cal.start) // 86400), pl.lit(_HMS[0]).gather(ts % 86400)


def _strings(t: _Tables) -> list[pl.Expr]:
    """Event codes → the text of each field."""

    def look(table: pl.Series | Sequence[str], col: str) -> pl.Expr:
        return pl.lit(pl.Series(table, dtype=pl.String)).gather(pl.col(col)).alias(col)

    return [
        pl.col("ts"),
        look(t.hosts, "host"),
        look(t.users, "user"),
        look(_METHODS, "method"),
        look(t.paths, "path"),
        look(_PROTOS, "proto"),
        pl.col("status"),
        pl.col("size"),
        look(t.referers, "referer"),
        look(_UAS, "ua"),
    ]


def _line(
    host: pl.Expr, user: pl.Expr, stamp: pl.Expr, request: pl.Expr, status: pl.Expr,
    size: pl.Expr, referer: pl.Expr, ua: pl.Expr, prefix: pl.Expr | None = None,
    suffix: pl.Expr | None = None,
) -> pl.Expr:  # fmt: skip
    """%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" and the newline."""
    parts = [] if prefix is None else [prefix]
    parts += [
        host, pl.lit(" - "), user, pl.lit(" ["), stamp, pl.lit(f' {SERVER_TZ}] "'), request,
        pl.lit('" '), status.cast(pl.String), pl.lit(" "), size.cast(pl.String), pl.lit(' "'),
        referer, pl.lit('" "'), ua, pl.lit('"'),
    ]  # fmt: skip
    if suffix is not None:
        parts.append(suffix)
    parts.append(pl.lit("\n"))
    return pl.concat_str(parts)


def _format_lines(codes: pl.DataFrame, cal: _Calendar, t: _Tables) -> pl.Series:
    day, hms = _stamp_parts(pl.col("ts"), cal)
    request = pl.concat_str([pl.col("method"), pl.col("path"), pl.col("proto")], separator=" ")
    line = _line(
        pl.col("host"), pl.col("user"), pl.concat_str([day, hms]), request, pl.col("status"),
        pl.col("size"), pl.col("referer"), pl.col("ua"),
    )  # fmt: skip
    return (
        codes.lazy().select(_strings(t)).select(line=line).collect(engine="streaming").to_series()
    )


def _malformed(picked: pl.DataFrame, cal: _Calendar, ipv6: pl.Series) -> pl.Series:
    """Rewrite the chosen events (text columns plus ``kind``, ``variant``) as edge-case lines."""
    k, v = pl.col("kind"), pl.col("variant")
    dashed = pl.col("host").str.replace_all(".", "-", literal=True)
    rdns = pl.concat_str([pl.lit("host-"), dashed, pl.lit(".dynamic.example.net")])
    for _, bot_ua, _, suffix in _BOTS:  # crawlers resolve to their operator's domain
        if suffix:
            name = pl.concat_str([pl.lit("crawl-"), dashed, pl.lit(f".{suffix}")])
            rdns = pl.when(pl.col("ua") == bot_ua).then(name).otherwise(rdns)
    host = (
        pl.when(k == "ipv6_client").then(pl.lit(ipv6).gather(pl.col("ts") % ipv6.len()))
        .when(k == "hostname_client").then(rdns)  # HostnameLookups On
        .otherwise(pl.col("host"))
    )  # fmt: skip
    no_request = (k == "request_dash") | (k == "request_empty")
    path = (
        pl.when((k == "escaped_quote") & (v == 0)).then(pl.lit(r"/search?q=\"taladro\""))
        .when((k == "non_utf8") & (v == 0)).then(pl.lit("/search?q=cami\ue000n"))
        .otherwise(pl.col("path"))
    )  # fmt: skip
    request = (
        pl.when(k == "request_dash").then(pl.lit("-"))  # client closed before sending one
        .when(k == "request_empty").then(pl.lit(""))
        .otherwise(pl.concat_str([pl.col("method"), path, pl.col("proto")], separator=" "))
    )  # fmt: skip
    status = (
        pl.when(k == "request_dash").then(408)
        .when(k == "request_empty").then(400)
        .when(k == "size_dash").then(304)  # Apache writes "-" for an empty body
        .otherwise(pl.col("status"))
    )  # fmt: skip
    size = (
        pl.when((k == "request_dash") | (k == "size_dash")).then(pl.lit("-"))
        .when(k == "request_empty").then(pl.lit("0"))
        .otherwise(pl.col("size").cast(pl.String))
    )  # fmt: skip
    referer = pl.when(no_request).then(pl.lit("-")).otherwise(pl.col("referer"))
    ua = (
        pl.when(no_request).then(pl.lit("-"))
        .when((k == "escaped_quote") & (v == 1))
        .then(pl.concat_str([pl.lit('\\"'), pl.col("ua"), pl.lit('\\"')]))
        .when((k == "non_utf8") & (v == 1)).then(pl.concat_str([pl.col("ua"), pl.lit(" \ue001")]))
        .otherwise(pl.col("ua"))
    )  # fmt: skip
    day, hms = _stamp_parts(pl.col("ts"), cal)
    stamp = (
        pl.when((k == "invalid_timestamp") & (v == 0))
        .then(pl.concat_str([pl.lit("31/Feb/"), day.str.slice(7), hms]))
        .when(k == "invalid_timestamp")
        .then(pl.concat_str([day, pl.lit("25"), hms.str.slice(2)]))
        .otherwise(pl.concat_str([day, hms]))
    )
    prefix = pl.when(k == "vhost_prefix").then(pl.lit(f"{VHOST} ")).otherwise(pl.lit(""))
    suffix = (
        pl.when((k == "extra_field") & (v == 0)).then(pl.lit(' "-"'))
        .when(k == "extra_field").then(pl.format(" 0.{}", pl.col("ts") % 900 + 100))  # time taken
        .otherwise(pl.lit(""))
    )  # fmt: skip
    line = _line(host, pl.col("user"), stamp, request, status, size, referer, ua, prefix, suffix)
    # A writer that died mid-line: cut inside the user agent, so no closing quote.
    keep = line.str.len_chars() - 2 - pl.col("ua").str.len_chars() // 2
    cut = pl.concat_str([line.str.slice(0, keep), pl.lit("\n")])
    return picked.select(
        pl.when(k == "truncated").then(cut).when(k == "blank").then(pl.lit("\n")).otherwise(line)
    ).to_series()


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------
def _file_names(cal: _Calendar) -> list[str]:
    names, gz = [], 0
    for i in range(cal.n_days):
        day = cal.first_day + dt.timedelta(days=i)
        if (cal.as_of - day).days <= GZIP_AFTER_DAYS:
            names.append(f"access-{day:%Y-%m-%d}.log")
            continue
        rotated = gz % LOGROTATE_EVERY == LOGROTATE_EVERY - 1
        names.append(f"access.log-{day:%Y%m%d}.gz" if rotated else f"access-{day:%Y-%m-%d}.log.gz")
        gz += 1
    return names


def _write(path: Path, parts: Sequence[bytes | memoryview]) -> int:
    if path.name.endswith(".gz"):
        # wbits=31: a gzip member with mtime 0 and no file name, so the bytes are reproducible.
        # ISA-L deflate: about 5x zlib's speed at level 1, still plain gzip for every reader.
        compressor = isal_zlib.compressobj(1, isal_zlib.DEFLATED, 31)
        parts = [*(compressor.compress(part) for part in parts), compressor.flush()]
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as f:
        f.writelines(parts)
    os.replace(tmp, path)  # a file sensor never sees a half-written log
    return sum(len(part) for part in parts)


def _text_bytes(lines: pl.Series) -> tuple[memoryview, np.ndarray]:
    """The lines' text and each line's byte offset, straight from Arrow's buffers."""
    arr = lines.to_arrow(compat_level=pl.CompatLevel.oldest())  # large_string: one buffer
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    _, offsets, data = arr.buffers()
    if data is None:  # no lines at all
        return memoryview(b""), np.zeros(len(arr) + 1, dtype=np.int64)
    offsets = np.frombuffer(offsets, dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    return memoryview(data), offsets


def _day_parts(
    text: memoryview, offsets: np.ndarray, lines: pl.Series, raw_at: np.ndarray
) -> list[bytes | memoryview]:
    """The lines as buffers to write in turn; lines at ``raw_at`` get non-UTF-8 bytes."""
    parts: list[bytes | memoryview] = []
    cur = 0
    for p in raw_at.tolist():  # a handful of lines, not all
        line = lines.slice(p, 1).cast(pl.Binary).item()
        for placeholder, raw in _NON_UTF8_PLACEHOLDERS:
            line = line.replace(placeholder.encode(), raw)
        parts += [text[offsets[cur] : offsets[p]], line]
        cur = p + 1
    parts.append(text[offsets[cur] : offsets[len(lines)]])
    return parts


def _clear_old_logs(out_dir: Path) -> None:
    """Drop logs of an earlier run: a day must not be there twice under two names."""
    for path in out_dir.iterdir():
        if path.is_file() and _FILE_PATTERN.match(path.name):
            path.unlink()


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Plan:
    """Everything decided before the first month is generated."""

    config: GenerationConfig
    cal: _Calendar
    users: _Users
    products: _Products
    orders: _Orders
    browse: _Browse
    pools: _Pools
    tables: _Tables
    # Per month: first session of orders/browse, lines of anonymous/bot/health traffic and
    # edge cases to inject.
    order_k: np.ndarray
    browse_k: np.ndarray
    anon_k: np.ndarray
    bot_k: np.ndarray
    health_k: np.ndarray
    malformed_k: np.ndarray


def _plan(config: GenerationConfig, platform: PlatformLike) -> _Plan:
    cal = _Calendar.of(config)
    products = _build_products(config, platform.tables["products"])
    users = _build_users(config, platform.user_profiles)
    orders = _plan_orders(config, platform, users, products)
    lam_extra, browse_target, bot_lines, health_lines = _plan_budget(config, orders, users)
    orders = replace(orders, n_extra=_rng(config, _S_ORDERS, 1).poisson(lam_extra, orders.n))
    browse = _plan_browse(config, users, cal, browse_target)
    fixed = orders.fixed_lines() + int(orders.n_extra.sum()) + browse.lines()
    # Anonymous visitors take up the slack, so the total lands on log_lines.
    anon_lines = max(config.scale.log_lines - fixed - bot_lines - health_lines, 0)
    pools = _build_pools(config, anon_lines)
    day_w = cal.day_weights((0.7, 0.6), 0.3)
    month_w = np.array([day_w[slice(*cal.chunk_days(k))].sum() for k in range(cal.n_chunks)])
    rate = config.anomalies.malformed_line
    n_malformed = max(round(rate * config.scale.log_lines), len(MALFORMED_KINDS)) if rate > 0 else 0
    months = np.arange(cal.n_chunks + 1)
    return _Plan(
        config=config,
        cal=cal,
        users=users,
        products=products,
        orders=orders,
        browse=browse,
        pools=pools,
        tables=_Tables.of(users, pools, products),
        order_k=np.searchsorted(cal.chunk_of(orders.t0), months),
        browse_k=np.searchsorted(cal.chunk_of(browse.t0), months),
        anon_k=_split(anon_lines, month_w),
        bot_k=_split(bot_lines, month_w),
        health_k=_split(health_lines, month_w),
        malformed_k=_split(n_malformed, month_w),
    )


def _month_events(
    plan: _Plan, k: int, rng: np.random.Generator, carry: _Events
) -> tuple[_Events, _Events, int]:
    """Month ``k``'s events sorted by time, the ones that belong to later months, and how
    many fell before the first day."""
    p = plan
    cal, t = p.cal, p.tables
    events = _concat(
        [
            carry,
            _order_events(rng, p.orders, p.users, p.products, p.order_k[k], p.order_k[k + 1]),
            _browse_events(rng, p.browse, p.users, p.products, p.browse_k[k], p.browse_k[k + 1]),
            _anon_events(rng, cal, k, int(p.anon_k[k]), t, p.pools, p.products),
            _bot_events(rng, cal, k, int(p.bot_k[k]), t, p.products),
            _health_events(rng, cal, k, int(p.health_k[k]), t),
        ]
    )
    ts = events["ts"]
    later = ts >= cal.chunk_bounds[k + 1]
    keep = np.flatnonzero((ts >= cal.start) & ~later)
    # Stable: events of the same second stay in the order they were made.
    order = keep[np.argsort(ts[keep], kind="stable")]
    early = len(ts) - len(keep) - int(later.sum())
    carry = _take(events, np.flatnonzero(later))
    # Column by column, letting go of each unsorted one: one month is ~8M events at xlarge.
    return {f: events.pop(f)[order] for f in list(events)}, carry, early


def _edge_cases(
    plan: _Plan, k: int, rng: np.random.Generator, injectable: np.ndarray, first: int
) -> np.ndarray:
    """Choose month ``k``'s share of edge cases; per event, its number in the run's sequence
    of edge cases (kinds in turn, so the ``first``-th is this month's first), else -1."""
    # Only anonymous and crawler lines: the users' story (logins, devices, countries) stays exact.
    eligible = np.flatnonzero(injectable)
    take = min(int(plan.malformed_k[k]), len(eligible))
    chosen = np.sort(rng.choice(eligible, take, replace=False))
    seq = np.full(len(injectable), -1)
    seq[chosen] = first + np.arange(take)
    return seq


def _render(plan: _Plan, codes: pl.DataFrame, seq: np.ndarray) -> pl.Series:
    """The lines of ``codes``, those with ``seq`` >= 0 rewritten as edge cases."""
    lines = _format_lines(codes, plan.cal, plan.tables)
    chosen = np.flatnonzero(seq >= 0)
    if len(chosen):
        n_kinds = len(MALFORMED_KINDS)
        picked = (
            codes[chosen]
            .select(_strings(plan.tables))
            .with_columns(
                kind=pl.Series(MALFORMED_KINDS, dtype=pl.String).gather(seq[chosen] % n_kinds),
                variant=pl.Series((seq[chosen] // n_kinds) % 2),
            )
        )
        lines = lines.scatter(chosen, _malformed(picked, plan.cal, plan.tables.ipv6))
    return lines


def generate_weblogs(
    config: GenerationConfig, platform: PlatformLike, out_dir: Path
) -> WeblogSummary:
    """Write one access log per server-local day from ``config.first_day`` to ``config.as_of``.

    Access logs of an earlier run in ``out_dir`` are replaced. Same config, same bytes.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear_old_logs(out_dir)
    plan = _plan(config, platform)
    cal = plan.cal
    names = _file_names(cal)
    per_kind = np.zeros(len(MALFORMED_KINDS), dtype=np.int64)
    lines_total = bytes_total = dropped = 0
    carry = _no_events()
    pending: deque[Future[int]] = deque()
    n_kinds = len(MALFORMED_KINDS)
    non_utf8 = MALFORMED_KINDS.index("non_utf8")
    rejected = np.array([k in REJECTED_KINDS for k in MALFORMED_KINDS])
    utc_cutoff = cal.end + SERVER_UTC_OFFSET_S  # the as-of day's end (UTC), in server time
    after_cutoff = 0
    # the compressor releases the GIL: compress and write in a thread while the next days are built.
    with ThreadPoolExecutor(max_workers=1) as writer:
        for k in range(cal.n_chunks):
            rng = _rng(config, _S_CHUNK, k)
            events, carry, early = _month_events(plan, k, rng, carry)
            dropped += early
            seq = _edge_cases(plan, k, rng, events["injectable"], int(per_kind.sum()))
            per_kind += np.bincount(seq[seq >= 0] % n_kinds, minlength=n_kinds)
            late = events["ts"] >= utc_cutoff
            after_cutoff += int((late & ~((seq >= 0) & rejected[seq % n_kinds])).sum())

            d0, d1 = cal.chunk_days(k)
            bounds = np.searchsorted(events["ts"], cal.start + np.arange(d0, d1 + 1) * 86400)
            for d in range(d0, d1):
                a, b = int(bounds[d - d0]), int(bounds[d - d0 + 1])
                # Text a day at a time: a month of it is gigabytes at the xlarge scale.
                codes = pl.DataFrame({f: events[f][a:b] for f in _FIELDS})
                lines = _render(plan, codes, seq[a:b])
                raw_at = np.flatnonzero((seq[a:b] >= 0) & (seq[a:b] % n_kinds == non_utf8))
                text, offsets = _text_bytes(lines)
                if len(pending) >= 4:  # bounded: a few days at most wait for zlib
                    bytes_total += pending.popleft().result()
                parts = _day_parts(text, offsets, lines, raw_at)
                pending.append(writer.submit(_write, out_dir / names[d], parts))
                lines_total += b - a
            del events, seq  # let go of this month's events before the next is built
        while pending:
            bytes_total += pending.popleft().result()
    return WeblogSummary(
        files=cal.n_days,
        lines=lines_total,
        malformed_lines=dict(zip(MALFORMED_KINDS, per_kind.tolist(), strict=True)),
        bytes_written=bytes_total,
        events_out_of_range=dropped + len(carry["ts"]),  # carry: after the as-of day
        lines_after_cutoff=after_cutoff,
    )
