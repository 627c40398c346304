"""The customers table: people with identity documents, birth dates and contacts, some
with a mistyped document, an implausible birth date or a second registration."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
from faker import Faker

from generators import reference as ref
from generators.config import GenerationConfig
from generators.draws import ascii_lower, name_pools
from generators.platform.columns import (
    anomaly_mask,
    build_frame,
    pick_weighted,
    places,
    repeats,
    timestamps,
)

_MAIL_DOMAINS = np.array(
    ["gmail.com", "hotmail.com", "yahoo.com.ar", "outlook.com", "fibertel.com.ar"]
)


def draw_customers(
    config: GenerationConfig, rng: np.random.Generator, fake: Faker, injected: dict[str, int]
) -> pl.DataFrame:
    """Every customer, then the ones registered a second time."""
    count = config.scale.customers
    pool = max(200, min(count, 3_000))
    first_pool, last_pool = (np.array(names, dtype=object) for names in name_pools(fake, pool))
    first = first_pool[rng.integers(0, pool, size=count)]
    last = last_pool[rng.integers(0, pool, size=count)]
    document_types, documents, invalid = _documents(config, rng, injected)
    birth = _birth_dates(config, rng, injected)
    emails = _emails(rng, first, last)
    phones = _phones(rng, count)
    provinces, cities = places(rng, np.full(count, "AR", dtype=object))
    created = timestamps(rng, config.start - dt.timedelta(days=3 * 365), config.end, count)
    customers = build_frame(
        {
            "customer_id": np.arange(1, count + 1, dtype=np.int64),
            "document_type": document_types,
            "document_number": documents,
            "full_name": [f"{a} {b}" for a, b in zip(first, last, strict=True)],
            "date_of_birth": birth.astype("datetime64[D]"),
            "email": emails,
            "phone": phones,
            "province": provinces,
            "city": cities,
            "created_at": created,
        },
        schema_overrides={
            "document_type": pl.String,
            "document_number": pl.String,
            "email": pl.String,
            "province": pl.String,
            "city": pl.String,
        },
    ).with_columns(pl.col("date_of_birth").cast(pl.Date), updated_at=pl.col("created_at"))
    duplicates = _registered_again(customers.filter(~pl.Series(invalid)), config, injected)
    return pl.concat([customers, duplicates])


def document_numbers(rng: np.random.Generator, count: int, distinct: bool = False) -> np.ndarray:
    """DNI-like numbers; with ``distinct`` a number drawn twice is drawn again."""
    numbers = rng.integers(5_000_000, 48_000_000, size=count)
    while distinct and (again := repeats(numbers)).any():
        numbers[again] = rng.integers(5_000_000, 48_000_000, size=int(again.sum()))
    return numbers


def _format_documents(numbers: np.ndarray, styles: np.ndarray) -> list[str]:
    """As typed at the counter: bare (style 0), with thousands dots (1) or with spaces (2)."""
    typed = []
    for number, style in zip(numbers, styles, strict=True):
        text = str(number)
        if style == 1:
            text = f"{number:,}".replace(",", ".")
        elif style == 2:
            text = f"{number:,}".replace(",", " ")
        typed.append(text)
    return typed


def _documents(
    config: GenerationConfig, rng: np.random.Generator, injected: dict[str, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Document type and number as typed, and which numbers are mistyped."""
    count = config.scale.customers
    numbers = document_numbers(rng, count, config.scale.distinct_ids)
    styles = rng.choice(3, size=count, p=[0.75, 0.2, 0.05])
    documents = np.array(_format_documents(numbers, styles), dtype=object)
    document_types = pick_weighted(rng, ref.DOCUMENT_TYPES, count)
    invalid = anomaly_mask(rng, count, config.anomalies.invalid_document)
    # a letter typed into the number, or the number cut short
    documents[invalid] = [
        text[:3] + "A" + text[4:] if i % 2 else text[:4]
        for i, text in enumerate(documents[invalid])
    ]
    injected["invalid_document"] = int(invalid.sum())
    return document_types, documents, invalid


def _birth_dates(
    config: GenerationConfig, rng: np.random.Generator, injected: dict[str, int]
) -> np.ndarray:
    """Birth dates from 1945 on; implausible ones lie in the future or before 1890."""
    count = config.scale.customers
    birth = np.datetime64("1945-01-01") + rng.integers(0, 60 * 365, size=count).astype(
        "timedelta64[D]"
    )
    implausible = anomaly_mask(rng, count, config.anomalies.implausible_birth_date)
    future = rng.random(count) < 0.5
    birth[implausible & future] = np.datetime64(config.as_of) + rng.integers(
        30, 3_000, size=int((implausible & future).sum())
    ).astype("timedelta64[D]")
    birth[implausible & ~future] = np.datetime64("1850-01-01") + rng.integers(
        0, 40 * 365, size=int((implausible & ~future).sum())
    ).astype("timedelta64[D]")
    injected["implausible_birth_date"] = int(implausible.sum())
    return birth


def _emails(rng: np.random.Generator, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """first.last<number>@<free mail>, missing (None) for some customers."""
    count = len(first)
    emails = [
        f"{ascii_lower(a)}.{ascii_lower(b)}{number}@{domain}".replace(" ", "")
        for a, b, number, domain in zip(
            first,
            last,
            rng.integers(1, 999, count),
            _MAIL_DOMAINS[rng.integers(0, 5, count)],
            strict=True,
        )
    ]
    missing = rng.random(count) < 0.08
    return np.where(missing, None, np.array(emails, dtype=object))


def _phones(rng: np.random.Generator, count: int) -> list[str]:
    return [
        f"+54 9 11 {a:04d}-{b:04d}"
        for a, b in zip(rng.integers(0, 9999, count), rng.integers(0, 9999, count), strict=True)
    ]


def _registered_again(
    valid: pl.DataFrame, config: GenerationConfig, injected: dict[str, int]
) -> pl.DataFrame:
    """Duplicates: the same person registered again, document typed another way."""
    count = config.scale.customers
    originals = valid.sample(
        n=max(1, round(count * config.anomalies.duplicate_customer)), seed=config.seed + 1
    )
    numbers = originals["document_number"]
    digits = numbers.str.replace_all(r"[.\s]", "").cast(pl.Int64).to_numpy()
    # bare numbers get thousands dots; dotted or spaced ones lose them
    styles = np.where(numbers.str.contains(r"[.\s]").to_numpy().astype(int) == 0, 1, 0)
    duplicates = originals.with_columns(
        customer_id=pl.int_range(count + 1, count + 1 + originals.height, dtype=pl.Int64),
        document_number=pl.Series(_format_documents(digits, styles)),
        full_name=pl.col("full_name").str.to_uppercase(),
        created_at=pl.col("created_at") + pl.duration(days=200),
        updated_at=pl.col("updated_at") + pl.duration(days=200),
    )
    injected["duplicate_customer"] = duplicates.height
    return duplicates
