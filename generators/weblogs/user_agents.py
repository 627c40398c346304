"""User agents: real strings of current browsers by device kind, crawlers with the networks
they really come from, vulnerability scanners and the load balancer's health checks, and the
table of all of them that events point into."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

_DESKTOP, _PHONE, _TABLET = 0, 1, 2
_KHTML = "AppleWebKit/537.36 (KHTML, like Gecko)"
_SAFARI_WEBKIT = "AppleWebKit/605.1.15 (KHTML, like Gecko)"
_WINDOWS = "Windows NT 10.0; Win64; x64"
_MAC_OS = "Macintosh; Intel Mac OS X 10_15_7"


class _BrowserAgent(NamedTuple):
    device: int  # _DESKTOP, _PHONE or _TABLET
    weight: float  # within its device kind
    text: str


class _Crawler(NamedTuple):
    weight: float
    user_agent: str
    prefixes: tuple[str, ...]  # the real networks it crawls from
    reverse_dns: str  # the domain its addresses resolve to, or ""


def _chrome(platform: str, version: str, mobile: bool = False) -> str:
    tail = "Mobile Safari/537.36" if mobile else "Safari/537.36"
    return f"Mozilla/5.0 ({platform}) {_KHTML} Chrome/{version} {tail}"


def _android(version: int, model: str, chrome: str, mobile: bool = True) -> str:
    return _chrome(f"Linux; Android {version}; {model}", chrome, mobile)


def _apple(device: str, ios: str, version: str, browser: str = "Version") -> str:
    os_name = "iPhone OS" if device == "iPhone" else "OS"
    return (
        f"Mozilla/5.0 ({device}; CPU {os_name} {ios} like Mac OS X) {_SAFARI_WEBKIT} "
        f"{browser}/{version} Mobile/15E148 Safari/604.1"
    )


def _firefox(platform: str, version: int) -> str:
    return f"Mozilla/5.0 ({platform}; rv:{version}.0) Gecko/20100101 Firefox/{version}.0"


_BROWSER_AGENTS: tuple[_BrowserAgent, ...] = (
    _BrowserAgent(_DESKTOP, 20, _chrome(_WINDOWS, "131.0.0.0")),
    _BrowserAgent(_DESKTOP, 12, _chrome(_WINDOWS, "133.0.0.0")),
    _BrowserAgent(_DESKTOP, 8, _chrome(_WINDOWS, "137.0.0.0")),
    _BrowserAgent(_DESKTOP, 8, _chrome(_WINDOWS, "131.0.0.0") + " Edg/131.0.0.0"),
    _BrowserAgent(_DESKTOP, 5, _chrome(_WINDOWS, "136.0.0.0") + " Edg/136.0.0.0"),
    _BrowserAgent(_DESKTOP, 5, _firefox(_WINDOWS, 133)),
    _BrowserAgent(_DESKTOP, 3, _firefox(_WINDOWS, 139)),
    _BrowserAgent(_DESKTOP, 1, _chrome(_WINDOWS, "130.0.0.0") + " OPR/115.0.0.0"),
    _BrowserAgent(_DESKTOP, 6, _chrome(_MAC_OS, "131.0.0.0")),
    _BrowserAgent(
        _DESKTOP, 5, f"Mozilla/5.0 ({_MAC_OS}) {_SAFARI_WEBKIT} Version/18.1 Safari/605.1.15"
    ),
    _BrowserAgent(
        _DESKTOP, 2, f"Mozilla/5.0 ({_MAC_OS}) {_SAFARI_WEBKIT} Version/17.6 Safari/605.1.15"
    ),
    _BrowserAgent(_DESKTOP, 2, _firefox("Macintosh; Intel Mac OS X 10.15", 133)),
    _BrowserAgent(_DESKTOP, 2, _chrome("X11; Linux x86_64", "131.0.0.0")),
    _BrowserAgent(_DESKTOP, 1.5, _firefox("X11; Ubuntu; Linux x86_64", 133)),
    _BrowserAgent(_DESKTOP, 1, _chrome("X11; CrOS x86_64 14541.0.0", "131.0.0.0")),
    # Chrome's reduced UA hides the Android model ("Android 10; K") on most phones today.
    _BrowserAgent(_PHONE, 18, _android(10, "K", "131.0.0.0")),
    _BrowserAgent(_PHONE, 8, _android(10, "K", "137.0.0.0")),
    _BrowserAgent(_PHONE, 5, _android(14, "SM-S911B", "131.0.6778.81")),
    _BrowserAgent(_PHONE, 6, _android(14, "SM-A546B", "131.0.6778.81")),
    _BrowserAgent(_PHONE, 6, _android(14, "SM-A155M", "130.0.6723.102")),
    _BrowserAgent(_PHONE, 2, _android(13, "SM-G991B", "129.0.6668.100")),
    _BrowserAgent(_PHONE, 2, _android(14, "Pixel 8", "131.0.6778.81")),
    _BrowserAgent(_PHONE, 1.5, _android(14, "Pixel 7a", "131.0.6778.81")),
    _BrowserAgent(_PHONE, 4, _android(13, "moto g54 5G", "130.0.0.0")),
    _BrowserAgent(_PHONE, 3, _android(13, "moto e13", "130.0.0.0")),
    _BrowserAgent(_PHONE, 2, _android(14, "motorola edge 40", "131.0.0.0")),
    _BrowserAgent(_PHONE, 3, _android(13, "Redmi Note 12", "130.0.0.0")),
    _BrowserAgent(_PHONE, 2, _android(13, "23053RN02L", "130.0.0.0")),
    _BrowserAgent(_PHONE, 10, _apple("iPhone", "18_1", "18.1")),
    _BrowserAgent(_PHONE, 5, _apple("iPhone", "17_6", "17.6")),
    _BrowserAgent(_PHONE, 2, _apple("iPhone", "18_1", "131.0.6778.73", browser="CriOS")),
    _BrowserAgent(
        _PHONE,
        2,
        f"Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S911B) {_KHTML} SamsungBrowser/26.0 "
        "Chrome/122.0.0.0 Mobile Safari/537.36",
    ),
    _BrowserAgent(
        _PHONE, 1, "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0"
    ),
    _BrowserAgent(_TABLET, 5, _apple("iPad", "17_6", "17.6")),
    _BrowserAgent(_TABLET, 4, _apple("iPad", "18_1", "18.1")),
    _BrowserAgent(
        _TABLET, 3, _android(10, "K", "131.0.0.0", mobile=False)
    ),  # no "Mobile": a tablet
    _BrowserAgent(_TABLET, 2, _android(14, "SM-X710", "131.0.0.0", mobile=False)),
    _BrowserAgent(_TABLET, 2, _android(14, "SM-X205", "130.0.0.0", mobile=False)),
    _BrowserAgent(_TABLET, 1, _android(12, "Lenovo TB-X606F", "129.0.0.0", mobile=False)),
)
# Device slots of a user: the first is usually the office desktop, the second a phone.
# Per slot, the chances of a desktop, a phone and a tablet.
DEVICE_KINDS_BY_SLOT = ((0.80, 0.16, 0.04), (0.20, 0.68, 0.12), (0.25, 0.35, 0.40))
ANONYMOUS_DEVICE_KINDS = (0.45, 0.48, 0.07)  # anonymous visitors are more often on phones
SCANNER_AGENTS = ("python-requests/2.32.3", "Go-http-client/1.1", "Mozilla/5.0 zgrab/0.x")
HEALTH_CHECK_AGENTS = ("curl/8.5.0", "curl/7.81.0")

_GOOGLEBOT_PREFIXES = ("66.249.64.0/19",)
CRAWLERS: tuple[_Crawler, ...] = (
    _Crawler(22, "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            _GOOGLEBOT_PREFIXES, "googlebot.com"),
    _Crawler(14, "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
                "(KHTML, like Gecko) Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; "
                "Googlebot/2.1; +http://www.google.com/bot.html)",
            _GOOGLEBOT_PREFIXES, "googlebot.com"),
    _Crawler(15, "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
                "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
            ("157.55.39.0/24", "207.46.13.0/24", "40.77.167.0/24"), "search.msn.com"),
    _Crawler(10, "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
            ("54.36.148.0/23",), "a.ahrefs.com"),
    _Crawler(8, "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
            ("85.208.96.0/22",), "bot.semrush.com"),
    _Crawler(5, "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
            ("5.255.231.0/24", "213.180.203.0/24"), "spider.yandex.com"),
    _Crawler(8, "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; GPTBot/1.2; "
               "+https://openai.com/gptbot", ("20.171.206.0/24",), ""),
    _Crawler(5, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, "
               "like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; "
               "+http://www.apple.com/go/applebot)",
            ("17.241.75.0/24",), "applebot.apple.com"),
    _Crawler(4, "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            ("69.171.224.0/19", "173.252.64.0/19"), "fbsv.net"),
    _Crawler(3, "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
            ("20.191.45.0/24",), ""),
    _Crawler(3, "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
            ("220.181.108.0/24", "116.179.32.0/24"), "crawl.baidu.com"),
)  # fmt: skip

# The table that events' user agent codes point into, and where each group starts in it.
USER_AGENTS: tuple[str, ...] = (
    *(agent.text for agent in _BROWSER_AGENTS),
    *SCANNER_AGENTS,
    *(crawler.user_agent for crawler in CRAWLERS),
    *HEALTH_CHECK_AGENTS,
)
FIRST_SCANNER_AGENT = len(_BROWSER_AGENTS)
FIRST_CRAWLER_AGENT = FIRST_SCANNER_AGENT + len(SCANNER_AGENTS)
FIRST_HEALTH_CHECK_AGENT = FIRST_CRAWLER_AGENT + len(CRAWLERS)


def pick_browser_agents(rng: np.random.Generator, device: np.ndarray) -> np.ndarray:
    """A browser user agent of each requested device kind (desktop, phone, tablet), by weight."""
    devices = np.array([agent.device for agent in _BROWSER_AGENTS])
    weights = np.array([agent.weight for agent in _BROWSER_AGENTS], dtype=float)
    out = np.empty(len(device), dtype=np.int64)
    for kind in (_DESKTOP, _PHONE, _TABLET):
        ids = np.flatnonzero(devices == kind)
        mask = device == kind
        out[mask] = rng.choice(ids, int(mask.sum()), p=weights[ids] / weights[ids].sum())
    return out
