"""The client companies (with mistyped and duplicated CUITs) and the suppliers among them."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
from faker import Faker

from b2b_common.cuit import check_digits_array, format_cuit
from generators import reference as ref
from generators.config import GenerationConfig
from generators.draws import digit_columns, with_wrong_check_digit
from generators.platform.columns import (
    anomaly_mask,
    build_frame,
    pick_weighted,
    places,
    repeats,
    timestamps,
)

# CUIT type prefixes as drawn: mostly companies (30, 33), a few sole traders (20, 27).
_PREFIXES = np.array([30, 30, 30, 33, 30, 20, 27])
_LEGAL_FORMS = ("S.A.", "S.R.L.", "S.A.S.")


def draw_cuits(
    rng: np.random.Generator, prefixes: np.ndarray, distinct: bool = False
) -> np.ndarray:
    """Valid 11-digit CUITs; numbers whose digit would be 10 move to prefix 23/33 as AFIP does.

    With ``distinct`` a number drawn twice is drawn again (see ScaleSpec.distinct_ids).
    """
    digits = np.zeros((len(prefixes), 10), dtype=np.int64)
    digits[:, 0] = prefixes // 10
    digits[:, 1] = prefixes % 10
    redraw = np.ones(len(prefixes), dtype=bool)
    while redraw.any():
        body = rng.integers(10_000_000, 99_999_999, size=int(redraw.sum()))
        digits[redraw, 2:] = digit_columns(body, 8)  # the 8-digit number after the prefix
        check = check_digits_array(digits)
        # 20/27 -> 23 and 30 -> 33: the remainder-10 rule (moves the digit from 10 to 9 or 4)
        movable = (check == -1) & np.isin(prefixes, (20, 27, 30))
        digits[movable, 0] = np.where(prefixes[movable] >= 30, 3, 2)
        digits[movable, 1] = 3
        check = check_digits_array(digits)
        redraw = check == -1  # already 23/33: AFIP would not issue that number, draw another
        if distinct:
            redraw |= repeats(digits @ 10 ** np.arange(9, -1, -1))
    return np.array(
        ["".join(map(str, row)) + str(digit) for row, digit in zip(digits, check, strict=True)],
        dtype=object,
    )


def draw_companies(
    config: GenerationConfig, rng: np.random.Generator, fake: Faker, injected: dict[str, int]
) -> pl.DataFrame:
    """Every client company, then the ones registered a second time."""
    count = config.scale.companies
    cuits, invalid = _typed_cuits(config, rng, injected)
    countries = pick_weighted(rng, ref.COMPANY_COUNTRIES, count)
    provinces, cities = places(rng, countries)
    created = timestamps(
        rng, config.start - dt.timedelta(days=5 * 365), config.start + dt.timedelta(days=60), count
    )
    companies = build_frame(
        {
            "company_id": np.arange(1, count + 1),
            "cuit": cuits,
            "legal_name": _legal_names(fake, count),
            "industry": np.array(ref.INDUSTRIES, dtype=object)[
                rng.integers(0, len(ref.INDUSTRIES), count)
            ],
            "country_code": countries,
            "province": provinces,
            "city": cities,
            "created_at": created,
        },
        schema_overrides={
            "cuit": pl.String,
            "legal_name": pl.String,
            "province": pl.String,
            "city": pl.String,
        },
    ).with_columns(updated_at=pl.col("created_at") + pl.duration(days=30))
    duplicates = _registered_again(companies.filter(~pl.Series(invalid)), config, injected)
    return pl.concat([companies.with_columns(pl.col("company_id").cast(pl.Int64)), duplicates])


def _typed_cuits(
    config: GenerationConfig, rng: np.random.Generator, injected: dict[str, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Each company's CUIT as typed (dashed, or bare on legacy rows), and which are invalid."""
    count = config.scale.companies
    cuits = draw_cuits(rng, rng.choice(_PREFIXES, size=count), config.scale.distinct_ids)
    invalid = anomaly_mask(rng, count, config.anomalies.invalid_cuit)
    shifts = rng.integers(1, 10, size=int(invalid.sum()))
    cuits[invalid] = [
        with_wrong_check_digit(cuit, int(shift))
        for cuit, shift in zip(cuits[invalid], shifts, strict=True)
    ]
    injected["invalid_cuit"] = int(invalid.sum())
    legacy = rng.random(count) < 0.1  # legacy rows keep 11 bare digits
    dashed = np.array([format_cuit(cuit) for cuit in cuits], dtype=object)
    return np.where(legacy, cuits, dashed), invalid


def _legal_names(fake: Faker, count: int) -> np.ndarray:
    return np.array(
        # es_AR's company formats join surnames with the English "and"
        [
            f"{fake.company().replace(' and ', ' y ')} {fake.random_element(_LEGAL_FORMS)}"
            for _ in range(count)
        ],
        dtype=object,
    )


def _registered_again(
    valid: pl.DataFrame, config: GenerationConfig, injected: dict[str, int]
) -> pl.DataFrame:
    """Duplicates: the same (valid) CUIT registered again, typed in the other format."""
    count = config.scale.companies
    originals = valid.sample(
        n=max(1, round(count * config.anomalies.duplicate_cuit)), seed=config.seed, shuffle=True
    )
    cuit = pl.col("cuit")
    duplicates = originals.with_columns(
        company_id=pl.int_range(count + 1, count + 1 + originals.height, dtype=pl.Int64),
        cuit=pl.when(cuit.str.contains("-"))
        .then(cuit.str.replace_all("-", ""))
        .otherwise(
            pl.format("{}-{}-{}", cuit.str.slice(0, 2), cuit.str.slice(2, 8), cuit.str.slice(10, 1))
        ),
        legal_name=pl.col("legal_name").str.to_uppercase(),
        created_at=pl.col("created_at") + pl.duration(days=400),
        updated_at=pl.col("updated_at") + pl.duration(days=400),
    )
    injected["duplicate_cuit"] = duplicates.height
    return duplicates


def draw_suppliers(
    config: GenerationConfig, rng: np.random.Generator, companies: pl.DataFrame
) -> pl.DataFrame:
    """Suppliers are client companies too (never a duplicate registration)."""
    count = config.scale.suppliers
    company_ids = rng.choice(
        companies["company_id"].to_numpy()[: config.scale.companies], count, replace=False
    )
    created = timestamps(rng, config.start - dt.timedelta(days=3 * 365), config.start, count)
    return build_frame(
        {
            "supplier_id": np.arange(1, count + 1, dtype=np.int64),
            "company_id": company_ids.astype(np.int64),
            "active": rng.random(count) < 0.92,
            "created_at": created,
        }
    ).with_columns(updated_at=pl.col("created_at") + pl.duration(days=90))
