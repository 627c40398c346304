"""Marketing-lead spreadsheets: one messy .xlsx per campaign export.

The files look typed and exported by people: a title above the header in some,
Spanish or English header names with stray case, spacing and accents, columns in
any order, extra columns, blank rows, dates as Excel dates or `dd/mm/yyyy` text,
CUITs with or without dashes or stored as numbers, phones in many styles.

The story behind them: about a third of the leads are companies already on the
platform, captured before some of their orders, so lead-to-customer conversion is
measurable; the rest are prospects with fresh, valid CUITs. Duplicates, missing
contacts, invalid emails and invalid CUITs are injected at the configured rates,
on disjoint leads, so each one maps to exactly one warehouse reason code.

Determinism: one numpy generator and one seeded Faker drive every choice, and the
workbooks are written by xlsxwriter in memory (fixed zip timestamps) with the
creation date set from the campaign, so the same config gives byte-identical files.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import polars as pl
import xlsxwriter
from faker import Faker

from b2b_common.cuit import check_digits_array, format_cuit, is_valid_cuit, normalize_cuit
from b2b_common.dates import add_months
from b2b_common.text import fold_accents
from generators import reference as ref
from generators.config import AnomalyRates, GenerationConfig

# Separates this simulator's random stream from the platform's and the logs'.
_STREAM = 0x1EAD5

LEAD_FIELDS: tuple[str, ...] = (
    "lead_id", "captured_at", "campaign", "channel", "company_name", "cuit",
    "contact_name", "email", "phone", "country", "province", "city", "industry",
)  # fmt: skip

# Header names people use for each canonical field. The warehouse may use this as a
# test oracle, but should match headers after folding case, accents and punctuation.
HEADER_ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "lead_id": {"es": ("ID Lead", "Nro. Lead", "Id de lead"), "en": ("Lead ID", "lead_id")},
    "captured_at": {
        "es": ("Fecha", "Fecha de captura", "Fecha alta"),
        "en": ("Captured At", "Date", "captured_at"),
    },
    "campaign": {"es": ("Campaña", "Campana", "Nombre campaña"), "en": ("Campaign",)},
    "channel": {"es": ("Canal", "Medio"), "en": ("Channel", "Source")},
    "company_name": {
        "es": ("Razón Social", "Empresa", "Razon social", "Compañía"),
        "en": ("Company Name", "Company"),
    },
    "cuit": {"es": ("CUIT", "C.U.I.T.", "Cuit", "Nro. CUIT"), "en": ("CUIT", "Tax ID (CUIT)")},
    "contact_name": {
        "es": ("Nombre de contacto", "Contacto", "Nombre y apellido"),
        "en": ("Contact Name", "Contact", "Full Name"),
    },
    "email": {
        "es": ("Correo electrónico", "Email", "Mail", "Correo"),
        "en": ("Email", "E-mail", "Email Address"),
    },
    "phone": {"es": ("Teléfono", "Telefono", "Tel.", "Celular"), "en": ("Phone", "Phone Number")},
    "country": {"es": ("País", "Pais"), "en": ("Country",)},
    "province": {"es": ("Provincia", "Prov."), "en": ("Province", "State")},
    "city": {"es": ("Ciudad", "Localidad"), "en": ("City",)},
    "industry": {"es": ("Rubro", "Industria", "Sector"), "en": ("Industry",)},
}

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
_CHANNEL_WEIGHT: dict[str, float] = {
    "trade_show": 1.6, "webinar": 0.8, "linkedin": 1.0, "google_ads": 1.3, "email": 0.9,
    "referral": 0.4,
}  # fmt: skip

_MESES = (
    "enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
    "octubre", "noviembre", "diciembre",
)  # fmt: skip

# Share of leads that are companies already on the platform, and of those, the share
# picked among companies that order after the lead was captured (the converters); the
# others come from companies with no valid order after the campaign.
_MATCHED_SHARE = 0.35
_CONVERTING_SHARE = 0.6

_COUNTRY_NAMES: dict[str, str] = {
    "AR": "Argentina", "UY": "Uruguay", "CL": "Chile", "PY": "Paraguay", "BR": "Brasil",
    "BO": "Bolivia", "PE": "Perú", "MX": "México", "ES": "España", "US": "Estados Unidos",
    "CO": "Colombia",
}  # fmt: skip
# Argentina as people write it; None leaves the cell empty.
_AR_SPELLINGS: tuple[str | None, ...] = ("Argentina", "AR", "ARGENTINA", "argentina", None)
_AR_SPELLING_CUM = np.cumsum((0.6, 0.15, 0.1, 0.05, 0.1))
_PROVINCE_SPELLINGS: dict[str, tuple[str, ...]] = {
    "Ciudad Autónoma de Buenos Aires": ("CABA", "Capital Federal", "C.A.B.A."),
    "Buenos Aires": ("Bs. As.", "Pcia. de Buenos Aires", "BUENOS AIRES"),
}

_FREE_MAIL = ("gmail.com", "hotmail.com", "yahoo.com.ar", "outlook.com", "live.com.ar")
_AREA_CODES = ("11", "351", "341", "261", "381", "223", "221", "387", "299", "343", "342", "297")
_AREA_P = (0.5, 0.1, 0.08, 0.06, 0.04, 0.04, 0.05, 0.03, 0.03, 0.03, 0.02, 0.02)
_N_PHONE_STYLES = 7

_COMPANY_PATTERNS = (
    "{L} S.A.", "{L} S.R.L.", "{L} Hnos. S.A.", "{L} y {L2} S.R.L.", "Distribuidora {L} S.A.",
    "Agropecuaria {L} S.A.", "{L} Logística S.A.S.", "Grupo {L} S.A.", "Comercial {L} S.R.L.",
    "Industrias {L} S.A.", "{L} & Asociados S.R.L.",
)  # fmt: skip
_LEGAL_WORDS = {"s", "a", "r", "l", "sa", "srl", "sas", "hnos", "y", "asociados", "and", "inc"}

_EXTRA_COLUMNS = ("Notas", "Owner", "Score", "Estado", "Comentarios", "Responsable")
_NOTES = (
    "Interesado en catálogo", "Pidió cotización", "Llamar la semana próxima",
    "Ya compra a la competencia", "Volver a contactar", "Visitó el stand", "No atiende",
)  # fmt: skip
_STATES = ("Nuevo", "Contactado", "Calificado", "Descartado")
_SHEET_NAMES = ("Leads", "Hoja1", "Sheet1", "Export", "Datos")
_EXCEL_DATE_FORMATS = ("dd/mm/yyyy hh:mm", "dd/mm/yyyy", "yyyy-mm-dd hh:mm:ss", "d/m/yyyy h:mm")
_CUIT_FORMAT_MIXES = ((0.7, 0.2, 0.1), (0.2, 0.7, 0.1), (0.3, 0.3, 0.4), (0.5, 0.5, 0.0))


class PlatformTables(Protocol):
    """What the lead simulator needs from generators.platform.PlatformData."""

    @property
    def tables(self) -> dict[str, pl.DataFrame]: ...


@dataclass(frozen=True)
class LeadsSummary:
    """What generate_leads wrote: tests compare it with what the warehouse finds."""

    files: int
    leads: int  # data rows written, duplicates included
    anomalies: dict[str, int]  # quarantine reason code -> rows injected


@dataclass(frozen=True)
class _Campaign:
    name: str
    channel: str
    start: dt.date
    end: dt.date
    exported_at: dt.datetime
    file_name: str


@dataclass(frozen=True)
class _FileStyle:
    header_offset: int  # rows above the header
    language: str  # es, en, mixed
    date_style: str  # excel, text, mixed
    date_format: str
    channel_style: str  # code, es, en
    extras: tuple[str, ...]
    columns: tuple[str, ...]
    headers: tuple[str, ...]
    sort_by_company: bool
    sheet_name: str


@dataclass
class _Leads:
    """One entry per distinct lead, sorted by capture time (lead ids follow it)."""

    campaign: np.ndarray  # campaign index
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
    cuit_fmt: np.ndarray  # 0 dashed, 1 bare text, 2 number
    phone_style: np.ndarray
    name_case: np.ndarray  # 0 as is, 1 upper, 2 title
    matched_company_id: np.ndarray  # platform company_id, -1 for prospects


def generate_leads(
    config: GenerationConfig, platform: PlatformTables, out_dir: Path
) -> LeadsSummary:
    """Write one lead workbook per campaign into out_dir and say what was injected."""
    rng = np.random.default_rng([config.seed, _STREAM])
    fake = Faker("es_AR")
    fake.seed_instance(config.seed + _STREAM)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_files, n_rows = config.scale.lead_files, config.scale.leads
    kinds = ("duplicate_lead", "missing_contact", "invalid_email", "invalid_cuit")
    if n_files <= 0 or n_rows <= 0:
        return LeadsSummary(files=0, leads=0, anomalies=dict.fromkeys(kinds, 0))

    rates = config.anomalies
    n_dup = _count(rates.lead_duplicate, n_rows) if n_files > 1 else 0
    n_unique = n_rows - n_dup
    campaigns = _plan_campaigns(config, rng)
    leads = _make_leads(config, platform, campaigns, n_unique, fake, rng)

    injected = _inject_anomalies(leads, rates, n_rows, rng)
    dup_targets = _pick_duplicates(leads, campaigns, n_dup, injected, rng)
    counts = {
        "duplicate_lead": len(dup_targets),
        "missing_contact": len(injected["missing_contact"]),
        "invalid_email": len(injected["invalid_email"]),
        "invalid_cuit": len(injected["invalid_cuit"]),
    }

    # first + last name: fake.name() adds titles like "Dr(a)." that no CRM owner field shows
    owners = [f"{fake.first_name()} {fake.last_name()}" for _ in range(6)]
    styles = _plan_styles(len(campaigns), rng)
    written = 0
    for f, (campaign, style) in enumerate(zip(campaigns, styles, strict=True)):
        originals = np.flatnonzero(leads.campaign == f).tolist()
        dups = [i for i, target in dup_targets.items() if target == f]
        written += _write_file(
            out_dir / campaign.file_name, campaign, style, leads, originals, dups,
            campaigns, owners, rng,
        )  # fmt: skip
    return LeadsSummary(files=len(campaigns), leads=written, anomalies=counts)


# ---------------------------------------------------------------- helpers


def _count(rate: float, n: int) -> int:
    """Rows for an anomaly rate: at least one whenever the rate is positive."""
    return 0 if rate <= 0 or n <= 0 else max(1, round(rate * n))


def _ascii(text: str) -> str:
    return fold_accents(text)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", _ascii(text).lower()).strip("-")[:40]


def _spread(values: Sequence[Any], n: int, rng: np.random.Generator) -> list[Any]:
    """n picks that cycle through a shuffle of values, so every value shows up once n allows."""
    order = [values[i] for i in rng.permutation(len(values))]
    return [order[i % len(order)] for i in range(n)]


def _allocate(total: int, weights: np.ndarray, minimum: int) -> np.ndarray:
    """Split total into len(weights) integers proportional to weights (largest remainder)."""
    n = len(weights)
    base = np.full(n, min(minimum, total // n), dtype=np.int64)
    share = weights / weights.sum() * (total - base.sum())
    counts = base + np.floor(share).astype(np.int64)
    remainder = total - counts.sum()
    counts[np.argsort(-(share - np.floor(share)), kind="stable")[:remainder]] += 1
    return counts


# ---------------------------------------------------------------- campaigns


def _plan_campaigns(config: GenerationConfig, rng: np.random.Generator) -> list[_Campaign]:
    """One campaign per file, spread evenly over the simulated months."""
    n, months = config.scale.lead_files, config.scale.months
    channels = _spread(list(_CAMPAIGN_NAMES), n, rng)
    campaigns: list[_Campaign] = []
    names: set[str] = set()
    files: set[str] = set()
    for i, channel in enumerate(channels):
        month_start = add_months(config.first_day, i * months // n)
        month_end = month_start.replace(
            day=calendar.monthrange(month_start.year, month_start.month)[1]
        )
        latest_start = min(month_end, config.as_of)
        start = month_start + dt.timedelta(
            days=int(rng.integers(0, (latest_start - month_start).days + 1))
        )
        lo, hi = _DURATION_DAYS[channel]
        end = min(start + dt.timedelta(days=int(rng.integers(lo, hi + 1)) - 1), config.as_of)
        export_day = end + dt.timedelta(days=1)
        exported_at = (
            dt.datetime.combine(
                export_day, dt.time(int(rng.integers(8, 19)), int(rng.integers(0, 60)))
            )
            if export_day <= config.as_of
            else dt.datetime.combine(config.as_of, dt.time(23, 59))
        )
        base = str(rng.choice(_CAMPAIGN_NAMES[channel]))
        name = (
            f"{base} {start.year}"
            if channel == "trade_show"
            else f"{base} {_MESES[start.month - 1]} {start.year}"
        )
        suffix = 2
        unique = name
        while unique in names:
            unique, suffix = f"{name} ({suffix})", suffix + 1
        names.add(unique)
        stem = f"leads_{start:%Y-%m}_{_slug(base)}"
        file_name, suffix = f"{stem}.xlsx", 2
        while file_name in files:
            file_name, suffix = f"{stem}-{suffix}.xlsx", suffix + 1
        files.add(file_name)
        campaigns.append(_Campaign(unique, channel, start, end, exported_at, file_name))
    return campaigns


def _capture_times(
    campaigns: list[_Campaign], counts: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Campaign index and capture minute of every distinct lead, sorted by capture time."""
    campaign = np.repeat(np.arange(len(campaigns)), counts)
    starts = np.array([c.start for c in campaigns], dtype="datetime64[D]")
    spans = np.array([(c.end - c.start).days + 1 for c in campaigns])
    n = len(campaign)
    day = np.floor(rng.random(n) * spans[campaign]).astype(np.int64)
    # Mostly office hours; web forms (ads, mailing) also catch evenings and nights.
    hour = np.where(rng.random(n) < 0.85, rng.integers(8, 20, n), rng.integers(0, 24, n))
    minute = rng.integers(0, 60, n)
    captured = (
        starts[campaign].astype("datetime64[m]")
        + day.astype("timedelta64[D]")
        + hour.astype("timedelta64[h]")
        + minute.astype("timedelta64[m]")
    )
    order = np.lexsort((campaign, captured))
    return campaign[order], captured[order]


