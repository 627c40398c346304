"""Who visits: the users of client companies with their devices and addresses, and the
addresses of anonymous visitors, crawlers and the internal network."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from generators.config import GenerationConfig
from generators.weblogs.addresses import (
    LACNIC_COUNTRIES,
    hosts_in_prefixes,
    sample_ips_by_country,
)
from generators.weblogs.streams import (
    ADDRESSES_STREAM,
    POOLS_STREAM,
    USERS_STREAM,
    random_stream,
)
from generators.weblogs.user_agents import CRAWLERS, DEVICE_KINDS_BY_SLOT, pick_browser_agents

# Countries of anonymous visitors: mostly Argentina and neighbours, then a long tail.
_ANONYMOUS_COUNTRIES = (
    ("AR", 50), ("BR", 7), ("US", 8), ("UY", 4), ("CL", 4), ("PY", 3), ("MX", 3), ("ES", 3),
    ("BO", 2), ("PE", 2), ("CO", 2), ("CN", 2), ("DE", 1.5), ("RU", 1.5), ("IN", 1.5),
    ("FR", 1), ("GB", 1), ("IT", 1), ("NL", 1), ("VN", 1), ("EC", 1), ("VE", 1), ("CA", 1),
    ("JP", 0.5), ("SG", 0.5),
)  # fmt: skip
ADDRESSES_PER_CRAWLER = 256
HEALTH_CHECK_ADDRESSES = ("10.0.1.15", "10.0.2.23", "192.168.10.5")


@dataclass(frozen=True)
class Users:
    """The platform's users, by row (``uidx``): their devices and addresses."""

    user_rows: pl.DataFrame  # user_id, uidx
    usernames: pl.Series  # "-" first, then by uidx: the %u column is ``uidx + 1``
    device_agents: np.ndarray  # (n, 3) user agents of the user's devices (USER_AGENTS codes)
    device_count: np.ndarray
    home_addresses: np.ndarray  # (n, 3) codes into address_pool
    address_count: np.ndarray
    travel_address: np.ndarray  # code into address_pool, -1 for users who do not travel
    address_pool: pl.Series

    @property
    def count(self) -> int:
        return len(self.device_count)

    def session_devices(self, rng: np.random.Generator, uidx: np.ndarray) -> np.ndarray:
        """Per session, one of the user's own devices (the first ones more often)."""
        slot = rng.choice(3, len(uidx), p=[0.6, 0.28, 0.12]) % self.device_count[uidx]
        return self.device_agents[uidx, slot]

    def session_addresses(self, rng: np.random.Generator, uidx: np.ndarray) -> np.ndarray:
        """Per session, a home IP; travellers use their travel IP in about 1 in 5 sessions."""
        slot = rng.choice(3, len(uidx), p=[0.65, 0.25, 0.10]) % self.address_count[uidx]
        away = (self.travel_address[uidx] >= 0) & (rng.random(len(uidx)) < 0.2)
        return np.where(away, self.travel_address[uidx], self.home_addresses[uidx, slot])


def _profiles(profiles: pl.DataFrame) -> pl.DataFrame:
    """User id, username and upper-case home and travel countries, by user id."""
    return profiles.select(
        pl.col("user_id").cast(pl.Int64),
        pl.col("username").cast(pl.String),
        pl.col("home_country").cast(pl.String).str.strip_chars().str.to_uppercase().fill_null("AR"),
        pl.col("travel_country").cast(pl.String).str.strip_chars().str.to_uppercase(),
    ).sort("user_id")


def _assign_addresses(
    config: GenerationConfig, home: np.ndarray, travel: np.ndarray, on_ipv6: np.ndarray
) -> tuple[np.ndarray, np.ndarray, pl.Series]:
    """Three home addresses per user (the first IPv6 for dual-stack users) and a travel
    address: codes into the pool of all of them, which comes last."""
    n = len(home)
    rng = random_stream(config, ADDRESSES_STREAM)
    # All countries at once: a few lookups instead of a few per country.
    countries = sorted(set(home.tolist()))
    v6_countries = sorted(set(home[on_ipv6].tolist()))
    travel_countries = sorted(set(travel.tolist()) - {""})
    home_ips = sample_ips_by_country(
        {country: 3 * int((home == country).sum()) for country in countries}, rng
    )
    v6_ips = sample_ips_by_country(
        {country: int((on_ipv6 & (home == country)).sum()) for country in v6_countries}, rng, True
    )
    travel_ips = sample_ips_by_country(
        {country: int((travel == country).sum()) for country in travel_countries}, rng
    )
    parts: list[list[str]] = []
    home_addresses = np.zeros((n, 3), dtype=np.int64)
    travel_address = np.full(n, -1, dtype=np.int64)
    used = 0
    for got, group, column in (
        (home_ips, home, home_addresses),
        (v6_ips, np.where(on_ipv6, home, ""), home_addresses[:, 0]),  # dual stack: IPv6 at home
        (travel_ips, travel, travel_address),
    ):
        for country in sorted(got):  # per country
            rows = np.flatnonzero(group == country)
            parts.append(got[country])
            codes = used + np.arange(len(got[country]))
            column[rows] = codes.reshape(len(rows), -1) if column.ndim == 2 else codes
            used += len(got[country])
    pool = pl.Series([address for part in parts for address in part], dtype=pl.String)
    return home_addresses, travel_address, pool


