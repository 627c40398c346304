"""Platform users (the client companies' staff) and the profiles the web logs draw on."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
from faker import Faker

from generators import reference as ref
from generators.config import GenerationConfig
from generators.draws import ascii_lower, name_pools
from generators.platform.columns import build_frame, pick_weighted, timestamps


def draw_users(
    config: GenerationConfig, rng: np.random.Generator, fake: Faker, companies: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The platform_users table, and each user's profile (see PlatformData.user_profiles)."""
    count = config.scale.users
    company_idx = _user_companies(rng, companies, count)
    company_ids = companies["company_id"].to_numpy()[company_idx].astype(np.int64)
    countries = companies["country_code"].to_numpy()[company_idx]
    ids = np.arange(1, count + 1, dtype=np.int64)
    usernames = _usernames(rng, fake, ids)
    domains = companies["legal_name"].to_numpy()[company_idx]
    emails = [
        f"{user}@{ascii_lower(domain.split()[0]).strip(',.')}.com.ar"
        for user, domain in zip(usernames, domains, strict=True)
    ]
    created = timestamps(rng, config.start - dt.timedelta(days=2 * 365), config.start, count)
    users = build_frame(
        {
            "user_id": ids,
            "company_id": company_ids,
            "username": usernames,
            "email": emails,
            "role": pick_weighted(rng, ref.USER_ROLES, count),
            "created_at": created,
        },
        schema_overrides={"role": pl.String},
    ).with_columns(updated_at=pl.col("created_at"))
    travels = rng.random(count) < 0.1
    travel_country = pick_weighted(rng, ref.TRAVEL_COUNTRIES, count)
    travel_country = np.where(travels & (travel_country != countries), travel_country, None)
    profiles = build_frame(
        {
            "user_id": ids,
            "username": usernames,
            "company_id": company_ids,
            "home_country": countries.tolist(),
            "travel_country": travel_country.tolist(),
        },
        schema_overrides={"home_country": pl.String, "travel_country": pl.String},
    )
    return users, profiles


def _user_companies(rng: np.random.Generator, companies: pl.DataFrame, count: int) -> np.ndarray:
    """Row index of each user's company."""
    # Heavy-tailed: a few big clients have many users, most have one or two.
    company_weight = rng.pareto(1.2, size=companies.height) + 0.2
    # ...but each country keeps its share of companies as its share of users, so a few big
    # foreign clients cannot outnumber Argentina at small scales.
    company_country = companies["country_code"].to_numpy()
    for code in np.unique(company_country):
        in_country = company_country == code
        company_weight[in_country] *= in_country.sum() / company_weight[in_country].sum()
    return rng.choice(companies.height, size=count, p=company_weight / company_weight.sum())


def _usernames(rng: np.random.Generator, fake: Faker, ids: np.ndarray) -> list[str]:
    """Initial, surname and user id: ``jperez42``."""
    pool = max(100, min(len(ids), 2_000))
    first_names, last_names = name_pools(fake, pool)
    first_pool = np.array([ascii_lower(name) for name in first_names], dtype=object)
    last_pool = np.array([ascii_lower(name).replace(" ", "") for name in last_names], dtype=object)
    first = first_pool[rng.integers(0, pool, len(ids))]
    last = last_pool[rng.integers(0, pool, len(ids))]
    return [f"{a[0]}{b}{i}" for a, b, i in zip(first, last, ids, strict=True)]
