"""The string tables that events' integer codes point into, for the run's own users,
addresses and products."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from generators.weblogs.pages import PATHS, REFERERS, SITE, Products
from generators.weblogs.population import HEALTH_CHECK_ADDRESSES, AddressPools, Users


@dataclass(frozen=True)
class StringTables:
    """String tables that the integer event codes point into."""

    hosts: pl.Series  # users' addresses, then anonymous, crawler and internal ones
    first_anonymous_host: int
    first_crawler_host: int
    first_health_check_host: int
    usernames: pl.Series
    paths: pl.Series  # PATHS, then /products/<id> per product
    referers: pl.Series  # REFERERS, then the product pages
    ipv6: pl.Series

    @classmethod
    def build(cls, users: Users, pools: AddressPools, products: Products) -> StringTables:
        first_anonymous = users.address_pool.len()
        first_crawler = first_anonymous + pools.anonymous.len()
        first_health_check = first_crawler + pools.crawlers.len()
        hosts = pl.concat(
            [users.address_pool, pools.anonymous, pools.crawlers, pl.Series(HEALTH_CHECK_ADDRESSES)]
        )
        product = pl.Series(products.ids, dtype=pl.Int64).cast(pl.String)
        paths = pl.concat([pl.Series(PATHS, dtype=pl.String), "/products/" + product])
        referers = pl.concat([pl.Series(REFERERS, dtype=pl.String), f"{SITE}/products/" + product])
        return cls(
            hosts=hosts,
            first_anonymous_host=first_anonymous,
            first_crawler_host=first_crawler,
            first_health_check_host=first_health_check,
            usernames=users.usernames,
            paths=paths,
            referers=referers,
            ipv6=pools.ipv6,
        )
