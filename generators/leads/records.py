"""The distinct leads of every campaign, before any defect or re-export: who, from which
company, how to reach them, and how their file types the CUIT."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from faker import Faker

from generators.config import GenerationConfig
from generators.draws import largest_remainder, name_pools, spread
from generators.leads.campaigns import CHANNEL_WEIGHT, Campaign, capture_times
from generators.leads.contacts import PHONE_STYLES, company_domain, draw_contacts
from generators.leads.platform_match import PlatformTables, match_companies
from generators.leads.prospects import prospect_companies

# How a file's rows type the CUIT: shares dashed, bare text, number (one mix per file).
_CUIT_FORMAT_MIXES = ((0.7, 0.2, 0.1), (0.2, 0.7, 0.1), (0.3, 0.3, 0.4), (0.5, 0.5, 0.0))
# A lead's company field -> the platform companies column it comes from.
_PLATFORM_COLUMNS = {
    "company_name": "legal_name",
    "cuit": "digits",
    "country": "country_code",
    "province": "province",
    "city": "city",
    "industry": "industry",
}


@dataclass
class Leads:
    """One entry per distinct lead, sorted by capture time (lead ids follow it)."""

    campaign_idx: np.ndarray  # index into the campaigns
    captured: list[dt.datetime]
    lead_id: list[str]
    company_name: list[str]
    cuit: list[str]  # 11 bare digits (wrong check digit for invalid_cuit leads)
    contact_name: list[str | None]
    email: list[str | None]
    phone: list[tuple[str, str] | None]  # (area code, local number)
    country: list[str | None]
    province: list[str | None]
    city: list[str | None]
    industry: list[str | None]
    cuit_format: np.ndarray  # 0 dashed, 1 bare text, 2 number
    phone_style: np.ndarray
    name_case: np.ndarray  # 0 as is, 1 upper, 2 title
    matched_company_id: np.ndarray  # platform company_id, -1 for prospects


def make_leads(
    config: GenerationConfig,
    platform: PlatformTables,
    campaigns: list[Campaign],
    n_unique: int,
    fake: Faker,
    rng: np.random.Generator,
) -> Leads:
    """``n_unique`` distinct leads over the campaigns; about a third of them companies on
    the platform, the rest prospects."""
    campaign_idx, captured, lead_ids = _arrivals(campaigns, n_unique, rng)
    count = len(campaign_idx)
    first_names, last_names = name_pools(fake, 200)
    companies, company_row = match_companies(config, platform, campaigns, campaign_idx, rng)
    prospects = prospect_companies(
        int((company_row < 0).sum()), companies["digits"].to_list(), first_names, last_names, rng
    )
    prospect_of = rng.integers(0, max(1, len(prospects["company_name"])), count)
    fields = _company_fields(companies, company_row, prospects, prospect_of)
    domains = [company_domain(name) for name in fields["company_name"]]
    contacts = draw_contacts(first_names, last_names, domains, rng)
    company_ids = companies["company_id"].to_numpy().astype(np.int64)
    matched_ids = (
        np.where(company_row >= 0, company_ids[company_row.clip(0)], -1)
        if companies.height
        else np.full(count, -1, dtype=np.int64)
    )
    file_mix = np.cumsum(np.array(spread(_CUIT_FORMAT_MIXES, len(campaigns), rng)), axis=1)
    cuit_format = (rng.random(count)[:, None] > file_mix[campaign_idx]).sum(axis=1).clip(0, 2)
    phone_style = rng.integers(0, PHONE_STYLES, count)
    name_case = rng.choice(3, count, p=(0.7, 0.2, 0.1))
    return Leads(
        campaign_idx=campaign_idx,
        captured=captured,
        lead_id=lead_ids,
        contact_name=contacts.names,
        email=contacts.emails,
        phone=contacts.phones,
        cuit_format=cuit_format,
        phone_style=phone_style,
        name_case=name_case,
        matched_company_id=matched_ids,
        **fields,
    )


def _arrivals(
    campaigns: list[Campaign], n_unique: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[dt.datetime], list[str]]:
    """Campaign index, capture time and lead id of each lead, in order of arrival."""
    weights = np.array([CHANNEL_WEIGHT[c.channel] for c in campaigns]) * rng.uniform(
        0.7, 1.3, len(campaigns)
    )
    campaign_idx, captured = capture_times(campaigns, _allocate(n_unique, weights, minimum=3), rng)
    # The marketing tool numbers leads as they arrive, skipping ids of deleted ones.
    ids = int(rng.integers(100, 2_000)) + np.cumsum(rng.choice([1, 1, 1, 1, 2], len(captured)))
    return campaign_idx, captured.tolist(), [f"LD-{i:06d}" for i in ids]


def _allocate(total: int, weights: np.ndarray, minimum: int) -> np.ndarray:
    """Split total into len(weights) integers proportional to weights, each at least
    ``minimum`` when total allows."""
    base = np.full(len(weights), min(minimum, total // len(weights)), dtype=np.int64)
    rest = total - base.sum()
    return base + largest_remainder(weights / weights.sum() * rest, rest)


def _company_fields(
    companies: pl.DataFrame,
    company_row: np.ndarray,
    prospects: dict[str, list[Any]],
    prospect_of: np.ndarray,
) -> dict[str, list[Any]]:
    """Each lead's company fields: its platform company's (``company_row``), or else those
    of its prospect (``prospect_of``)."""
    platform = {field: companies[column].to_list() for field, column in _PLATFORM_COLUMNS.items()}
    fields: dict[str, list[Any]] = {field: [] for field in _PLATFORM_COLUMNS}
    for row, prospect in zip(company_row.tolist(), prospect_of.tolist(), strict=True):
        source, index = (platform, row) if row >= 0 else (prospects, prospect)
        for field, values in fields.items():
            values.append(source[field][index])
    return fields