# ---------------------------------------------------------------- leads


def _make_leads(
    config: GenerationConfig,
    platform: PlatformTables,
    campaigns: list[_Campaign],
    n_unique: int,
    fake: Faker,
    rng: np.random.Generator,
) -> _Leads:
    weights = np.array([_CHANNEL_WEIGHT[c.channel] for c in campaigns]) * rng.uniform(
        0.7, 1.3, len(campaigns)
    )
    counts = _allocate(n_unique, weights, minimum=3)
    campaign, captured64 = _capture_times(campaigns, counts, rng)
    n = len(campaign)
    captured: list[dt.datetime] = captured64.tolist()
    # The marketing tool numbers leads as they arrive, skipping ids of deleted ones.
    ids = int(rng.integers(100, 2_000)) + np.cumsum(rng.choice([1, 1, 1, 1, 2], n))
    lead_id = [f"LD-{i:06d}" for i in ids]

    first_names = [fake.first_name() for _ in range(200)]
    last_names = [fake.last_name() for _ in range(200)]

    companies, last_order = _platform_companies(config, platform)
    matched = (rng.random(n) < _MATCHED_SHARE) if companies.height else np.zeros(n, dtype=bool)
    company_row = np.full(n, -1, dtype=np.int64)
    for f, c in enumerate(campaigns):
        rows = np.flatnonzero(matched & (campaign == f))
        if not len(rows):
            continue
        # Converters order at least a day after the campaign, whatever the time zone or
        # date-only parsing of the capture time.
        cutoff = np.datetime64(c.end + dt.timedelta(days=2), "us")
        later = last_order > cutoff  # NaT (never ordered) compares False
        converting, idle = np.flatnonzero(later), np.flatnonzero(~later)
        # A pool may be empty (no orders yet after the last campaign): use the other one.
        use_conv = (
            (rng.random(len(rows)) < _CONVERTING_SHARE) if len(idle) else np.ones(len(rows), bool)
        )
        pool = np.where(use_conv & (len(converting) > 0), 1, 0)
        picks = (idle, converting)
        company_row[rows] = [picks[k][int(rng.integers(len(picks[k])))] for k in pool.tolist()]

    prospects = _prospect_companies(
        int((~matched).sum()), companies["digits"].to_list(), first_names, last_names, rng
    )
    prospect_of = rng.integers(0, max(1, len(prospects["name"])), n)

    company_name: list[str] = []
    cuit: list[str] = []
    country: list[str | None] = []
    province: list[str | None] = []
    city: list[str | None] = []
    industry: list[str | None] = []
    domain: list[str] = []
    comp = {k: companies[k].to_list() for k in ("legal_name", "digits", "country_code",
                                                  "province", "city", "industry")}  # fmt: skip
    for i in range(n):
        if company_row[i] >= 0:
            r = int(company_row[i])
            company_name.append(comp["legal_name"][r])
            cuit.append(comp["digits"][r])
            country.append(comp["country_code"][r])
            province.append(comp["province"][r])
            city.append(comp["city"][r])
            industry.append(comp["industry"][r])
        else:
            p = int(prospect_of[i])
            company_name.append(prospects["name"][p])
            cuit.append(prospects["cuit"][p])
            country.append("AR")
            province.append(prospects["province"][p])
            city.append(prospects["city"][p])
            industry.append(prospects["industry"][p])
        domain.append(_company_domain(company_name[-1]))

    first = rng.integers(0, len(first_names), n)
    last = rng.integers(0, len(last_names), n)
    has_email = rng.random(n) < 0.92
    has_phone = (rng.random(n) < 0.8) | ~has_email  # a normal lead has some way to reach it
    free_mail = rng.random(n) < 0.4
    email_style = rng.integers(0, 6, n)
    name_style = rng.choice(4, n, p=(0.85, 0.05, 0.05, 0.05))
    contact_name: list[str | None] = []
    email: list[str | None] = []
    phone: list[tuple[str, str] | None] = []
    areas = rng.choice(len(_AREA_CODES), n, p=_AREA_P)
    # Ten national digits: Buenos Aires (11) keeps 8 after the area code, the interior 7 or 6.
    local_len = 10 - np.array([len(a) for a in _AREA_CODES])[areas]
    low = 2 * 10 ** (local_len - 1)
    local = low + np.floor(rng.random(n) * (10**local_len - low)).astype(np.int64)
    for i in range(n):
        fn, ln = first_names[first[i]], last_names[last[i]]
        contact_name.append(
            (f"{fn} {ln}", f"{fn} {ln}".upper(), f"{ln}, {fn}", None)[int(name_style[i])]
        )
        dom = str(rng.choice(_FREE_MAIL)) if free_mail[i] else domain[i]
        email.append(_email(fn, ln, dom, int(email_style[i]), i) if has_email[i] else None)
        phone.append((_AREA_CODES[int(areas[i])], str(local[i])) if has_phone[i] else None)

    company_ids = companies["company_id"].to_numpy().astype(np.int64)
    matched_ids = (
        np.where(company_row >= 0, company_ids[company_row.clip(0)], -1)
        if companies.height
        else np.full(n, -1, dtype=np.int64)
    )
    file_mix = np.cumsum(np.array(_spread(_CUIT_FORMAT_MIXES, len(campaigns), rng)), axis=1)
    cuit_fmt = (rng.random(n)[:, None] > file_mix[campaign]).sum(axis=1).clip(0, 2)
    return _Leads(
        campaign=campaign,
        captured=captured,
        lead_id=lead_id,
        company_name=company_name,
        cuit=cuit,
        contact_name=contact_name,
        email=email,
        phone=phone,
        country=country,
        province=province,
        city=city,
        industry=industry,
        cuit_fmt=cuit_fmt,
        phone_style=rng.integers(0, _N_PHONE_STYLES, n),
        name_case=rng.choice(3, n, p=(0.7, 0.2, 0.1)),
        matched_company_id=matched_ids,
    )


