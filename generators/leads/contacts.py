"""Lead contacts: a person's name, an email at the company's domain or a free mail
service, and an Argentine phone number (area code and local number)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from generators.draws import ascii_lower

_FREE_MAIL = ("gmail.com", "hotmail.com", "yahoo.com.ar", "outlook.com", "live.com.ar")
_AREA_CODES = ("11", "351", "341", "261", "381", "223", "221", "387", "299", "343", "342", "297")
_AREA_WEIGHTS = (0.5, 0.1, 0.08, 0.06, 0.04, 0.04, 0.05, 0.03, 0.03, 0.03, 0.02, 0.02)
PHONE_STYLES = 7  # ways phone_text types a number
# Words of a legal name left out of the company's web domain.
_LEGAL_WORDS = {"s", "a", "r", "l", "sa", "srl", "sas", "hnos", "y", "asociados", "and", "inc"}


@dataclass(frozen=True)
class Contacts:
    """One entry per lead; None where the lead has no such contact."""

    names: list[str | None] = field(default_factory=list)
    emails: list[str | None] = field(default_factory=list)
    phones: list[tuple[str, str] | None] = field(default_factory=list)  # (area code, number)


def draw_contacts(
    first_names: list[str], last_names: list[str], domains: list[str], rng: np.random.Generator
) -> Contacts:
    """A contact for each lead whose company has the web domain in ``domains``."""
    count = len(domains)
    first = rng.integers(0, len(first_names), count)
    last = rng.integers(0, len(last_names), count)
    has_email = rng.random(count) < 0.92
    has_phone = (rng.random(count) < 0.8) | ~has_email  # a normal lead has some way to reach it
    free_mail = rng.random(count) < 0.4
    email_style = rng.integers(0, 6, count)
    name_style = rng.choice(4, count, p=(0.85, 0.05, 0.05, 0.05))
    areas = rng.choice(len(_AREA_CODES), count, p=_AREA_WEIGHTS)
    numbers = _local_numbers(areas, rng)
    contacts = Contacts()
    for i in range(count):
        given, family = first_names[first[i]], last_names[last[i]]
        contacts.names.append(
            (f"{given} {family}", f"{given} {family}".upper(), f"{family}, {given}", None)[
                int(name_style[i])
            ]
        )
        domain = str(rng.choice(_FREE_MAIL)) if free_mail[i] else domains[i]
        contacts.emails.append(
            _email_address(given, family, domain, int(email_style[i]), i) if has_email[i] else None
        )
        contacts.phones.append(
            (_AREA_CODES[int(areas[i])], str(numbers[i])) if has_phone[i] else None
        )
    return contacts


def _local_numbers(areas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The local number after each area code (index into _AREA_CODES), never starting 0 or 1."""
    # Ten national digits: Buenos Aires (11) keeps 8 after the area code, the interior 7 or 6.
    local_len = 10 - np.array([len(code) for code in _AREA_CODES])[areas]
    low = 2 * 10 ** (local_len - 1)
    return low + np.floor(rng.random(len(areas)) * (10**local_len - low)).astype(np.int64)


def company_domain(name: str) -> str:
    """A company's web domain from its name, the same for all of its contacts."""
    words = [w for w in re.split(r"[^a-z0-9]+", ascii_lower(name)) if w and w not in _LEGAL_WORDS]
    stem = "".join(words)[:20] or "empresa"
    return f"{stem}.com" if len(stem) % 5 == 0 else f"{stem}.com.ar"


def _email_address(first: str, last: str, domain: str, style: int, salt: int) -> str:
    """One of six ways people build a work email from their name; ``salt`` numbers the last."""
    given = re.sub(r"[^a-z]", "", ascii_lower(first.split()[0])) or "info"
    family = re.sub(r"[^a-z]", "", ascii_lower(last.split()[0])) or "ventas"
    local = (
        f"{given}.{family}",
        f"{given[0]}{family}",
        f"{given}{family}",
        f"{given}_{family}",
        f"{family}.{given}",
        f"{given}.{family}{salt % 90 + 10}",
    )[style]
    return f"{local}@{domain}"


def phone_text(area: str, number: str, style: int) -> str:
    """The phone as typed in one of PHONE_STYLES ways."""
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
