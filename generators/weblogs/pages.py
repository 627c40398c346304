"""The site's pages and how they answer: fixed pages, product pages with their popularity,
and the tables of request paths and referers that events' codes point into."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import polars as pl

from generators.config import GenerationConfig
from generators.weblogs.streams import PRODUCTS_STREAM, random_stream

SITE = "https://www.example.com"


class _Page(NamedTuple):
    """A page that is not a product page."""

    path: str
    status: int
    size: int  # typical bytes
    dynamic: bool  # whether its size varies a little per request


_PAGES: tuple[_Page, ...] = (
    _Page("/", 200, 31_840, True),
    _Page("/login", 200, 5_312, True),
    _Page("/orders", 200, 15_200, True),
    _Page("/account", 200, 9_400, True),
    _Page("/cart", 200, 11_050, True),
    _Page("/search?q=tornillos", 200, 28_500, True),
    _Page("/search?q=guantes+de+nitrilo", 200, 26_100, True),
    _Page("/search?q=cable+unipolar", 200, 27_300, True),
    _Page("/search?q=pintura+latex", 200, 25_900, True),
    _Page("/search?q=taladro", 200, 29_400, True),
    _Page("/search?q=cinta+aisladora", 200, 24_800, True),
    _Page("/static/css/app.4f1c2a9e.css", 200, 48_213, False),
    _Page("/static/js/app.9b7e3d11.js", 200, 183_420, False),
    _Page("/static/js/vendor.1a2b3c4d.js", 200, 402_311, False),
    _Page("/static/img/logo.svg", 200, 5_120, False),
    _Page("/favicon.ico", 200, 15_086, False),
    _Page("/robots.txt", 200, 214, False),
    _Page("/sitemap.xml", 200, 96_004, False),
    _Page("/wp-login.php", 404, 153, False),
    _Page("/.env", 404, 153, False),
    _Page("/xmlrpc.php", 404, 153, False),
    _Page("/phpmyadmin/", 404, 153, False),
    _Page("/.git/config", 404, 153, False),
    _Page("/apple-touch-icon.png", 404, 153, False),
    _Page("/catalogo-2019.pdf", 404, 153, False),
    _Page("/health", 200, 15, False),
)
PAGE_INDEX = {page.path: i for i, page in enumerate(_PAGES)}
SEARCH_PAGES = np.array([i for i, page in enumerate(_PAGES) if page.path.startswith("/search")])
STATIC_PAGES = np.array(
    [i for i, page in enumerate(_PAGES) if page.path.startswith(("/static", "/fav"))]
)
PROBE_PAGES = np.array([i for i, page in enumerate(_PAGES) if page.status == 404])
# Page codes that are not one _PAGES row: a product page, and any search, static file or probe.
PRODUCT_PAGE, ANY_SEARCH, ANY_STATIC_FILE, ANY_PROBE = -1, -2, -3, -4
_PAGE_STATUS = np.array([page.status for page in _PAGES])
_PAGE_SIZE = np.array([page.size for page in _PAGES])
_PAGE_DYNAMIC = np.array([page.dynamic for page in _PAGES])

# Where visitors arrive from, with weights.
ENTRY_REFERERS = (
    ("-", 40), ("https://www.google.com/", 30), ("https://www.google.com.ar/", 14),
    ("https://www.bing.com/", 5), ("https://duckduckgo.com/", 3),
    ("https://www.facebook.com/", 5), ("https://l.instagram.com/", 3),
)  # fmt: skip

# String tables: events are integer codes into these.
METHODS = ("GET", "POST")
GET, POST = 0, 1
PROTOCOLS = ("HTTP/1.1", "HTTP/2.0")
PATHS = (
    *(page.path for page in _PAGES),
    "/cart/items",
    "/checkout",
    "/login?next=/orders",
    "/login?next=%2Fcart",
)
CART_ITEMS_PATH, CHECKOUT_PATH = len(_PAGES), len(_PAGES) + 1
LOGIN_PATHS = np.array(
    [PAGE_INDEX["/login"], PAGE_INDEX["/login"], len(_PAGES) + 2, len(_PAGES) + 3]
)
_FIRST_PRODUCT_PATH = len(PATHS)  # then /products/<id> per product
REFERERS = (
    "-",
    f"{SITE}/",
    f"{SITE}/login",
    f"{SITE}/cart",
    f"{SITE}/orders",
    *(f"{SITE}{_PAGES[i].path}" for i in SEARCH_PAGES),
    *(referer for referer, _ in ENTRY_REFERERS[1:]),
)
REFERER_NONE, REFERER_HOME, REFERER_LOGIN, REFERER_CART, REFERER_ORDERS = range(5)
SEARCH_REFERERS = 5 + np.arange(len(SEARCH_PAGES))
# As ENTRY_REFERERS.
ENTRY_REFERER_CODES = np.array([REFERER_NONE, *range(5 + len(SEARCH_PAGES), len(REFERERS))])
FIRST_PRODUCT_REFERER = len(REFERERS)  # then the product pages


@dataclass(frozen=True)
class Products:
    """The products whose pages can be viewed, and how popular each is."""

    ids: np.ndarray  # sorted; events refer to products by position here
    popularity: np.ndarray  # chance of each to be viewed: a few products get most of the views

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if len(self.ids) == 0:
            return np.zeros(n, dtype=np.int64)
        return rng.choice(len(self.ids), n, p=self.popularity)


def build_products(config: GenerationConfig, products: pl.DataFrame) -> Products:
    """The platform's products, each with a random rank of popularity."""
    ids = np.sort(products["product_id"].drop_nulls().unique().to_numpy().astype(np.int64))
    rank = random_stream(config, PRODUCTS_STREAM).permutation(len(ids))
    weight = 1.0 / (rank + 5.0) ** 0.9
    return Products(ids, weight / weight.sum() if len(ids) else weight)


def pick_within(
    rng: np.random.Generator, page: np.ndarray, kind: int, choices: np.ndarray
) -> np.ndarray:
    """``page`` with each ``kind`` code (ANY_SEARCH, ...) replaced by one of ``choices``."""
    return np.where(page == kind, rng.choice(choices, len(page)), page)


def page_responses(
    rng: np.random.Generator,
    page: np.ndarray,
    products: Products,
    position: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Path code, status and size per event; ``page`` is a _PAGES index or PRODUCT_PAGE, and
    product pages show ``position`` (product positions) or else popular products."""
    if len(products.ids) == 0:
        page = np.where(page == PRODUCT_PAGE, PAGE_INDEX["/"], page)
    is_product = page == PRODUCT_PAGE
    position = products.sample(rng, len(page)) if position is None else position
    row = np.where(is_product, 0, page)
    path = np.where(is_product, _FIRST_PRODUCT_PATH + position, page)
    status = _PAGE_STATUS[row]
    # Product pages differ by product; dynamic pages by a few percent per request.
    product_id = products.ids[position] if len(products.ids) else position
    typical = np.where(is_product, 21_000 + (product_id * 2_654_435_761) % 15_000, _PAGE_SIZE[row])
    dynamic = _PAGE_DYNAMIC[row] | is_product
    varied = (typical * rng.uniform(0.97, 1.03, len(page))).astype(np.int64)
    size = np.where(dynamic, varied, typical)
    # Now and then the application fails.
    failed = dynamic & (rng.random(len(page)) < 0.0015)
    return path, np.where(failed, 502, status), np.where(failed, 559, size)


def product_views(
    rng: np.random.Generator, position: np.ndarray, products: Products
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Path code, status and size for views of the given product positions."""
    return page_responses(rng, np.full(len(position), PRODUCT_PAGE), products, position)
