"""A lead's cells as one file shows them: CUIT, dates, phones, names, emails, countries
and provinces typed each file's way, plus the extra columns a CRM export carries."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from b2b_common.cuit import format_cuit
from b2b_common.text import fold_accents
from generators.leads.campaigns import CHANNEL_LABELS, Campaign
from generators.leads.contacts import PHONE_STYLES, phone_text
from generators.leads.records import Leads
from generators.leads.styles import FileStyle

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
_NOTES = (
    "Interesado en catálogo", "Pidió cotización", "Llamar la semana próxima",
    "Ya compra a la competencia", "Volver a contactar", "Visitó el stand", "No atiende",
)  # fmt: skip
_STATES = ("Nuevo", "Contactado", "Calificado", "Descartado")


def row_values(
    leads: Leads,
    lead: int,
    duplicate: bool,
    campaigns: list[Campaign],
    style: FileStyle,
    extras: dict[str, Any],
    rng: np.random.Generator,
) -> dict[str, Any]:
    """The cells of one lead as this file shows them; a re-export changes formatting only."""
    cuit_format, phone_style, name_case, email = _formatting(leads, lead, duplicate, rng)
    digits = leads.cuit[lead]
    cuit: str | int = (format_cuit(digits), digits, int(digits))[cuit_format]
    captured: dt.datetime | str = leads.captured[lead]
    if style.date_style == "text" or (style.date_style == "mixed" and rng.random() < 0.35):
        captured = leads.captured[lead].strftime("%d/%m/%Y")
    province = _province_text(leads.province[lead], rng)
    industry = leads.industry[lead]
    if industry is not None and rng.random() < 0.1:
        industry = industry.upper() if rng.random() < 0.5 else industry.lower()
    phone = leads.phone[lead]
    campaign = campaigns[int(leads.campaign_idx[lead])]
    return {
        "lead_id": leads.lead_id[lead],
        "captured_at": captured,
        "campaign": campaign.name,
        "channel": CHANNEL_LABELS[campaign.channel][style.channel_style],
        "company_name": _case(leads.company_name[lead], name_case),
        "cuit": cuit,
        "contact_name": leads.contact_name[lead],
        "email": email,
        "phone": None if phone is None else phone_text(phone[0], phone[1], phone_style),
        "country": _country_text(leads.country[lead], float(rng.random())),
        "province": province,
        "city": leads.city[lead],
        "industry": industry,
        **extras,
    }


def _formatting(
    leads: Leads, lead: int, duplicate: bool, rng: np.random.Generator
) -> tuple[int, int, int, str | None]:
    """CUIT format, phone style, name case and email of a lead; a re-export (``duplicate``)
    types each of them another way."""
    cuit_format = int(leads.cuit_format[lead])
    phone_style = int(leads.phone_style[lead])
    name_case = int(leads.name_case[lead])
    email = leads.email[lead]
    if duplicate:
        cuit_format = (cuit_format + 1 + int(rng.integers(2))) % 3
        phone_style = (phone_style + 1 + int(rng.integers(PHONE_STYLES - 1))) % PHONE_STYLES
        name_case = (name_case + 1) % 3
        if email is not None:
            email = _email_case(email, 1 + int(rng.integers(2)))
    return cuit_format, phone_style, name_case, email


def _province_text(province: str | None, rng: np.random.Generator) -> str | None:
    if province in _PROVINCE_SPELLINGS and rng.random() < 0.4:
        options = _PROVINCE_SPELLINGS[province]
        return options[int(rng.integers(len(options)))]
    if province is not None and rng.random() < 0.1:
        return fold_accents(province)
    return province


def _case(text: str | None, style: int) -> str | None:
    if text is None:
        return None
    return (text, text.upper(), text.title())[style]


def _email_case(email: str, style: int) -> str:
    local, at, domain = email.partition("@")
    if style == 1:
        return ".".join(part.capitalize() for part in local.split(".")) + at + domain.capitalize()
    return email.upper() if style == 2 else email


def _country_text(code: str | None, pick: float) -> str | None:
    if code is None:
        return None
    if code == "AR":
        return _AR_SPELLINGS[int(np.searchsorted(_AR_SPELLING_CUM[:-1], pick, side="right"))]
    name = _COUNTRY_NAMES.get(code, code)
    return name if pick < 0.7 else code


def extra_values(style: FileStyle, owners: list[str], rng: np.random.Generator) -> dict[str, Any]:
    """A value (or None) for each of the file's extra columns."""
    values: dict[str, Any] = {}
    for column in style.extras:
        if column in ("Notas", "Comentarios"):
            values[column] = str(rng.choice(_NOTES)) if rng.random() < 0.4 else None
        elif column in ("Owner", "Responsable"):
            values[column] = owners[int(rng.integers(len(owners)))] if rng.random() < 0.9 else None
        elif column == "Score":
            values[column] = int(rng.integers(0, 101))
        else:
            values[column] = str(rng.choice(_STATES))
    return values