def _platform_companies(
    config: GenerationConfig, platform: PlatformTables
) -> tuple[pl.DataFrame, np.ndarray]:
    """Platform companies with a valid CUIT, and each one's last valid order in range."""
    columns = ("company_id", "legal_name", "industry", "country_code", "province", "city")
    companies = platform.tables.get("companies")
    if companies is None or companies.is_empty():
        empty = pl.DataFrame(
            {c: [] for c in (*columns, "digits")},
            schema={c: pl.Int64 if c == "company_id" else pl.String for c in (*columns, "digits")},
        )
        return empty, np.array([], dtype="datetime64[us]")
    cuits = companies["cuit"].to_list()
    valid = [is_valid_cuit(c) for c in cuits]
    frame = (
        companies.select(*columns)
        .with_columns(digits=pl.Series([normalize_cuit(c) for c in cuits], dtype=pl.String))
        .filter(pl.Series(valid))
    )

    orders = platform.tables.get("orders")
    if orders is None or orders.is_empty():
        return frame, np.full(frame.height, np.datetime64("NaT"), dtype="datetime64[us]")
    ordered_at = pl.col("ordered_at")
    if getattr(orders.schema["ordered_at"], "time_zone", None):
        ordered_at = ordered_at.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    valid_orders = orders.with_columns(ordered_at=ordered_at.cast(pl.Datetime("us"))).filter(
        pl.col("ordered_at") >= config.start.replace(tzinfo=None),
        pl.col("ordered_at") < config.end.replace(tzinfo=None),
    )
    if "status" in orders.columns:
        # Cancelled, returned or garbled orders are not a conversion.
        status = pl.col("status").str.strip_chars().str.to_lowercase()
        valid_orders = valid_orders.filter(status.is_in(["placed", "paid", "shipped", "delivered"]))
    last = valid_orders.group_by("company_id").agg(last_order=pl.col("ordered_at").max())
    frame = frame.join(last, on="company_id", how="left", maintain_order="left")
    return frame.drop("last_order"), frame["last_order"].to_numpy().astype("datetime64[us]")


