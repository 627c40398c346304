"""Leads that are companies already on the platform: the ones with a valid CUIT, each
lead matched before some of its company's orders (a conversion) or not."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

import numpy as np
import polars as pl

from b2b_common.cuit import is_valid_cuit, normalize_cuit
from generators.config import GenerationConfig
from generators.leads.campaigns import Campaign

# Share of leads that are companies already on the platform, and of those, the share
# picked among companies that order after the lead was captured (the converters); the
# others come from companies with no valid order after the campaign.
_MATCHED_SHARE = 0.35
_CONVERTING_SHARE = 0.6

_COMPANY_COLUMNS = ("company_id", "legal_name", "industry", "country_code", "province", "city")


class PlatformTables(Protocol):
    """What the lead simulator needs from generators.platform.PlatformData."""

    @property
    def tables(self) -> dict[str, pl.DataFrame]: ...


def match_companies(
    config: GenerationConfig,
    platform: PlatformTables,
    campaigns: list[Campaign],
    campaign_idx: np.ndarray,
    rng: np.random.Generator,
) -> tuple[pl.DataFrame, np.ndarray]:
    """The platform companies with a valid CUIT (``digits`` holds it bare), and the row
    among them of each lead's company: -1 for prospects."""
    count = len(campaign_idx)
    companies, last_order = platform_companies(config, platform)
    matched = (
        (rng.random(count) < _MATCHED_SHARE) if companies.height else np.zeros(count, dtype=bool)
    )
    company_row = np.full(count, -1, dtype=np.int64)
    for index, campaign in enumerate(campaigns):
        leads = np.flatnonzero(matched & (campaign_idx == index))
        if len(leads):
            company_row[leads] = _pick_companies(campaign, last_order, len(leads), rng)
    return companies, company_row


def _pick_companies(
    campaign: Campaign, last_order: np.ndarray, count: int, rng: np.random.Generator
) -> list[int]:
    """Rows of ``count`` companies for a campaign's matched leads, mostly converters."""
    # Converters order at least a day after the campaign, whatever the time zone or
    # date-only parsing of the capture time.
    cutoff = np.datetime64(campaign.end + dt.timedelta(days=2), "us")
    later = last_order > cutoff  # NaT (never ordered) compares False
    converting, idle = np.flatnonzero(later), np.flatnonzero(~later)
    # A pool may be empty (no orders yet after the last campaign): use the other one.
    use_converting = (rng.random(count) < _CONVERTING_SHARE) if len(idle) else np.ones(count, bool)
    pools = (idle, converting)
    chosen = np.where(use_converting & (len(converting) > 0), 1, 0)
    return [int(pools[k][int(rng.integers(len(pools[k])))]) for k in chosen.tolist()]


def platform_companies(
    config: GenerationConfig, platform: PlatformTables
) -> tuple[pl.DataFrame, np.ndarray]:
    """Platform companies with a valid CUIT, and each one's last valid order in range."""
    companies = platform.tables.get("companies")
    if companies is None or companies.is_empty():
        empty = pl.DataFrame(
            {c: [] for c in (*_COMPANY_COLUMNS, "digits")},
            schema={
                c: pl.Int64 if c == "company_id" else pl.String
                for c in (*_COMPANY_COLUMNS, "digits")
            },
        )
        return empty, np.array([], dtype="datetime64[us]")
    cuits = companies["cuit"].to_list()
    valid = [is_valid_cuit(c) for c in cuits]
    frame = (
        companies.select(*_COMPANY_COLUMNS)
        .with_columns(digits=pl.Series([normalize_cuit(c) for c in cuits], dtype=pl.String))
        .filter(pl.Series(valid))
    )
    orders = platform.tables.get("orders")
    if orders is None or orders.is_empty():
        return frame, np.full(frame.height, np.datetime64("NaT"), dtype="datetime64[us]")
    last = (
        _valid_orders(config, orders)
        .group_by("company_id")
        .agg(last_order=pl.col("ordered_at").max())
    )
    frame = frame.join(last, on="company_id", how="left", maintain_order="left")
    return frame.drop("last_order"), frame["last_order"].to_numpy().astype("datetime64[us]")


def _valid_orders(config: GenerationConfig, orders: pl.DataFrame) -> pl.DataFrame:
    """Orders in the simulated range that count as a conversion, ordered_at as naive UTC."""
    ordered_at = pl.col("ordered_at")
    if getattr(orders.schema["ordered_at"], "time_zone", None):
        ordered_at = ordered_at.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    valid = orders.with_columns(ordered_at=ordered_at.cast(pl.Datetime("us"))).filter(
        pl.col("ordered_at") >= config.start.replace(tzinfo=None),
        pl.col("ordered_at") < config.end.replace(tzinfo=None),
    )
    if "status" in orders.columns:
        # Cancelled, returned or garbled orders are not a conversion.
        status = pl.col("status").str.strip_chars().str.to_lowercase()
        valid = valid.filter(status.is_in(["placed", "paid", "shipped", "delivered"]))
    return valid
