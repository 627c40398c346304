"""Draws the simulators share: seeded Faker name pools, anomaly counts, largest-remainder
shares, evenly spread picks and CUIT digits.

Each helper makes exactly the draws the simulators made before they shared it, in the
same order, so generated data stays byte-identical for a seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np
from faker import Faker

from b2b_common.text import fold_accents

_Value = TypeVar("_Value")


def seeded_faker(seed: int) -> Faker:
    """An Argentine-Spanish Faker whose names depend on ``seed`` only."""
    fake = Faker("es_AR")
    fake.seed_instance(seed)
    return fake


def name_pools(fake: Faker, size: int) -> tuple[list[str], list[str]]:
    """``size`` first names, then ``size`` surnames: rows sample from these pools, since
    Faker is slow per row."""
    first_names = [fake.first_name() for _ in range(size)]
    last_names = [fake.last_name() for _ in range(size)]
    return first_names, last_names


def ascii_lower(text: str) -> str:
    """Lower case without accents, as in user names, emails and web domains."""
    return fold_accents(text).lower()


def anomaly_count(rate: float, total: int) -> int:
    """Rows for an anomaly rate: at least one whenever the rate is positive."""
    return 0 if rate <= 0 or total <= 0 else max(1, round(rate * total))


def largest_remainder(exact: np.ndarray, total: int) -> np.ndarray:
    """Whole numbers summing to ``total``: the floors of ``exact`` (which sums to ``total``),
    plus one for the largest fractional parts (ties in order)."""
    whole = np.floor(exact).astype(np.int64)
    whole[np.argsort(-(exact - whole), kind="stable")[: total - whole.sum()]] += 1
    return whole


def spread(values: Sequence[_Value], count: int, rng: np.random.Generator) -> list[_Value]:
    """``count`` picks that cycle through a shuffle of ``values``, so every value shows up
    once ``count`` allows."""
    order = [values[i] for i in rng.permutation(len(values))]
    return [order[i % len(order)] for i in range(count)]


def digit_columns(values: np.ndarray, width: int) -> np.ndarray:
    """The decimal digits of each value as a (len(values), width) array, most significant first."""
    return (values[:, None] // 10 ** np.arange(width - 1, -1, -1)) % 10


def with_wrong_check_digit(cuit: str, shift: int) -> str:
    """The 11-digit ``cuit`` with its check digit moved by ``shift`` (1-9): never valid,
    since every other digit 0-9 is wrong and a right digit of 10 does not exist."""
    return cuit[:10] + str((int(cuit[10]) + shift) % 10)
