"""The marketing-lead simulator writes messy but fully accounted-for spreadsheets."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import polars as pl
import pytest

from b2b_common.cuit import cuit_check_digit, format_cuit, is_valid_cuit, normalize_cuit
from generators.config import SCALES, GenerationConfig
from generators.leads import HEADER_ALIASES, LEAD_FIELDS, LeadsSummary, generate_leads

AS_OF = dt.date(2025, 6, 15)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TEXT_DATE = re.compile(r"^\d{2}/\d{2}/\d{4}$")


@dataclass(frozen=True)
class FakePlatform:
    """Stand-in for generators.platform.PlatformData: only what the lead simulator reads."""

    tables: dict[str, pl.DataFrame]
    user_profiles: pl.DataFrame


def _fake_platform(config: GenerationConfig, n_companies: int = 60, n_orders: int = 400):
    rng = np.random.default_rng(1)
    cuits: list[str] = []
    while len(cuits) < n_companies:
        first_ten = f"30{rng.integers(50_000_000, 72_000_000)}"
        check = cuit_check_digit(first_ten)
        if check is not None:
            digits = f"{first_ten}{check}"
            cuits.append(digits if len(cuits) % 10 == 0 else format_cuit(digits))  # legacy rows
    cuits[1] = cuits[1][:-1] + str((int(cuits[1][-1]) + 1) % 10)  # an invalid platform CUIT
    companies = pl.DataFrame(
        {
            "company_id": pl.Series(range(1, n_companies + 1), dtype=pl.Int64),
            "cuit": cuits,
            "legal_name": [f"Empresa {i} S.A." for i in range(n_companies)],
            "industry": ["Retail"] * n_companies,
            "country_code": ["AR"] * (n_companies - 2) + ["UY", "CL"],
            "province": ["Córdoba"] * n_companies,
            "city": ["Córdoba"] * n_companies,
            "created_at": [dt.datetime(2023, 1, 1)] * n_companies,
        }
    )
    span = (config.end - config.start).total_seconds()
    start = config.start.replace(tzinfo=None)
    orders = pl.DataFrame(
        {
            "order_id": pl.Series(range(1, n_orders + 1), dtype=pl.Int64),
            "company_id": rng.integers(1, n_companies + 1, n_orders),
            "ordered_at": [
                start + dt.timedelta(seconds=float(s)) for s in rng.random(n_orders) * span
            ],
            "status": rng.choice(["placed", "paid", "delivered", " Cancelled"], n_orders),
        }
    )
    return FakePlatform(
        tables={"companies": companies, "orders": orders}, user_profiles=pl.DataFrame()
    )


def _fold(text: Any) -> str:
    ascii_text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", ascii_text.lower())


ALIASES = {
    _fold(a): f for f, by_lang in HEADER_ALIASES.items() for v in by_lang.values() for a in v
}
SPANISH_ONLY = {_fold(a) for f in HEADER_ALIASES for a in HEADER_ALIASES[f]["es"]} - {
    _fold(a) for f in HEADER_ALIASES for a in HEADER_ALIASES[f]["en"]
}


@dataclass
class Sheet:
    path: Path
    header_row: int  # 0-based
    headers: list[Any]
    fields: list[str | None]
    records: list[dict[str, Any]]
    blank_rows: int


def _read(path: Path) -> Sheet:
    """Parse a lead workbook the way the warehouse must: find the header, map aliases."""
    sheet = openpyxl.load_workbook(path).active
    grid = list(sheet.iter_rows(values_only=True))
    header_row = next(
        i for i, row in enumerate(grid) if sum(_fold(c) in ALIASES for c in row if c) >= 8
    )
    headers = list(grid[header_row])
    fields = [ALIASES.get(_fold(h)) if h else None for h in headers]
    records, blanks = [], 0
    for row in grid[header_row + 1 :]:
        if all(v is None for v in row):
            blanks += 1
            continue
        records.append({f: v for f, v in zip(fields, row, strict=False) if f})
    return Sheet(path, header_row, headers, fields, records, blanks)


@pytest.fixture(scope="module")
def config() -> GenerationConfig:
    return GenerationConfig(scale=SCALES["tiny"], seed=7, as_of=AS_OF)


@pytest.fixture(scope="module")
def platform(config):
    return _fake_platform(config)


@pytest.fixture(scope="module")
def generated(config, platform, tmp_path_factory) -> tuple[LeadsSummary, list[Sheet]]:
    out = tmp_path_factory.mktemp("leads") / "leads"
    summary = generate_leads(config, platform, out)
    return summary, [_read(p) for p in sorted(out.glob("*.xlsx"))]


@pytest.fixture(scope="module")
def rows(generated) -> list[dict[str, Any]]:
    return [{**r, "_file": s.path.name} for s in generated[1] for r in s.records]


def test_aliases_are_unambiguous_after_folding():
    seen: dict[str, str] = {}
    for field, by_lang in HEADER_ALIASES.items():
        for alias in (*by_lang["es"], *by_lang["en"]):
            assert seen.setdefault(_fold(alias), field) == field, alias
    assert set(HEADER_ALIASES) == set(LEAD_FIELDS)


def test_files_open_and_hold_every_row(config, generated):
    summary, sheets = generated
    assert summary.files == config.scale.lead_files == len(sheets)
    for sheet in sheets:
        assert re.fullmatch(r"leads_\d{4}-\d{2}_[a-z0-9-]+\.xlsx", sheet.path.name)
        assert set(LEAD_FIELDS) <= set(sheet.fields)
    assert sum(len(s.records) for s in sheets) == summary.leads == config.scale.leads


def test_every_anomaly_is_present_and_counted(generated, rows):
    summary, _ = generated
    assert set(summary.anomalies) == {
        "duplicate_lead", "missing_contact", "invalid_email", "invalid_cuit"
    }  # fmt: skip
    assert all(count >= 1 for count in summary.anomalies.values()), summary.anomalies
    missing = [r for r in rows if r.get("email") is None and r.get("phone") is None]
    bad_email = [r for r in rows if r.get("email") is not None and not EMAIL.match(r["email"])]
    bad_cuit = [r for r in rows if not is_valid_cuit(str(r["cuit"]))]
    assert len(missing) == summary.anomalies["missing_contact"]
    assert len(bad_email) == summary.anomalies["invalid_email"]
    assert all(r.get("phone") for r in bad_email)  # invalid email, but still reachable
    assert len(bad_cuit) == summary.anomalies["invalid_cuit"]
    assert all(normalize_cuit(str(r["cuit"])) for r in bad_cuit)  # 11 digits, wrong check digit
    duplicates = len(rows) - len({r["lead_id"] for r in rows})
    assert duplicates == summary.anomalies["duplicate_lead"]


def test_headers_are_messy(generated):
    _, sheets = generated
    assert any(s.header_row > 0 for s in sheets)
    assert any(s.header_row == 0 for s in sheets)
    assert any(_fold(h) in SPANISH_ONLY for s in sheets for h in s.headers if h)
    assert len({tuple(s.fields) for s in sheets}) == len(sheets)  # column order varies
    assert any(None in s.fields for s in sheets)  # extra columns such as Notas or Score
    assert any(s.blank_rows for s in sheets)


def test_dates_are_excel_dates_and_text_within_range(config, rows):
    excel = [r["captured_at"] for r in rows if isinstance(r["captured_at"], dt.datetime)]
    text = [r["captured_at"] for r in rows if isinstance(r["captured_at"], str)]
    assert excel and text and len(excel) + len(text) == len(rows)
    assert all(TEXT_DATE.match(t) for t in text)
    days = [d.date() for d in excel] + [dt.datetime.strptime(t, "%d/%m/%Y").date() for t in text]
    assert config.first_day <= min(days) and max(days) <= config.as_of


def test_cuits_come_in_every_format_and_are_valid_unless_injected(generated, rows):
    cuits = [r["cuit"] for r in rows]
    assert any(isinstance(c, int) for c in cuits)
    assert any(isinstance(c, str) and "-" in c for c in cuits)
    assert any(isinstance(c, str) and c.isdigit() for c in cuits)
    invalid = [c for c in cuits if not is_valid_cuit(str(c))]
    assert len(invalid) == generated[0].anomalies["invalid_cuit"]


def test_duplicates_share_lead_id_across_files(rows):
    by_id: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_id.setdefault(r["lead_id"], []).append(r)
    repeated = [group for group in by_id.values() if len(group) > 1]
    assert repeated
    for group in repeated:
        assert len({r["_file"] for r in group}) == len(group)  # another file each time
        assert len({normalize_cuit(str(r["cuit"])) for r in group}) == 1
        assert len({(r.get("email") or "").lower() for r in group}) == 1
    # a re-export differs in formatting, not in content
    assert any(len({repr(r["cuit"]) for r in group}) > 1 for group in repeated)
    assert all(re.fullmatch(r"LD-\d{6}", lead_id) for lead_id in by_id)


def test_a_share_of_leads_are_platform_companies_that_later_order(platform, rows):
    companies = platform.tables["companies"].with_columns(
        digits=pl.col("cuit").str.replace_all("-", "")
    )
    company_of = dict(zip(companies["digits"], companies["company_id"], strict=True))
    leads = {r["lead_id"]: r for r in rows}
    matched = {
        lead_id: company_of[d]
        for lead_id, r in leads.items()
        if (d := normalize_cuit(str(r["cuit"]))) in company_of
    }
    assert 0.2 <= len(matched) / len(leads) <= 0.5
    assert is_valid_cuit(companies["cuit"][1]) is False
    assert company_of[companies["digits"][1]] not in matched.values()  # never an invalid CUIT
    orders = platform.tables["orders"]
    last_order = dict(orders.group_by("company_id").agg(pl.col("ordered_at").max()).iter_rows())
    converted = [
        lead_id
        for lead_id, company_id in matched.items()
        if company_id in last_order and last_order[company_id] > _captured(leads[lead_id])
    ]
    # most matched leads convert; fewer when the as-of day leaves the last campaign no time
    assert len(converted) >= len(matched) // 5


def _captured(row: dict[str, Any]) -> dt.datetime:
    value = row["captured_at"]
    return value if isinstance(value, dt.datetime) else dt.datetime.strptime(value, "%d/%m/%Y")


def test_same_config_gives_identical_bytes(config, platform, tmp_path):
    first = generate_leads(config, platform, tmp_path / "a")
    second = generate_leads(config, platform, tmp_path / "b")
    assert first == second
    names = sorted(p.name for p in (tmp_path / "a").glob("*.xlsx"))
    assert names == sorted(p.name for p in (tmp_path / "b").glob("*.xlsx"))
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()

    other = GenerationConfig(scale=config.scale, seed=config.seed + 1, as_of=config.as_of)
    generate_leads(other, platform, tmp_path / "c")
    assert [_read(p).records for p in sorted((tmp_path / "c").glob("*.xlsx"))] != [
        _read(tmp_path / "a" / n).records for n in names
    ]


def test_without_platform_companies_all_leads_are_prospects(config, tmp_path):
    empty = FakePlatform(tables={}, user_profiles=pl.DataFrame())
    summary = generate_leads(config, empty, tmp_path)
    assert summary.leads == config.scale.leads
    assert summary.anomalies["invalid_cuit"] >= 1