def build_users(config: GenerationConfig, profiles: pl.DataFrame) -> Users:
    """The platform's users with one to three devices and home addresses each."""
    users = _profiles(profiles)
    n = users.height
    rng = random_stream(config, USERS_STREAM)
    kind = np.stack([rng.choice(3, n, p=chances) for chances in DEVICE_KINDS_BY_SLOT], axis=1)
    device_agents = pick_browser_agents(rng, kind.ravel()).reshape(n, 3)
    device_count = rng.choice([1, 2, 3], n, p=[0.4, 0.4, 0.2])
    address_count = rng.choice([1, 2, 3], n, p=[0.45, 0.4, 0.15])
    home = users["home_country"].to_numpy().astype(str)
    travel = users["travel_country"].fill_null("").to_numpy().astype(str)
    on_ipv6 = np.isin(home, sorted(LACNIC_COUNTRIES)) & (rng.random(n) < 0.06)
    home_addresses, travel_address, pool = _assign_addresses(config, home, travel, on_ipv6)
    return Users(
        user_rows=pl.DataFrame({"user_id": users["user_id"], "uidx": np.arange(n, dtype=np.int64)}),
        usernames=pl.concat([pl.Series(["-"], dtype=pl.String), users["username"]]),
        device_agents=device_agents,
        device_count=device_count,
        home_addresses=home_addresses,
        address_count=address_count,
        travel_address=travel_address,
        address_pool=pool,
    )


@dataclass(frozen=True)
class AddressPools:
    """Addresses of anonymous visitors by country, of crawlers and of the internal network."""

    anonymous: pl.Series
    country_first: np.ndarray  # per country: first address in ``anonymous`` ...
    country_size: np.ndarray  # ... and how many
    country_weights: np.ndarray
    crawlers: pl.Series  # ADDRESSES_PER_CRAWLER addresses per crawler, in CRAWLERS order
    ipv6: pl.Series  # for the injected IPv6 lines

    def sample_anonymous(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` codes into ``anonymous``: a country by weight, then one of its addresses."""
        weights = self.country_weights
        country = rng.choice(len(weights), n, p=weights)
        offset = (rng.random(n) * self.country_size[country]).astype(np.int64)
        return self.country_first[country] + offset


def build_address_pools(config: GenerationConfig, anonymous_lines: int) -> AddressPools:
    """Enough anonymous addresses per country for ``anonymous_lines``, crawlers' and IPv6 ones."""
    rng = random_stream(config, POOLS_STREAM)
    weights = np.array([weight for _, weight in _ANONYMOUS_COUNTRIES], dtype=float)
    shares = weights / weights.sum()
    sizes = np.clip((shares * anonymous_lines / 5).astype(np.int64), 4, 3000)
    wanted = {
        country: int(size) for (country, _), size in zip(_ANONYMOUS_COUNTRIES, sizes, strict=True)
    }
    by_country = sample_ips_by_country(wanted, rng)
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    crawlers = pl.concat(
        [hosts_in_prefixes(crawler.prefixes, ADDRESSES_PER_CRAWLER, rng) for crawler in CRAWLERS]
    )
    v6_by_country = sample_ips_by_country({"AR": 8, "BR": 8}, rng, ipv6=True)
    ipv6 = pl.Series(
        [address for part in v6_by_country.values() for address in part], dtype=pl.String
    )
    anonymous = pl.Series(
        [address for country, _ in _ANONYMOUS_COUNTRIES for address in by_country[country]],
        dtype=pl.String,
    )
    return AddressPools(anonymous, first, sizes, shares, crawlers, ipv6)
