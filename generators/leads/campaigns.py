"""Marketing campaigns: one per lead file, spread over the simulated months, each with
its channel, collection days, export time, name and file name; and when leads arrive."""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

import numpy as np

from b2b_common.dates import add_months
from generators.config import GenerationConfig
from generators.draws import ascii_lower, spread

# Canonical channel -> how a file labels it (one style per file).
CHANNEL_LABELS: dict[str, dict[str, str]] = {
    "trade_show": {"code": "trade_show", "es": "Feria", "en": "Trade show"},
    "webinar": {"code": "webinar", "es": "Webinar", "en": "Webinar"},
    "linkedin": {"code": "linkedin", "es": "LinkedIn", "en": "LinkedIn Ads"},
    "google_ads": {"code": "google_ads", "es": "Google Ads", "en": "Google Ads"},
    "email": {"code": "email", "es": "Mailing", "en": "Email"},
    "referral": {"code": "referral", "es": "Referido", "en": "Referral"},
}

_CAMPAIGN_NAMES: dict[str, tuple[str, ...]] = {
    "trade_show": (
        "Expo Agro", "Expoferretera", "Feria Gastronómica", "Expo Logística", "Construir Expo",
        "Expo Salud", "TecnoFeria",
    ),
    "webinar": (
        "Webinar Compras Inteligentes", "Webinar Gestión de Stock", "Webinar Facturación B2B",
        "Webinar Última Milla",
    ),
    "linkedin": ("LinkedIn Decisores de Compras", "LinkedIn Pymes Industriales", "LinkedIn Retail"),
    "google_ads": (
        "Google Ads Mayoristas", "Google Ads Insumos de Oficina", "Google Ads Remarketing",
    ),
    "email": ("Newsletter", "Mailing Reactivación", "Mailing Nuevo Catálogo"),
    "referral": ("Programa Referidos", "Referidos Clientes Premium"),
}  # fmt: skip

# How many days a campaign collects leads, and how big it is relative to the others.
_DURATION_DAYS: dict[str, tuple[int, int]] = {
    "trade_show": (2, 4), "webinar": (7, 21), "linkedin": (14, 40),
    "google_ads": (20, 45), "email": (3, 14), "referral": (30, 75),
}  # fmt: skip
CHANNEL_WEIGHT: dict[str, float] = {
    "trade_show": 1.6, "webinar": 0.8, "linkedin": 1.0, "google_ads": 1.3, "email": 0.9,
    "referral": 0.4,
}  # fmt: skip

_MONTH_NAMES = (
    "enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
    "octubre", "noviembre", "diciembre",
)  # fmt: skip


@dataclass(frozen=True)
class Campaign:
    name: str
    channel: str
    start: dt.date
    end: dt.date
    exported_at: dt.datetime
    file_name: str


def plan_campaigns(config: GenerationConfig, rng: np.random.Generator) -> list[Campaign]:
    """One campaign per file, spread evenly over the simulated months."""
    count, months = config.scale.lead_files, config.scale.months
    names: set[str] = set()
    files: set[str] = set()
    campaigns: list[Campaign] = []
    for i, channel in enumerate(spread(list(_CAMPAIGN_NAMES), count, rng)):
        start, end, exported_at = _campaign_dates(
            config, add_months(config.first_day, i * months // count), channel, rng
        )
        base = str(rng.choice(_CAMPAIGN_NAMES[channel]))
        title = (
            f"{base} {start.year}"
            if channel == "trade_show"
            else f"{base} {_MONTH_NAMES[start.month - 1]} {start.year}"
        )
        name = _unused(names, title, f"{title} (", ")")
        stem = f"leads_{start:%Y-%m}_{_slug(base)}"
        file_name = _unused(files, f"{stem}.xlsx", f"{stem}-", ".xlsx")
        campaigns.append(Campaign(name, channel, start, end, exported_at, file_name))
    return campaigns


def _campaign_dates(
    config: GenerationConfig, month_start: dt.date, channel: str, rng: np.random.Generator
) -> tuple[dt.date, dt.date, dt.datetime]:
    """First and last day of a campaign starting in the month, and when it was exported:
    the next working morning or afternoon, or the end of the as-of day if still running."""
    month_end = month_start.replace(day=calendar.monthrange(month_start.year, month_start.month)[1])
    latest_start = min(month_end, config.as_of)
    start = month_start + dt.timedelta(
        days=int(rng.integers(0, (latest_start - month_start).days + 1))
    )
    shortest, longest = _DURATION_DAYS[channel]
    end = min(start + dt.timedelta(days=int(rng.integers(shortest, longest + 1)) - 1), config.as_of)
    export_day = end + dt.timedelta(days=1)
    exported_at = (
        dt.datetime.combine(export_day, dt.time(int(rng.integers(8, 19)), int(rng.integers(0, 60))))
        if export_day <= config.as_of
        else dt.datetime.combine(config.as_of, dt.time(23, 59))
    )
    return start, end, exported_at


def _unused(taken: set[str], first: str, before: str, after: str) -> str:
    """``first``, or else ``before`` 2 ``after``, 3, ... until one is not ``taken``; the
    result is added to ``taken``."""
    text, suffix = first, 2
    while text in taken:
        text, suffix = f"{before}{suffix}{after}", suffix + 1
    taken.add(text)
    return text


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", ascii_lower(text)).strip("-")[:40]


def capture_times(
    campaigns: list[Campaign], counts: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Campaign index and capture minute of every distinct lead, sorted by capture time."""
    campaign_idx = np.repeat(np.arange(len(campaigns)), counts)
    starts = np.array([c.start for c in campaigns], dtype="datetime64[D]")
    spans = np.array([(c.end - c.start).days + 1 for c in campaigns])
    count = len(campaign_idx)
    day = np.floor(rng.random(count) * spans[campaign_idx]).astype(np.int64)
    # Mostly office hours; web forms (ads, mailing) also catch evenings and nights.
    hour = np.where(
        rng.random(count) < 0.85, rng.integers(8, 20, count), rng.integers(0, 24, count)
    )
    minute = rng.integers(0, 60, count)
    captured = (
        starts[campaign_idx].astype("datetime64[m]")
        + day.astype("timedelta64[D]")
        + hour.astype("timedelta64[h]")
        + minute.astype("timedelta64[m]")
    )
    order = np.lexsort((campaign_idx, captured))
    return campaign_idx[order], captured[order]