def _fresh_cuits(n: int, taken: set[str], rng: np.random.Generator) -> list[str]:
    """n distinct valid CUITs (never a number whose check digit would be 10) not in taken."""
    out: list[str] = []
    seen = set(taken)
    while len(out) < n:
        k = 2 * (n - len(out)) + 8
        prefix = rng.choice(np.array([30, 33, 30, 30, 20, 27]), k)
        person = prefix < 30
        body = np.where(
            person, rng.integers(20_000_000, 46_000_000, k), rng.integers(50_000_000, 72_000_000, k)
        )
        value = prefix.astype(np.int64) * 100_000_000 + body
        digits = (value[:, None] // 10 ** np.arange(9, -1, -1)) % 10
        check = check_digits_array(digits)
        for v, c in zip(value.tolist(), check.tolist(), strict=True):
            cuit = f"{v:010d}{c}"
            if c >= 0 and cuit not in seen:
                seen.add(cuit)
                out.append(cuit)
    return out[:n]


def _prospect_companies(
    n_leads: int,
    platform_cuits: list[str],
    first_names: list[str],
    last_names: list[str],
    rng: np.random.Generator,
) -> dict[str, list[Any]]:
    """Companies not on the platform; fewer than their leads, so some get two contacts."""
    n = max(1, round(n_leads * 0.85))
    cuits = _fresh_cuits(n, set(platform_cuits), rng)
    provinces = list(ref.AR_PROVINCES)
    p = np.array(ref.AR_PROVINCE_WEIGHTS) / sum(ref.AR_PROVINCE_WEIGHTS)
    prov_idx = rng.choice(len(provinces), n, p=p)
    pattern = rng.integers(0, len(_COMPANY_PATTERNS), n)
    l1 = rng.integers(0, len(last_names), (n, 2))
    fn = rng.integers(0, len(first_names), n)
    names: list[str] = []
    cities: list[str] = []
    for i in range(n):
        if cuits[i][:2] in ("20", "23", "27"):  # a sole trader trades under their own name
            names.append(f"{first_names[fn[i]]} {last_names[l1[i, 0]]}")
        else:
            names.append(
                _COMPANY_PATTERNS[pattern[i]].format(
                    L=last_names[l1[i, 0]], L2=last_names[l1[i, 1]]
                )
            )
        options = ref.AR_PROVINCES[provinces[prov_idx[i]]]
        cities.append(options[int(rng.integers(0, len(options)))])
    return {
        "name": names,
        "cuit": cuits,
        "province": [provinces[i] for i in prov_idx],
        "city": cities,
        "industry": [ref.INDUSTRIES[i] for i in rng.integers(0, len(ref.INDUSTRIES), n)],
    }


def _company_domain(name: str) -> str:
    """A company's web domain from its name, the same for all of its contacts."""
    words = [
        w for w in re.split(r"[^a-z0-9]+", _ascii(name).lower()) if w and w not in _LEGAL_WORDS
    ]
    stem = "".join(words)[:20] or "empresa"
    return f"{stem}.com" if len(stem) % 5 == 0 else f"{stem}.com.ar"


def _email(first: str, last: str, domain: str, style: int, salt: int) -> str:
    f = re.sub(r"[^a-z]", "", _ascii(first.split()[0]).lower()) or "info"
    ln = re.sub(r"[^a-z]", "", _ascii(last.split()[0]).lower()) or "ventas"
    local = (f"{f}.{ln}", f"{f[0]}{ln}", f"{f}{ln}", f"{f}_{ln}", f"{ln}.{f}",
             f"{f}.{ln}{salt % 90 + 10}")[style]  # fmt: skip
    return f"{local}@{domain}"


def _invalid_email(email: str | None, first: str, kind: int) -> str:
    """An email a person typed wrong; each fails `^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$`."""
    local, _, domain = (email or f"{first}@gmail.com").partition("@")
    return (
        f"{local}@",
        "sin mail",
        f"{local}@{domain.split('.')[0]}",
        f"{local}@@{domain}",
        f"{local}.{domain}",
        f"{local.replace('.', ' ')} @{domain}",
        "no tiene",
    )[kind]


def _inject_anomalies(
    leads: _Leads, rates: AnomalyRates, n_rows: int, rng: np.random.Generator
) -> dict[str, set[int]]:
    """Disjoint sets of distinct leads carrying each defect, applied in place."""
    n = len(leads.lead_id)
    free = np.ones(n, dtype=bool)

    def take(k: int, eligible: np.ndarray) -> set[int]:
        pool = np.flatnonzero(free & eligible)
        chosen = rng.choice(pool, min(k, len(pool)), replace=False) if len(pool) else pool
        free[chosen] = False
        return set(chosen.tolist())

    everyone = np.ones(n, dtype=bool)
    missing = take(_count(rates.lead_missing_contact, n_rows), everyone)
    for i in sorted(missing):
        leads.email[i] = None
        leads.phone[i] = None

    bad_email = take(_count(rates.lead_invalid_email, n_rows), everyone)
    kinds = rng.integers(0, 7, n)
    for i in sorted(bad_email):
        first = (leads.contact_name[i] or "juan").split()[0].strip(",").lower()
        leads.email[i] = _invalid_email(leads.email[i], _ascii(first), int(kinds[i]))
        if leads.phone[i] is None:  # keep it reachable: otherwise it is a missing contact
            leads.phone[i] = ("11", str(int(rng.integers(40_000_000, 70_000_000))))

    # Mistyped check digits go on prospects, so every platform match stays matchable.
    bad_cuit = take(_count(rates.lead_invalid_cuit, n_rows), leads.matched_company_id < 0)
    shifts = rng.integers(1, 10, n)
    for i in sorted(bad_cuit):
        digits = leads.cuit[i]
        leads.cuit[i] = digits[:10] + str((int(digits[10]) + int(shifts[i])) % 10)
    return {"missing_contact": missing, "invalid_email": bad_email, "invalid_cuit": bad_cuit}


def _pick_duplicates(
    leads: _Leads,
    campaigns: list[_Campaign],
    n_dup: int,
    injected: dict[str, set[int]],
    rng: np.random.Generator,
) -> dict[int, int]:
    """Clean leads exported again in another campaign's file that was exported after capture."""
    if n_dup <= 0:
        return {}
    defective = set().union(*injected.values())
    exported = np.array([c.exported_at for c in campaigns], dtype="datetime64[m]")
    captured = np.array(leads.captured, dtype="datetime64[m]")
    eligible = (exported[None, :] >= captured[:, None]) & (
        np.arange(len(campaigns))[None, :] != leads.campaign[:, None]
    )
    clean = np.array([i not in defective for i in range(len(captured))])
    candidates = np.flatnonzero(clean & eligible.any(axis=1))
    chosen = rng.choice(candidates, min(n_dup, len(candidates)), replace=False)
    return {int(i): int(rng.choice(np.flatnonzero(eligible[i]))) for i in sorted(chosen.tolist())}


# ---------------------------------------------------------------- rendering


def _decorate_header(text: str, rng: np.random.Generator) -> str:
    """Stray case, accents and spaces, as typed by hand."""
    r = rng.random(5)
    if r[0] < 0.15:
        text = text.upper()
    elif r[0] < 0.25:
        text = text.lower()
    if r[1] < 0.1:
        text = _ascii(text)
    if r[2] < 0.08:
        text = text.replace(" ", "  ")
    if r[3] < 0.1:
        text = text + " "
    if r[4] < 0.05:
        text = " " + text
    return text


def _plan_styles(n: int, rng: np.random.Generator) -> list[_FileStyle]:
    offsets = _spread([0, 1, 2, 3], n, rng)
    languages = _spread(["es", "en", "mixed"], n, rng)
    date_styles = _spread(["excel", "text", "mixed"], n, rng)
    extras_count = _spread([0, 1, 2, 3], n, rng)
    styles = []
    for i in range(n):
        extras = tuple(
            str(x) for x in rng.choice(_EXTRA_COLUMNS, extras_count[i], replace=False).tolist()
        )
        fields = [*LEAD_FIELDS, *extras]
        if rng.random() < 0.5:
            columns = [fields[j] for j in rng.permutation(len(fields))]
        else:  # the tool's own order with a couple of columns dragged around
            columns = fields[:]
            for _ in range(2):
                a, b = rng.integers(0, len(columns), 2)
                columns[a], columns[b] = columns[b], columns[a]
        headers = []
        for col in columns:
            if col not in HEADER_ALIASES:
                headers.append(col)
                continue
            language = languages[i] if languages[i] != "mixed" else ("es", "en")[rng.integers(2)]
            options = HEADER_ALIASES[col][language]
            headers.append(_decorate_header(options[int(rng.integers(len(options)))], rng))
        styles.append(
            _FileStyle(
                header_offset=offsets[i] + (1 if offsets[i] == 3 and rng.random() < 0.5 else 0),
                language=languages[i],
                date_style=date_styles[i],
                date_format=str(rng.choice(_EXCEL_DATE_FORMATS)),
                channel_style=("code", "es", "en")[int(rng.integers(3))],
                extras=extras,
                columns=tuple(columns),
                headers=tuple(headers),
                sort_by_company=bool(rng.random() < 0.2),
                sheet_name=str(rng.choice(_SHEET_NAMES)),
            )
        )
    return styles


def _phone_text(area: str, number: str, style: int) -> str:
    head, tail = number[:-4], number[-4:]
    return (
        f"+54 9 {area} {head}-{tail}",
        f"(0{area}) {head}-{tail}",
        f"{area}{number}",
        f"+54{area}{number}",
        f"0{area}-{head}-{tail}",
        f"15-{head}-{tail}",
        f"{area} {head} {tail}",
    )[style]


def _case(text: str | None, style: int) -> str | None:
    if text is None:
        return None
    return (text, text.upper(), text.title())[style]


def _email_case(email: str, style: int) -> str:
    local, at, domain = email.partition("@")
    if style == 1:
        return ".".join(p.capitalize() for p in local.split(".")) + at + domain.capitalize()
    return email.upper() if style == 2 else email


def _country_text(code: str | None, pick: float) -> str | None:
    if code is None:
        return None
    if code == "AR":
        return _AR_SPELLINGS[int(np.searchsorted(_AR_SPELLING_CUM[:-1], pick, side="right"))]
    name = _COUNTRY_NAMES.get(code, code)
    return name if pick < 0.7 else code


def _row_values(
    leads: _Leads,
    i: int,
    duplicate: bool,
    campaigns: list[_Campaign],
    style: _FileStyle,
    extras: dict[str, Any],
    rng: np.random.Generator,
) -> dict[str, Any]:
    """The cells of one lead as this file shows them; a re-export changes formatting only."""
    cuit_fmt = int(leads.cuit_fmt[i])
    phone_style = int(leads.phone_style[i])
    name_case = int(leads.name_case[i])
    email = leads.email[i]
    if duplicate:
        cuit_fmt = (cuit_fmt + 1 + int(rng.integers(2))) % 3
        phone_style = (phone_style + 1 + int(rng.integers(_N_PHONE_STYLES - 1))) % _N_PHONE_STYLES
        name_case = (name_case + 1) % 3
        if email is not None:
            email = _email_case(email, 1 + int(rng.integers(2)))

    digits = leads.cuit[i]
    cuit: str | int = (format_cuit(digits), digits, int(digits))[cuit_fmt]
    captured: dt.datetime | str = leads.captured[i]
    if style.date_style == "text" or (style.date_style == "mixed" and rng.random() < 0.35):
        captured = leads.captured[i].strftime("%d/%m/%Y")
    province = leads.province[i]
    if province in _PROVINCE_SPELLINGS and rng.random() < 0.4:
        options = _PROVINCE_SPELLINGS[province]
        province = options[int(rng.integers(len(options)))]
    elif province is not None and rng.random() < 0.1:
        province = _ascii(province)
    industry = leads.industry[i]
    if industry is not None and rng.random() < 0.1:
        industry = industry.upper() if rng.random() < 0.5 else industry.lower()
    phone = leads.phone[i]
    campaign = campaigns[int(leads.campaign[i])]
    return {
        "lead_id": leads.lead_id[i],
        "captured_at": captured,
        "campaign": campaign.name,
        "channel": CHANNEL_LABELS[campaign.channel][style.channel_style],
        "company_name": _case(leads.company_name[i], name_case),
        "cuit": cuit,
        "contact_name": leads.contact_name[i],
        "email": email,
        "phone": None if phone is None else _phone_text(phone[0], phone[1], phone_style),
        "country": _country_text(leads.country[i], float(rng.random())),
        "province": province,
        "city": leads.city[i],
        "industry": industry,
        **extras,
    }


def _extra_values(style: _FileStyle, owners: list[str], rng: np.random.Generator) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for col in style.extras:
        if col in ("Notas", "Comentarios"):
            values[col] = str(rng.choice(_NOTES)) if rng.random() < 0.4 else None
        elif col in ("Owner", "Responsable"):
            values[col] = owners[int(rng.integers(len(owners)))] if rng.random() < 0.9 else None
        elif col == "Score":
            values[col] = int(rng.integers(0, 101))
        else:
            values[col] = str(rng.choice(_STATES))
    return values


def _title_rows(campaign: _Campaign, style: _FileStyle, owner: str) -> list[list[Any]]:
    spanish = style.language != "en"
    title = (
        f"Exportación campaña {campaign.name}" if spanish else f"Campaign export: {campaign.name}"
    )
    subtitle = (
        f"Generado el {campaign.exported_at:%d/%m/%Y %H:%M} por {owner}"
        if spanish
        else f"Exported {campaign.exported_at:%Y-%m-%d %H:%M} by {owner}"
    )
    layouts: dict[int, list[list[Any]]] = {
        0: [],
        1: [[title]],
        2: [[title], []],
        3: [[title], [subtitle], []],
        4: [[title], [subtitle], [], []],
    }
    return layouts[style.header_offset]


def _write_file(
    path: Path,
    campaign: _Campaign,
    style: _FileStyle,
    leads: _Leads,
    originals: list[int],
    dups: list[int],
    campaigns: list[_Campaign],
    owners: list[str],
    rng: np.random.Generator,
) -> int:
    """Write one campaign export; returns the number of data rows."""
    rows = [
        _row_values(leads, i, False, campaigns, style, _extra_values(style, owners, rng), rng)
        for i in originals
    ]
    if style.sort_by_company:
        rows.sort(key=lambda r: (_ascii(r["company_name"]).lower(), r["lead_id"]))
    for i in dups:  # pasted in from another export, wherever the cursor was
        row = _row_values(leads, i, True, campaigns, style, _extra_values(style, owners, rng), rng)
        rows.insert(int(rng.integers(0, len(rows) + 1)), row)
    n_data = len(rows)
    # Blank rows between data (a deleted lead, a visual separator).
    grid: list[list[Any] | None] = [[r.get(c) for c in style.columns] for r in rows]
    for _ in range(int(rng.binomial(n_data, 0.02)) + int(rng.random() < 0.5) if n_data else 0):
        grid.insert(int(rng.integers(1, len(grid) + 1)), None)

    owner = owners[int(rng.integers(len(owners)))]
    workbook = xlsxwriter.Workbook(str(path), {"in_memory": True})
    # Fixed creation date: otherwise docProps/core.xml holds "now" and the bytes differ.
    workbook.set_properties(
        {"created": campaign.exported_at, "author": owner, "title": campaign.name}
    )
    sheet = workbook.add_worksheet(style.sheet_name)
    date_format = workbook.add_format({"num_format": style.date_format})
    integer = workbook.add_format({"num_format": "0"})
    bold = workbook.add_format({"bold": True})
    titles = _title_rows(campaign, style, owner)
    for r, cells in enumerate(titles):
        for c, value in enumerate(cells):
            sheet.write_string(r, c, value, bold if r == 0 else None)
    header_row = len(titles)
    for c, header in enumerate(style.headers):
        sheet.write_string(header_row, c, header, bold)
    for r, cells in enumerate(grid, start=header_row + 1):
        if cells is None:
            continue
        for c, value in enumerate(cells):
            if value is None:
                continue
            if isinstance(value, str):
                sheet.write_string(r, c, value)
            elif isinstance(value, dt.datetime):
                sheet.write_datetime(r, c, value, date_format)
            else:
                sheet.write_number(r, c, value, integer)
    sheet.set_column(0, len(style.columns) - 1, 18)
    workbook.close()
    return n_data
