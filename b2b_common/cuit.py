"""CUIT (Argentine tax id) normalization and check-digit validation.

A CUIT is 11 digits: a 2-digit type prefix, an 8-digit number and a check digit
computed with weights 5,4,3,2,7,6,5,4,3,2 modulo 11. When 11 - (sum mod 11) is 11
the digit is 0; when it is 10 no CUIT exists with that prefix (AFIP issues the
number under prefix 23/33 instead), so such a number is never valid.
"""

from __future__ import annotations

import re

import numpy as np

CUIT_WEIGHTS: tuple[int, ...] = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
_SEPARATORS = re.compile(r"[\s\-./]")


def cuit_check_digit(first_ten: str) -> int | None:
    """Check digit for the first 10 digits, or None when no valid digit exists."""
    if len(first_ten) != 10 or not first_ten.isdigit():
        raise ValueError(f"expected 10 digits, got {first_ten!r}")
    remainder = 11 - sum(int(d) * w for d, w in zip(first_ten, CUIT_WEIGHTS, strict=True)) % 11
    if remainder == 11:
        return 0
    if remainder == 10:
        return None
    return remainder


def normalize_cuit(value: str | None) -> str | None:
    """The 11 bare digits of a CUIT typed with or without dashes, or None if not 11 digits."""
    if value is None:
        return None
    digits = _SEPARATORS.sub("", value.strip())
    return digits if len(digits) == 11 and digits.isdigit() else None


def is_valid_cuit(value: str | None) -> bool:
    """True when the value normalizes to 11 digits whose check digit is right."""
    digits = normalize_cuit(value)
    if digits is None:
        return False
    return cuit_check_digit(digits[:10]) == int(digits[10])


def format_cuit(digits: str) -> str:
    """`NN-NNNNNNNN-N` from 11 bare digits."""
    return f"{digits[:2]}-{digits[2:10]}-{digits[10]}"


def check_digits_array(first_ten: np.ndarray) -> np.ndarray:
    """Vectorized check digits for an (n, 10) int array; -1 where none is valid."""
    remainder = 11 - (first_ten @ np.asarray(CUIT_WEIGHTS)) % 11
    return np.where(remainder == 11, 0, np.where(remainder == 10, -1, remainder))


def cuit_is_valid_sql(column: str) -> str:
    """DuckDB expression: the column holds 11 digits with a right check digit.

    (11 - sum % 11) % 11 maps remainder 11 to 0 and leaves 10, which no digit equals.
    """
    terms = " + ".join(
        f"{w} * TRY_CAST(substr({column}, {i + 1}, 1) AS INTEGER)"
        for i, w in enumerate(CUIT_WEIGHTS)
    )
    return (
        f"coalesce(regexp_full_match({column}, '[0-9]{{11}}')"
        f" AND (11 - ({terms}) % 11) % 11 = TRY_CAST(substr({column}, 11, 1) AS INTEGER), false)"
    )
