import numpy as np
import pytest

from b2b_common.cuit import (
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


# Check digits worked out by hand: weights 5 4 3 2 7 6 5 4 3 2 over the first ten digits,
# r = sum % 11, digit = 11 - r; 11 - r = 11 is written 0 and 11 - r = 10 has no digit.
KNOWN_CHECK_DIGITS = [
    ("2012345678", 6),  # 10+0+3+4+21+24+25+24+21+16 = 148, r = 5 -> 6
    ("3369345023", 9),  # AFIP: 15+12+18+18+21+24+25+0+6+6 = 145, r = 2 -> 9
    ("3054668997", 9),  # YPF: 15+0+15+8+42+36+40+36+27+14 = 233, r = 2 -> 9
    ("3070308853", 4),  # Mercado Libre: 15+0+21+0+21+0+40+32+15+6 = 150, r = 7 -> 4
    ("3050001091", 2),  # Banco Nación: 15+0+15+0+0+0+5+0+27+2 = 64, r = 9 -> 2
    ("2040123456", 0),  # 10+0+12+0+7+12+15+16+15+12 = 99, r = 0 -> 11 -> 0
    ("2731987654", 0),  # 10+28+9+2+63+48+35+24+15+8 = 242, r = 0 -> 11 -> 0
    ("2041489649", None),  # 10+0+12+2+28+48+45+24+12+18 = 199, r = 1 -> 10: none
    ("2724687871", None),  # 10+28+6+8+42+48+35+32+21+2 = 232, r = 1 -> 10: none
    ("2341489649", 9),  # 20-41489649 under 23: 199 - 0*4 + 3*4 = 211, r = 2 -> 9
    ("2324687871", 4),  # 27-24687871 under 23: 232 - 7*4 + 3*4 = 216, r = 7 -> 4
]


@pytest.mark.parametrize(("first_ten", "digit"), KNOWN_CHECK_DIGITS)
def test_check_digit_known_answers(first_ten, digit):
    assert cuit_check_digit(first_ten) == digit
    valid = [d for d in range(10) if is_valid_cuit(f"{first_ten}{d}")]
    assert valid == ([] if digit is None else [digit])
    assert check_digits_array(np.array([[int(c) for c in first_ten]]))[0] == (
        -1 if digit is None else digit
    )


def test_remainder_ten_has_no_valid_digit():
    # 20-41489649: 199 % 11 = 1, 11 - 1 = 10: no digit makes it valid
    assert cuit_check_digit("2041489649") is None
    assert [d for d in range(10) if is_valid_cuit(f"20-41489649-{d}")] == []
    # AFIP re-issues such numbers under prefix 23 with check digit 9 (men) or 4 (women)
    assert is_valid_cuit("23-41489649-9")  # 20-41489649 gave 10
    assert is_valid_cuit("23-24687871-4")  # 27-24687871 gave 10
    assert not is_valid_cuit("23-41489649-4") and not is_valid_cuit("23-24687871-9")


def test_remainder_eleven_gives_zero():
    # 20-40123456: 99 % 11 = 0, 11 - 0 = 11, written 0
    assert is_valid_cuit("20-40123456-0") and is_valid_cuit("27-31987654-0")
    assert not is_valid_cuit("20-40123456-1")  # not the 1 of a naive "11"


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

    from b2b_common.cuit import cuit_is_valid_sql

    rng = np.random.default_rng(1)
    values = [f"{n:011d}" for n in rng.integers(20_000_000_000, 34_999_999_999, size=3_000)]
    values += [c.replace("-", "") for c in REAL_CUITS] + ["3054668997", "3054668997X", ""]
    conn = duckdb.connect()
    got = conn.execute(
        f"SELECT {cuit_is_valid_sql('v')} FROM unnest(?::VARCHAR[]) AS t(v)", [values]
    ).fetchall()
    assert [g[0] for g in got] == [is_valid_cuit(v) for v in values]
    assert sum(g[0] for g in got) > 200  # about 1 in 11 random numbers is valid
