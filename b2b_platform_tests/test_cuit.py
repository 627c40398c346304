import numpy as np
import pytest

from b2b_platform.lib.cuit import (
    check_digits_array,
    cuit_check_digit,
    format_cuit,
    is_valid_cuit,
    normalize_cuit,
)

# Published CUITs of real organisations (AFIP itself, YPF, Mercado Libre, Banco Nación).
REAL_CUITS = ["33-69345023-9", "30-54668997-9", "30-70308853-4", "30-50001091-2"]


@pytest.mark.parametrize("cuit", REAL_CUITS)
def test_real_cuits_are_valid(cuit):
    assert is_valid_cuit(cuit)
    assert is_valid_cuit(cuit.replace("-", ""))


def test_wrong_check_digit_is_invalid():
    for wrong in range(10):
        if wrong != 9:
            assert not is_valid_cuit(f"33-69345023-{wrong}")


def test_remainder_ten_has_no_valid_digit():
    # 20-00000003: sum = 2*5 + 3*2 = 16, 16 % 11 = 5 -> 6; search a body whose digit is 10
    body = next(
        f"20{n:08d}"
        for n in range(10_000_000, 10_100_000)
        if cuit_check_digit(f"20{n:08d}") is None
    )
    assert all(not is_valid_cuit(body + str(d)) for d in range(10))
    # AFIP re-issues such numbers under prefix 23 with check digit 9 (men) or 4 (women)
    assert cuit_check_digit("23" + body[2:]) == 9


def test_remainder_eleven_gives_zero():
    body = next(
        f"30{n:08d}" for n in range(50_000_000, 50_100_000) if cuit_check_digit(f"30{n:08d}") == 0
    )
    assert is_valid_cuit(body + "0")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("30-54668997-9", "30546689979"),
        (" 30546689979 ", "30546689979"),
        ("30.54668997.9", "30546689979"),
        ("30 54668997 9", "30546689979"),
        ("3054668997", None),
        ("30-5466899A-9", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_cuit(raw, expected):
    assert normalize_cuit(raw) == expected


def test_format_cuit_round_trips():
    assert format_cuit("30546689979") == "30-54668997-9"


def test_vectorized_matches_scalar():
    rng = np.random.default_rng(0)
    digits = rng.integers(0, 10, size=(2_000, 10))
    vector = check_digits_array(digits)
    for row, got in zip(digits, vector, strict=True):
        expected = cuit_check_digit("".join(map(str, row)))
        assert got == (-1 if expected is None else expected)


def test_sql_validation_agrees_with_python():
    import duckdb

    from b2b_platform.lib.cuit import cuit_is_valid_sql

    rng = np.random.default_rng(1)
    values = [f"{n:011d}" for n in rng.integers(20_000_000_000, 34_999_999_999, size=3_000)]
    values += [c.replace("-", "") for c in REAL_CUITS] + ["3054668997", "3054668997X", ""]
    conn = duckdb.connect()
    got = conn.execute(
        f"SELECT {cuit_is_valid_sql('v')} FROM unnest(?::VARCHAR[]) AS t(v)", [values]
    ).fetchall()
    assert [g[0] for g in got] == [is_valid_cuit(v) for v in values]
    assert sum(g[0] for g in got) > 200  # about 1 in 11 random numbers is valid
