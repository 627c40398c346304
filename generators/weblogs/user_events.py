"""Events of logged-in users: the logins that open their sessions, the orders they place
(product views, cart additions, the checkout at ``ordered_at``) and their browsing."""

from __future__ import annotations

import numpy as np

from generators.weblogs.events import (
    Events,
    concat_events,
    expand_sessions,
    make_events,
    no_events,
)
from generators.weblogs.pages import (
    ANY_SEARCH,
    CART_ITEMS_PATH,
    CHECKOUT_PATH,
    FIRST_PRODUCT_REFERER,
    GET,
    LOGIN_PATHS,
    PAGE_INDEX,
    POST,
    PRODUCT_PAGE,
    REFERER_CART,
    REFERER_HOME,
    REFERER_LOGIN,
    REFERER_ORDERS,
    SEARCH_PAGES,
    SEARCH_REFERERS,
    Products,
    page_responses,
    pick_within,
    product_views,
)
from generators.weblogs.plan import Browse, Orders
from generators.weblogs.population import Users

# Per session: user, host, user_agent and protocol, the columns its events share.
_SessionColumns = dict[str, np.ndarray]

_BROWSE_PAGES = np.array(
    [PRODUCT_PAGE, PAGE_INDEX["/orders"], PAGE_INDEX["/account"], PAGE_INDEX["/cart"],
     PAGE_INDEX["/"], ANY_SEARCH]
)  # fmt: skip
_BROWSE_PAGE_P = np.array([0.76, 0.08, 0.03, 0.05, 0.03, 0.05])


def _session_events(
    per_session: _SessionColumns, session: np.ndarray, **columns: np.ndarray | int
) -> Events:
    """A batch of users' events, one per entry of ``session`` (indexes into ``per_session``)."""
    shared = {field: values[session] for field, values in per_session.items()}
    return make_events(len(session), False, **columns, **shared)


def _open_sessions(
    rng: np.random.Generator,
    users: Users,
    start_at: np.ndarray,
    uidx: np.ndarray,
    failed: np.ndarray,
) -> tuple[list[Events], _SessionColumns]:
    """The logins that open users' sessions, and per session the user, address, device."""
    n = len(start_at)
    per_session = {
        "user": uidx + 1,
        "host": users.session_addresses(rng, uidx),
        "user_agent": users.session_devices(rng, uidx),
        "protocol": (rng.random(n) < 0.6).astype(np.int64),  # HTTP/2 for most browsers
    }
    ok200 = rng.random(n) < 0.12  # the single-page login answers 200 JSON, the form a 302
    login = make_events(
        n, False, time=start_at, method=POST, path=PAGE_INDEX["/login"],
        status=np.where(ok200, 200, 302), size=np.where(ok200, 87, 0), referer=REFERER_LOGIN,
        **per_session,
    )  # fmt: skip
    failed_at = np.flatnonzero(failed)
    n_failed = len(failed_at)
    failure = _session_events(
        per_session, failed_at, time=start_at[failed_at] - rng.integers(8, 90, n_failed),
        method=POST, path=LOGIN_PATHS[rng.integers(0, len(LOGIN_PATHS), n_failed)], status=401,
        size=5_480 + rng.integers(0, 40, n_failed), referer=REFERER_LOGIN,
    )  # fmt: skip
    return [failure, login], per_session


def _items_viewed_and_added(
    rng: np.random.Generator, orders: Orders, products: Products, first: int, end: int,
    per_session: _SessionColumns,
) -> list[Events]:  # fmt: skip
    """Each ordered item's product page, then its addition to the cart before checkout."""
    login_at, checkout_at = orders.login_at[first:end], orders.checkout_at[first:end]
    duration = checkout_at - login_at
    first_item, end_item = np.searchsorted(orders.item_session, [first, end])
    session = orders.item_session[first_item:end_item] - first
    position = orders.item_product[first_item:end_item]
    n = len(session)
    seen = login_at[session] + (rng.uniform(0.05, 0.8, n) * duration[session]).astype(np.int64)
    path, status, size = product_views(rng, position, products)
    came_from = np.array([REFERER_HOME, REFERER_ORDERS, *SEARCH_REFERERS])
    views = _session_events(
        per_session, session, time=seen, method=GET, path=path, status=status, size=size,
        referer=came_from[rng.integers(0, len(came_from), n)],
    )  # fmt: skip
    added = seen + np.minimum(rng.integers(5, 120, n), checkout_at[session] - seen - 1)
    additions = _session_events(
        per_session, session, time=added, method=POST, path=CART_ITEMS_PATH, status=201,
        size=310 + rng.integers(0, 60, n), referer=FIRST_PRODUCT_REFERER + position,
    )  # fmt: skip
    return [views, additions]


def _extra_views(
    rng: np.random.Generator, orders: Orders, products: Products, first: int, end: int,
    per_session: _SessionColumns,
) -> Events:  # fmt: skip
    """Products looked at during an order's session but not bought."""
    login_at = orders.login_at[first:end]
    duration = orders.checkout_at[first:end] - login_at
    session = np.repeat(np.arange(end - first), orders.extra_views[first:end])
    n = len(session)
    path, status, size = product_views(rng, products.sample(rng, n), products)
    seen = login_at[session] + (rng.uniform(0.02, 0.95, n) * duration[session]).astype(np.int64)
    return _session_events(
        per_session, session, time=seen, method=GET, path=path, status=status, size=size,
        referer=REFERER_HOME,
    )  # fmt: skip


def order_events(
    rng: np.random.Generator, orders: Orders, users: Users, products: Products, first: int,
    end: int,
) -> Events:  # fmt: skip
    """Login, product views, cart additions and the checkout at ordered_at, per order in
    ``first:end``."""
    if end <= first:
        return no_events()
    rows = slice(first, end)
    login_at, checkout_at = orders.login_at[rows], orders.checkout_at[rows]
    batches, per_session = _open_sessions(
        rng, users, login_at, orders.user[rows], orders.failed_login[rows]
    )
    batches += _items_viewed_and_added(rng, orders, products, first, end, per_session)
    batches.append(_extra_views(rng, orders, products, first, end, per_session))
    checkout = make_events(
        end - first, False, time=checkout_at, method=POST, path=CHECKOUT_PATH, status=302,
        size=0, referer=REFERER_CART, **per_session,
    )  # fmt: skip
    return concat_events([*batches, checkout])


def browse_events(
    rng: np.random.Generator, browse: Browse, users: Users, products: Products, first: int,
    end: int,
) -> Events:  # fmt: skip
    """Logged-in users looking at products, their orders and their account, per browse
    session in ``first:end``."""
    if end <= first:
        return no_events()
    start_at = browse.start_at[first:end]
    batches, per_session = _open_sessions(
        rng, users, start_at, browse.user[first:end], browse.failed_login[first:end]
    )
    counts = browse.page_count[first:end]
    gaps = 3 + rng.exponential(45, int(counts.sum())).astype(np.int64)
    session, _, offset = expand_sessions(counts, gaps)
    page = rng.choice(_BROWSE_PAGES, len(session), p=_BROWSE_PAGE_P)
    page = pick_within(rng, page, ANY_SEARCH, SEARCH_PAGES)
    path, status, size = page_responses(rng, page, products)
    pages = _session_events(
        per_session, session, time=start_at[session] + 2 + offset, method=GET, path=path,
        status=status, size=size, referer=REFERER_HOME,
    )  # fmt: skip
    return concat_events([*batches, pages])
