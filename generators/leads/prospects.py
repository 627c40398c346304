"""Prospects: companies not on the platform, with fresh valid CUITs, names that sound
Argentine and a place in Argentina."""

from __future__ import annotations

from typing import Any

import numpy as np

from b2b_common.cuit import check_digits_array
from generators import reference as ref
from generators.draws import digit_columns

_COMPANY_PATTERNS = (
    "{L} S.A.", "{L} S.R.L.", "{L} Hnos. S.A.", "{L} y {L2} S.R.L.", "Distribuidora {L} S.A.",
    "Agropecuaria {L} S.A.", "{L} Logística S.A.S.", "Grupo {L} S.A.", "Comercial {L} S.R.L.",
    "Industrias {L} S.A.", "{L} & Asociados S.R.L.",
)  # fmt: skip


def fresh_cuits(count: int, taken: set[str], rng: np.random.Generator) -> list[str]:
    """``count`` distinct valid CUITs (never a number whose check digit would be 10) not in
    ``taken``."""
    cuits: list[str] = []
    seen = set(taken)
    while len(cuits) < count:
        batch = 2 * (count - len(cuits)) + 8
        prefix = rng.choice(np.array([30, 33, 30, 30, 20, 27]), batch)
        person = prefix < 30
        body = np.where(
            person,
            rng.integers(20_000_000, 46_000_000, batch),
            rng.integers(50_000_000, 72_000_000, batch),
        )
        value = prefix.astype(np.int64) * 100_000_000 + body
        check = check_digits_array(digit_columns(value, 10))
        for number, digit in zip(value.tolist(), check.tolist(), strict=True):
            cuit = f"{number:010d}{digit}"
            if digit >= 0 and cuit not in seen:
                seen.add(cuit)
                cuits.append(cuit)
    return cuits[:count]


def prospect_companies(
    n_leads: int,
    platform_cuits: list[str],
    first_names: list[str],
    last_names: list[str],
    rng: np.random.Generator,
) -> dict[str, list[Any]]:
    """Companies not on the platform, by lead field (company_name, cuit, country, province,
    city, industry); fewer than their leads, so some get two contacts."""
    count = max(1, round(n_leads * 0.85))
    cuits = fresh_cuits(count, set(platform_cuits), rng)
    provinces = list(ref.AR_PROVINCES)
    weights = np.array(ref.AR_PROVINCE_WEIGHTS) / sum(ref.AR_PROVINCE_WEIGHTS)
    province_idx = rng.choice(len(provinces), count, p=weights)
    pattern = rng.integers(0, len(_COMPANY_PATTERNS), count)
    surname_idx = rng.integers(0, len(last_names), (count, 2))
    given_idx = rng.integers(0, len(first_names), count)
    names: list[str] = []
    cities: list[str] = []
    for i in range(count):
        surname, other_surname = (last_names[j] for j in surname_idx[i])
        if cuits[i][:2] in ("20", "23", "27"):  # a sole trader trades under their own name
            names.append(f"{first_names[given_idx[i]]} {surname}")
        else:
            names.append(_COMPANY_PATTERNS[pattern[i]].format(L=surname, L2=other_surname))
        options = ref.AR_PROVINCES[provinces[province_idx[i]]]
        cities.append(options[int(rng.integers(0, len(options)))])
    return {
        "company_name": names,
        "cuit": cuits,
        "country": ["AR"] * count,
        "province": [provinces[i] for i in province_idx],
        "city": cities,
        "industry": [ref.INDUSTRIES[i] for i in rng.integers(0, len(ref.INDUSTRIES), count)],
    }
