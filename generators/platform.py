"""Simulated B2B platform database: companies, catalogue, customers, users, orders.

Faker builds small pools of names; every bulk column is drawn with numpy and
assembled with polars, so a million orders cost seconds, not minutes. Anomalies
listed in the README are injected at the configured rates and every one stays detectable.

Above STREAM_ABOVE_ORDERS orders (the xlarge scale) orders and their lines are built a
month at a time and handed to a sink (the source database) as they are made, so memory
stays that of one month. Smaller scales build them in one go, with the random stream
they always had, so their data stays byte-identical for a seed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import polars as pl
from faker import Faker

from b2b_common.cuit import check_digits_array
from b2b_common.text import fold_accents
from generators import reference as ref
from generators.config import GenerationConfig

MONEY = pl.Decimal(14, 2)
PERCENT = pl.Decimal(5, 2)

# Above this many orders, orders and order lines are generated and handed to the sink a
# month at a time: built in one go they peak at ~1.1 GiB per million orders (large), so
# ~11 GiB for xlarge's 10M orders and 28M lines.
STREAM_ABOVE_ORDERS = 2_000_000
# What PlatformData keeps of streamed orders and lines: the columns the web log and lead
# simulators read (the full rows are in the source database). Line ids are kept as Int32:
# there are ~28M of them.
KEPT_ORDER_COLUMNS: tuple[str, ...] = ("order_id", "company_id", "user_id", "ordered_at", "status")
KEPT_ITEM_COLUMNS: tuple[str, ...] = ("order_id", "line_number", "product_id")

# Receives batches of platform tables in load order (SourceDatabase.loader() is one).
TableSink = Callable[[Mapping[str, pl.DataFrame]], None]


@dataclass(frozen=True)
class PlatformData:
    """The platform tables as loaded into the source database, plus the story behind them.

    When orders were streamed (see generate_platform), ``orders`` and ``order_items`` hold
    only KEPT_ORDER_COLUMNS and KEPT_ITEM_COLUMNS.
    """

    tables: dict[str, pl.DataFrame]
    # user_id, username, company_id, home_country, travel_country (null unless a traveller)
    user_profiles: pl.DataFrame
    # what was injected, by anomaly kind, so tests can compare with what the warehouse finds
    injected: dict[str, int]


def generate_platform(config: GenerationConfig, sink: TableSink | None = None) -> PlatformData:
    """Build every platform table for the configured scale, seed and date range.

    With a sink, the tables are also handed to it in load order. Above STREAM_ABOVE_ORDERS
    orders the sink gets the other tables first, then orders and order lines a month at a
    time, and the returned data keeps only the order columns the other simulators read.
    """
    rng = np.random.default_rng(config.seed)
    fake = Faker("es_AR")
    fake.seed_instance(config.seed)
    injected: dict[str, int] = {}

    companies = _companies(config, rng, fake, injected)
    suppliers = _suppliers(config, rng, companies)
    products = _products(config, rng)
    supplier_products = _supplier_products(config, rng, suppliers, products)
    customers = _customers(config, rng, fake, injected)
    users, profiles = _users(config, rng, fake, companies)
    tables = {
        "companies": companies,
        "suppliers": suppliers,
        "products": products,
        "supplier_products": supplier_products,
        "customers": customers,
        "platform_users": users,
    }
    if sink is not None and config.scale.orders > STREAM_ABOVE_ORDERS:
        sink(tables)
        tables["orders"], tables["order_items"] = _stream_orders(
            config, rng, tables, profiles, injected, sink
        )
        return PlatformData(tables=tables, user_profiles=profiles, injected=injected)

    orders = _orders(config, rng, companies, customers, users, injected)
    tables["orders"] = orders
    tables["order_items"] = _order_items(
        config, rng, orders, profiles, products, supplier_products, injected
    )
    if sink is not None:
        sink(tables)
    return PlatformData(tables=tables, user_profiles=profiles, injected=injected)


# ---------------------------------------------------------------- helpers


def _choice(rng: np.random.Generator, weights: dict[str, float], n: int) -> np.ndarray:
    keys = np.array(list(weights), dtype=object)
    p = np.array(list(weights.values()), dtype=float)
    return keys[rng.choice(len(keys), size=n, p=p / p.sum())]


def _mask(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    """Exactly round(n*rate) (at least one when rate > 0) randomly placed True values."""
    k = min(n, max(1, round(n * rate))) if rate > 0 and n else 0
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=k, replace=False)] = True
    return mask


def _frame(columns: dict, schema_overrides: dict | None = None) -> pl.DataFrame:
    """A frame from numpy columns; object arrays go in as lists (polars cannot cast Object)."""
    data = {
        k: v.tolist() if isinstance(v, np.ndarray) and v.dtype == object else v
        for k, v in columns.items()
    }
    return pl.DataFrame(data, schema_overrides=schema_overrides)


def _shares(total: int, weights: np.ndarray) -> np.ndarray:
    """Integer shares of ``total`` proportional to ``weights`` (largest remainder)."""
    exact = total * weights / weights.sum()
    out = np.floor(exact).astype(np.int64)
    out[np.argsort(-(exact - out), kind="stable")[: total - out.sum()]] += 1
    return out


def _repeats(values: np.ndarray) -> np.ndarray:
    """True where a value already occurred earlier in ``values``."""
    _, first = np.unique(values, return_index=True)
    repeat = np.ones(len(values), dtype=bool)
    repeat[first] = False
    return repeat


def _ascii(text: str) -> str:
    return fold_accents(text).lower()


def _timestamps(
    rng: np.random.Generator, start: dt.datetime, end: dt.datetime, n: int
) -> np.ndarray:
    """Uniform instants in [start, end) at second resolution, as naive UTC datetime64."""
    span = int((end - start).total_seconds())
    offsets = rng.integers(0, max(span, 1), size=n).astype("timedelta64[s]")
    return (np.datetime64(start.replace(tzinfo=None), "s") + offsets).astype("datetime64[us]")


def _places(rng: np.random.Generator, countries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Province and city per country code (real AR provinces, a capital elsewhere)."""
    n = len(countries)
    provinces = np.array(list(ref.AR_PROVINCES), dtype=object)
    p = np.array(ref.AR_PROVINCE_WEIGHTS)
    prov = provinces[rng.choice(len(provinces), size=n, p=p / p.sum())]
    pick = rng.random(n)
    city = (
        np.array(
            [
                ref.AR_PROVINCES[pv][int(u * len(ref.AR_PROVINCES[pv]))]
                for pv, u in zip(prov, pick, strict=True)
            ],
            dtype=object,
        )
        if n
        else np.array([], dtype=object)
    )
    foreign = countries != "AR"
    for code, (f_prov, f_city) in ref.FOREIGN_CITIES.items():
        sel = countries == code
        prov[sel] = f_prov
        city[sel] = f_city
    # a country without a listed capital keeps no province/city rather than an AR one
    unknown = foreign & ~np.isin(countries, list(ref.FOREIGN_CITIES))
    prov[unknown] = None
    city[unknown] = None
    return prov, city


# ---------------------------------------------------------------- companies


def _cuits(rng: np.random.Generator, prefixes: np.ndarray, distinct: bool = False) -> np.ndarray:
    """Valid 11-digit CUITs; numbers whose digit would be 10 move to prefix 23/33 as AFIP does.

    With ``distinct`` a number drawn twice is drawn again (see ScaleSpec.distinct_ids).
    """
    n = len(prefixes)
    digits = np.zeros((n, 10), dtype=np.int64)
    digits[:, 0] = prefixes // 10
    digits[:, 1] = prefixes % 10
    redraw = np.ones(n, dtype=bool)
    while redraw.any():
        body = rng.integers(10_000_000, 99_999_999, size=int(redraw.sum()))
        for i in range(8):
            digits[redraw, 2 + i] = body // 10 ** (7 - i) % 10
        check = check_digits_array(digits)
        # 20/27 -> 23 and 30 -> 33: the remainder-10 rule (moves the digit from 10 to 9 or 4)
        movable = (check == -1) & np.isin(prefixes, (20, 27, 30))
        digits[movable, 0] = np.where(prefixes[movable] >= 30, 3, 2)
        digits[movable, 1] = 3
        check = check_digits_array(digits)
        redraw = check == -1  # already 23/33: AFIP would not issue that number, draw another
        if distinct:
            redraw |= _repeats(digits @ 10 ** np.arange(9, -1, -1))
    return np.array(
        ["".join(map(str, row)) + str(c) for row, c in zip(digits, check, strict=True)],
        dtype=object,
    )


def _companies(
    config: GenerationConfig, rng: np.random.Generator, fake: Faker, injected: dict[str, int]
) -> pl.DataFrame:
    n = config.scale.companies
    rates = config.anomalies
    prefixes = rng.choice(np.array([30, 30, 30, 33, 30, 20, 27]), size=n)
    cuits = _cuits(rng, prefixes, config.scale.distinct_ids)

    invalid = _mask(rng, n, rates.invalid_cuit)
    bad = cuits[invalid]
    shift = rng.integers(1, 10, size=len(bad))
    cuits[invalid] = [c[:10] + str((int(c[10]) + s) % 10) for c, s in zip(bad, shift, strict=True)]
    # A wrong digit that still happens to be valid (the shifted digit is 10's stand-in) cannot
    # occur: every digit 0-9 differs from the right one and digit 10 never validates.
    injected["invalid_cuit"] = int(invalid.sum())

    legacy = rng.random(n) < 0.1  # legacy rows keep 11 bare digits
    formatted = np.where(
        legacy, cuits, np.array([f"{c[:2]}-{c[2:10]}-{c[10]}" for c in cuits], dtype=object)
    )
    names = np.array(
        # es_AR's company formats join surnames with the English "and"
        [
            f"{fake.company().replace(' and ', ' y ')} "
            f"{fake.random_element(('S.A.', 'S.R.L.', 'S.A.S.'))}"
            for _ in range(n)
        ],
        dtype=object,
    )
    countries = _choice(rng, ref.COMPANY_COUNTRIES, n)
    provinces, cities = _places(rng, countries)
    created = _timestamps(
        rng, config.start - dt.timedelta(days=5 * 365), config.start + dt.timedelta(days=60), n
    )
    frame = _frame(
        {
            "company_id": np.arange(1, n + 1),
            "cuit": formatted,
            "legal_name": names,
            "industry": np.array(ref.INDUSTRIES, dtype=object)[
                rng.integers(0, len(ref.INDUSTRIES), n)
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

    # Duplicates: the same (valid) CUIT registered again, typed in the other format.
    originals = frame.filter(~pl.Series(invalid)).sample(
        n=max(1, round(n * rates.duplicate_cuit)), seed=config.seed, shuffle=True
    )
    duplicates = originals.with_columns(
        company_id=pl.int_range(n + 1, n + 1 + originals.height, dtype=pl.Int64),
        cuit=pl.when(pl.col("cuit").str.contains("-"))
        .then(pl.col("cuit").str.replace_all("-", ""))
        .otherwise(
            pl.format(
                "{}-{}-{}",
                pl.col("cuit").str.slice(0, 2),
                pl.col("cuit").str.slice(2, 8),
                pl.col("cuit").str.slice(10, 1),
            )
        ),
        legal_name=pl.col("legal_name").str.to_uppercase(),
        created_at=pl.col("created_at") + pl.duration(days=400),
        updated_at=pl.col("updated_at") + pl.duration(days=400),
    )
    injected["duplicate_cuit"] = duplicates.height
    return pl.concat([frame.with_columns(pl.col("company_id").cast(pl.Int64)), duplicates])


def _suppliers(
    config: GenerationConfig, rng: np.random.Generator, companies: pl.DataFrame
) -> pl.DataFrame:
    n = config.scale.suppliers
    company_ids = rng.choice(
        companies["company_id"].to_numpy()[: config.scale.companies], n, replace=False
    )
    created = _timestamps(rng, config.start - dt.timedelta(days=3 * 365), config.start, n)
    return _frame(
        {
            "supplier_id": np.arange(1, n + 1, dtype=np.int64),
            "company_id": company_ids.astype(np.int64),
            "active": rng.random(n) < 0.92,
            "created_at": created,
        }
    ).with_columns(updated_at=pl.col("created_at") + pl.duration(days=90))


# ---------------------------------------------------------------- catalogue


def _products(config: GenerationConfig, rng: np.random.Generator) -> pl.DataFrame:
    n = config.scale.products
    categories = list(ref.PRODUCT_CATEGORIES)
    cat_idx = rng.integers(0, len(categories), size=n)
    noun_pick = rng.random(n)
    brand = np.array(ref.BRANDS, dtype=object)[rng.integers(0, len(ref.BRANDS), size=n)]
    ids = np.arange(1, n + 1, dtype=np.int64)
    codes = [ref.PRODUCT_CATEGORIES[categories[c]][0] for c in cat_idx]
    nouns = [
        ref.PRODUCT_CATEGORIES[categories[c]][1][
            int(u * len(ref.PRODUCT_CATEGORIES[categories[c]][1]))
        ]
        for c, u in zip(cat_idx, noun_pick, strict=True)
    ]
    created = _timestamps(rng, config.start - dt.timedelta(days=2 * 365), config.start, n)
    return _frame(
        {
            "product_id": ids,
            "sku": [f"{code}-{i:06d}" for code, i in zip(codes, ids, strict=True)],
            "name": [f"{noun} {b} #{i}" for noun, b, i in zip(nouns, brand, ids, strict=True)],
            "category": np.array(categories, dtype=object)[cat_idx],
            "brand": brand,
            "unit": np.array(ref.UNITS, dtype=object)[rng.integers(0, len(ref.UNITS), size=n)],
            "created_at": created,
        },
        schema_overrides={"category": pl.String, "brand": pl.String, "unit": pl.String},
    ).with_columns(updated_at=pl.col("created_at") + pl.duration(days=10))


def _supplier_products(
    config: GenerationConfig,
    rng: np.random.Generator,
    suppliers: pl.DataFrame,
    products: pl.DataFrame,
) -> pl.DataFrame:
    """1-3 suppliers per product; a third of the offers get a mid-range price increase."""
    n = products.height
    offers_per_product = rng.integers(1, 4, size=n)
    product_ids = np.repeat(products["product_id"].to_numpy(), offers_per_product)
    supplier_ids = rng.integers(1, suppliers.height + 1, size=len(product_ids))
    medians = np.array([ref.PRODUCT_CATEGORIES[c][2] for c in products["category"].to_list()])
    base = np.repeat(medians * rng.lognormal(0, 0.35, size=n), offers_per_product)
    base = base * rng.uniform(0.9, 1.1, size=len(base))
    offers = _frame({"supplier_id": supplier_ids, "product_id": product_ids, "price": base}).unique(
        ["supplier_id", "product_id"], keep="first", maintain_order=True
    )
    m = offers.height
    valid_from = np.datetime64(config.first_day - dt.timedelta(days=90)) - rng.integers(
        0, 365, size=m
    ).astype("timedelta64[D]")
    range_days = (config.as_of - config.first_day).days + 1
    change = rng.random(m) < 1 / 3
    change_day = np.datetime64(config.first_day) + rng.integers(
        1, max(range_days, 2), size=m
    ).astype("timedelta64[D]")
    first = offers.with_columns(
        valid_from=pl.Series(valid_from),
        valid_to=pl.Series(
            np.where(change, change_day - np.timedelta64(1, "D"), np.datetime64("NaT"))
        ),
    )
    raised = offers.filter(pl.Series(change)).with_columns(
        price=pl.col("price") * pl.Series(rng.uniform(1.1, 1.6, size=int(change.sum()))),
        valid_from=pl.Series(change_day[change]),
        valid_to=pl.lit(None, dtype=pl.Date),
    )
    return (
        pl.concat([first, raised])
        .with_columns(
            pl.col("price").round(2).cast(MONEY),
            pl.col("valid_from").cast(pl.Date),
            pl.col("valid_to").cast(pl.Date),
            currency=pl.lit("ARS"),
        )
        .select("supplier_id", "product_id", "price", "currency", "valid_from", "valid_to")
        .sort("supplier_id", "product_id", "valid_from")
    )


# ---------------------------------------------------------------- customers and users


def _document_numbers(rng: np.random.Generator, n: int, distinct: bool = False) -> np.ndarray:
    """DNI-like numbers; with ``distinct`` a number drawn twice is drawn again."""
    numbers = rng.integers(5_000_000, 48_000_000, size=n)
    while distinct and (again := _repeats(numbers)).any():
        numbers[again] = rng.integers(5_000_000, 48_000_000, size=int(again.sum()))
    return numbers


def _format_document(numbers: np.ndarray, style: np.ndarray) -> list[str]:
    """As typed at the counter: bare, with thousands dots, or with spaces."""
    out = []
    for number, s in zip(numbers, style, strict=True):
        text = str(number)
        if s == 1:
            text = f"{number:,}".replace(",", ".")
        elif s == 2:
            text = f"{number:,}".replace(",", " ")
        out.append(text)
    return out


def _customers(
    config: GenerationConfig, rng: np.random.Generator, fake: Faker, injected: dict[str, int]
) -> pl.DataFrame:
    n = config.scale.customers
    rates = config.anomalies
    pool = max(200, min(n, 3_000))  # Faker only for a pool of names, sampled per row
    first = np.array([fake.first_name() for _ in range(pool)], dtype=object)
    last = np.array([fake.last_name() for _ in range(pool)], dtype=object)
    fi, li = rng.integers(0, pool, size=n), rng.integers(0, pool, size=n)
    full_names = [f"{a} {b}" for a, b in zip(first[fi], last[li], strict=True)]
    numbers = _document_numbers(rng, n, config.scale.distinct_ids)
    style = rng.choice(3, size=n, p=[0.75, 0.2, 0.05])
    documents = np.array(_format_document(numbers, style), dtype=object)
    doc_types = _choice(rng, ref.DOCUMENT_TYPES, n)

    invalid_doc = _mask(rng, n, rates.invalid_document)
    documents[invalid_doc] = [
        d[:3] + "A" + d[4:] if i % 2 else d[:4] for i, d in enumerate(documents[invalid_doc])
    ]
    injected["invalid_document"] = int(invalid_doc.sum())

    birth = np.datetime64("1945-01-01") + rng.integers(0, 60 * 365, size=n).astype("timedelta64[D]")
    implausible = _mask(rng, n, rates.implausible_birth_date)
    future = rng.random(n) < 0.5
    birth[implausible & future] = np.datetime64(config.as_of) + rng.integers(
        30, 3_000, size=int((implausible & future).sum())
    ).astype("timedelta64[D]")
    birth[implausible & ~future] = np.datetime64("1850-01-01") + rng.integers(
        0, 40 * 365, size=int((implausible & ~future).sum())
    ).astype("timedelta64[D]")
    injected["implausible_birth_date"] = int(implausible.sum())

    domains = np.array(
        ["gmail.com", "hotmail.com", "yahoo.com.ar", "outlook.com", "fibertel.com.ar"]
    )
    emails = [
        f"{_ascii(a)}.{_ascii(b)}{k}@{d}".replace(" ", "")
        for a, b, k, d in zip(
            first[fi],
            last[li],
            rng.integers(1, 999, n),
            domains[rng.integers(0, 5, n)],
            strict=True,
        )
    ]
    email_missing = rng.random(n) < 0.08
    phones = [
        f"+54 9 11 {a:04d}-{b:04d}"
        for a, b in zip(rng.integers(0, 9999, n), rng.integers(0, 9999, n), strict=True)
    ]
    provinces, cities = _places(rng, np.full(n, "AR", dtype=object))
    created = _timestamps(rng, config.start - dt.timedelta(days=3 * 365), config.end, n)
    frame = _frame(
        {
            "customer_id": np.arange(1, n + 1, dtype=np.int64),
            "document_type": doc_types,
            "document_number": documents,
            "full_name": full_names,
            "date_of_birth": birth.astype("datetime64[D]"),
            "email": np.where(email_missing, None, np.array(emails, dtype=object)),
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

    # Duplicates: the same person registered again, document typed another way.
    clean = frame.filter(~pl.Series(invalid_doc))
    originals = clean.sample(n=max(1, round(n * rates.duplicate_customer)), seed=config.seed + 1)
    digits = originals["document_number"].str.replace_all(r"[.\s]", "").cast(pl.Int64).to_numpy()
    old_style = originals["document_number"].str.contains(r"[.\s]").to_numpy().astype(int)
    new_style = np.where(old_style == 0, 1, 0)
    duplicates = originals.with_columns(
        customer_id=pl.int_range(n + 1, n + 1 + originals.height, dtype=pl.Int64),
        document_number=pl.Series(_format_document(digits, new_style)),
        full_name=pl.col("full_name").str.to_uppercase(),
        created_at=pl.col("created_at") + pl.duration(days=200),
        updated_at=pl.col("updated_at") + pl.duration(days=200),
    )
    injected["duplicate_customer"] = duplicates.height
    return pl.concat([frame, duplicates])


def _users(
    config: GenerationConfig, rng: np.random.Generator, fake: Faker, companies: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    n = config.scale.users
    # Heavy-tailed: a few big clients have many users, most have one or two.
    company_weight = rng.pareto(1.2, size=companies.height) + 0.2
    # ...but each country keeps its share of companies as its share of users, so a few big
    # foreign clients cannot outnumber Argentina at small scales.
    company_country = companies["country_code"].to_numpy()
    for code in np.unique(company_country):
        in_country = company_country == code
        company_weight[in_country] *= in_country.sum() / company_weight[in_country].sum()
    company_idx = rng.choice(companies.height, size=n, p=company_weight / company_weight.sum())
    company_ids = companies["company_id"].to_numpy()[company_idx]
    countries = companies["country_code"].to_numpy()[company_idx]
    pool = max(100, min(n, 2_000))
    first = np.array([_ascii(fake.first_name()) for _ in range(pool)], dtype=object)
    last = np.array([_ascii(fake.last_name()).replace(" ", "") for _ in range(pool)], dtype=object)
    ids = np.arange(1, n + 1, dtype=np.int64)
    fi, li = rng.integers(0, pool, n), rng.integers(0, pool, n)
    usernames = [f"{a[0]}{b}{i}" for a, b, i in zip(first[fi], last[li], ids, strict=True)]
    domains = companies["legal_name"].to_numpy()[company_idx]
    emails = [
        f"{u}@{_ascii(d.split()[0]).strip(',.')}.com.ar"
        for u, d in zip(usernames, domains, strict=True)
    ]
    created = _timestamps(rng, config.start - dt.timedelta(days=2 * 365), config.start, n)
    users = _frame(
        {
            "user_id": ids,
            "company_id": company_ids.astype(np.int64),
            "username": usernames,
            "email": emails,
            "role": _choice(rng, ref.USER_ROLES, n),
            "created_at": created,
        },
        schema_overrides={"role": pl.String},
    ).with_columns(updated_at=pl.col("created_at"))
    travels = rng.random(n) < 0.1
    travel_country = _choice(rng, ref.TRAVEL_COUNTRIES, n)
    travel_country = np.where(travels & (travel_country != countries), travel_country, None)
    profiles = _frame(
        {
            "user_id": ids,
            "username": usernames,
            "company_id": company_ids.astype(np.int64),
            "home_country": countries.tolist(),
            "travel_country": travel_country.tolist(),
        },
        schema_overrides={"home_country": pl.String, "travel_country": pl.String},
    )
    return users, profiles


# ---------------------------------------------------------------- orders


def _order_days(config: GenerationConfig) -> tuple[np.ndarray, np.ndarray]:
    """Every simulated day and its relative order volume: weekdays busier, business growing."""
    days = np.arange(np.datetime64(config.first_day), np.datetime64(config.as_of) + 1)
    weekday = (days.astype("datetime64[D]").view("int64") - 4) % 7  # 0 = Monday
    weight = np.where(weekday < 5, 1.0, 0.35) * np.linspace(0.7, 1.3, len(days))
    return days, weight


def _order_times(
    config: GenerationConfig,
    rng: np.random.Generator,
    n: int,
    window: tuple[int, int] | None = None,
) -> np.ndarray:
    """Order instants in business hours in Argentina, on the days ``window`` (day indices)."""
    days, weight = _order_days(config)
    if window is not None:
        days, weight = days[window[0] : window[1]], weight[window[0] : window[1]]
    day = days[rng.choice(len(days), size=n, p=weight / weight.sum())]
    # 09:00-19:00 ART = 12:00-22:00 UTC, peaking mid-morning
    seconds = np.clip(rng.normal(15.5 * 3600, 2.6 * 3600, size=n), 0, 86_399).astype(np.int64)
    return (day.astype("datetime64[s]") + seconds.astype("timedelta64[s]")).astype("datetime64[us]")


def _count(injected: dict[str, int], kind: str, mask: np.ndarray) -> None:
    """Add a batch's injected anomalies (orders may come in several batches)."""
    injected[kind] = injected.get(kind, 0) + int(mask.sum())


@dataclass(frozen=True)
class _Buyers:
    """Users with the buyer or admin role and how likely each is to place the next order."""

    user_ids: np.ndarray
    company_ids: np.ndarray
    p: np.ndarray

    @classmethod
    def of(cls, rng: np.random.Generator, users: pl.DataFrame) -> _Buyers:
        buyers = users.filter(pl.col("role") != "viewer")
        activity = rng.pareto(1.5, size=buyers.height) + 0.1  # heavy-tailed
        return cls(
            buyers["user_id"].to_numpy(), buyers["company_id"].to_numpy(), activity / activity.sum()
        )


def _orders(
    config: GenerationConfig,
    rng: np.random.Generator,
    companies: pl.DataFrame,
    customers: pl.DataFrame,
    users: pl.DataFrame,
    injected: dict[str, int],
) -> pl.DataFrame:
    """Every order in one batch (scales up to STREAM_ABOVE_ORDERS)."""
    buyers = _Buyers.of(rng, users)
    return _order_batch(
        config, rng, buyers, companies, customers, injected, n=config.scale.orders, first_id=1
    )


def _order_batch(
    config: GenerationConfig,
    rng: np.random.Generator,
    buyers: _Buyers,
    companies: pl.DataFrame,
    customers: pl.DataFrame,
    injected: dict[str, int],
    *,
    n: int,
    first_id: int,
    window: tuple[int, int] | None = None,
) -> pl.DataFrame:
    """``n`` orders numbered from ``first_id``, placed on the days ``window`` (all by default)."""
    rates = config.anomalies
    pick = rng.choice(len(buyers.p), size=n, p=buyers.p)
    user_ids = buyers.user_ids[pick]
    company_ids = buyers.company_ids[pick]
    api = rng.random(n) < 0.15  # integrations place orders with no user
    ordered_at = np.sort(_order_times(config, rng, n, window))
    customer_ids = rng.integers(1, customers.height + 1, size=n)

    future = _mask(rng, n, rates.future_order)
    ordered_at[future] = np.datetime64(config.end.replace(tzinfo=None), "s") + rng.integers(
        3_600, 200 * 86_400, size=int(future.sum())
    ).astype("timedelta64[s]")
    old = _mask(rng, n, rates.out_of_range_order) & ~future
    ordered_at[old] = np.datetime64(config.start.replace(tzinfo=None), "s") - rng.integers(
        86_400, 300 * 86_400, size=int(old.sum())
    ).astype("timedelta64[s]")
    _count(injected, "future_order", future)
    _count(injected, "out_of_range_order", old)

    unknown_company = _mask(rng, n, rates.unknown_company) & ~future & ~old
    company_ids = company_ids.copy()
    company_ids[unknown_company] = companies.height + rng.integers(
        1_000, 9_000, size=int(unknown_company.sum())
    )
    _count(injected, "unknown_company", unknown_company)
    unknown_customer = _mask(rng, n, rates.unknown_customer) & ~future & ~old & ~unknown_company
    customer_ids[unknown_customer] = customers.height + rng.integers(
        1_000, 9_000, size=int(unknown_customer.sum())
    )
    _count(injected, "unknown_customer", unknown_customer)

    # Lifecycle by age: old orders are delivered (or cancelled/returned), recent ones in flight.
    age_days = (
        (np.datetime64(config.end.replace(tzinfo=None), "s") - ordered_at)
        .astype("timedelta64[D]")
        .astype(int)
    )
    final = np.array(["delivered", "cancelled", "returned"], dtype=object)[
        rng.choice(3, size=n, p=[0.9, 0.06, 0.04])
    ]
    in_flight = np.array(["placed", "paid", "shipped"], dtype=object)[np.clip(age_days, 0, 2)]
    status = np.where(age_days > 10, final, np.where(rng.random(n) < 0.05, "cancelled", in_flight))
    messy = rng.random(n) < rates.messy_status
    status = status.astype(object)
    status[messy] = [
        f" {s.upper()}" if i % 3 == 0 else (f"{s.title()} " if i % 3 == 1 else f"  {s}")
        for i, s in enumerate(status[messy])
    ]
    invalid_status = (
        _mask(rng, n, rates.invalid_status) & ~future & ~old & ~unknown_company & ~unknown_customer
    )
    status[invalid_status] = np.array(ref.INVALID_STATUSES, dtype=object)[
        rng.integers(0, len(ref.INVALID_STATUSES), size=int(invalid_status.sum()))
    ]
    _count(injected, "invalid_status", invalid_status)

    ids = np.arange(first_id, first_id + n, dtype=np.int64)
    # Unknown customers ship to the last customer's place; gathered, not converted whole.
    ship_idx = pl.Series(np.clip(customer_ids - 1, 0, customers.height - 1))
    updated = ordered_at + np.minimum(age_days, 20).clip(0).astype("timedelta64[D]")
    return _frame(
        {
            "order_id": ids,
            "order_number": [f"ORD-{i:08d}" for i in ids],
            "company_id": company_ids.astype(np.int64),
            "customer_id": customer_ids.astype(np.int64),
            "user_id": pl.Series(user_ids.astype(np.int64)).set(pl.Series(api), None),
            "ordered_at": ordered_at,
            "status": status,
            "currency": np.full(n, "ARS", dtype=object),
            "shipping_province": customers["province"].gather(ship_idx),
            "shipping_city": customers["city"].gather(ship_idx),
            "updated_at": updated,
        },
        schema_overrides={
            "status": pl.String,
            "currency": pl.String,
            "shipping_province": pl.String,
            "shipping_city": pl.String,
        },
    )


# Countries whose buyers rank the catalogue their own way (one ranking each).
_RANKED_COUNTRIES: list[str] = sorted(set(ref.COMPANY_COUNTRIES))


def _lines_per_order(rng: np.random.Generator, n_orders: int) -> np.ndarray:
    return np.clip(1 + rng.poisson(1.8, size=n_orders), 1, 8)


def _country_rankings(rng: np.random.Generator, n_products: int) -> np.ndarray:
    """Per country, product positions from most to least popular."""
    return np.stack([rng.permutation(n_products) for _ in _RANKED_COUNTRIES])


@dataclass(frozen=True)
class _Offers:
    """Who sells each product, and the price lists by supplier, product and validity."""

    suppliers: pl.DataFrame  # product_id, supplier_id (sorted list)
    prices: pl.DataFrame  # supplier_id, product_id, valid_from, price; sorted by valid_from

    @classmethod
    def of(cls, supplier_products: pl.DataFrame) -> _Offers:
        return cls(
            supplier_products.group_by("product_id").agg(pl.col("supplier_id").unique().sort()),
            supplier_products.select("supplier_id", "product_id", "valid_from", "price").sort(
                "valid_from"
            ),
        )


def _order_items(
    config: GenerationConfig,
    rng: np.random.Generator,
    orders: pl.DataFrame,
    profiles: pl.DataFrame,
    products: pl.DataFrame,
    supplier_products: pl.DataFrame,
    injected: dict[str, int],
) -> pl.DataFrame:
    """The lines of every order in one batch (scales up to STREAM_ABOVE_ORDERS)."""
    lines_per_order = _lines_per_order(rng, orders.height)
    rankings = _country_rankings(rng, products.height)
    return _item_batch(
        config, rng, orders, lines_per_order, rankings, profiles, products,
        _Offers.of(supplier_products), injected, total_orders=orders.height,
        orphan_seed=config.seed + 2,
    )  # fmt: skip


def _item_batch(
    config: GenerationConfig,
    rng: np.random.Generator,
    orders: pl.DataFrame,
    lines_per_order: np.ndarray,
    rankings: np.ndarray,
    profiles: pl.DataFrame,
    products: pl.DataFrame,
    offers: _Offers,
    injected: dict[str, int],
    *,
    total_orders: int,
    orphan_seed: int,
) -> pl.DataFrame:
    """The lines of a batch of orders, plus orphan lines whose order ids lie past every
    order (``total_orders`` of them in all batches)."""
    rates = config.anomalies
    n_orders = orders.height
    order_idx = np.repeat(np.arange(n_orders), lines_per_order)
    m = len(order_idx)
    line_number = (
        np.arange(m) - np.repeat(np.cumsum(lines_per_order) - lines_per_order, lines_per_order) + 1
    )

    # Popularity differs by country: each country ranks the catalogue its own way.
    order_country = (
        orders.select("user_id")
        .join(profiles.select("user_id", "home_country"), on="user_id", how="left")
        .get_column("home_country")
        .fill_null("AR")
        .to_numpy()
    )
    country_idx = np.searchsorted(_RANKED_COUNTRIES, order_country[order_idx])
    country_idx = np.clip(country_idx, 0, len(_RANKED_COUNTRIES) - 1)
    n_products = products.height
    rank = np.minimum(rng.zipf(1.25, size=m) - 1, n_products - 1)
    product_ids = products["product_id"].to_numpy()[rankings[country_idx, rank]]

    items = _frame(
        {
            "order_id": orders["order_id"].to_numpy()[order_idx],
            "line_number": line_number.astype(np.int64),
            "product_id": product_ids.astype(np.int64),
            "pick": rng.random(m),
            "ordered_on": orders["ordered_at"].to_numpy()[order_idx].astype("datetime64[D]"),
        }
    ).with_columns(pl.col("ordered_on").cast(pl.Date))
    items = items.join(offers.suppliers, on="product_id", how="left").with_columns(
        supplier_id=pl.col("supplier_id").list.get(
            (pl.col("pick") * pl.col("supplier_id").list.len()).cast(pl.Int64)
        )
    )
    # The price in force on the order date for that supplier and product.
    items = (
        items.sort("ordered_on")
        .join_asof(
            offers.prices,
            left_on="ordered_on",
            right_on="valid_from",
            by=["supplier_id", "product_id"],
            strategy="backward",
            check_sortedness=False,
        )
        .sort("order_id", "line_number")
    )
    unit_price = (
        items["price"]
        .cast(pl.Float64)
        .fill_null(strategy="forward")
        .fill_null(1000.0)
        .to_numpy()
        .copy()
    )
    quantity = np.clip(rng.geometric(0.12, size=m), 1, 200)
    discount = np.where(rng.random(m) < 0.2, rng.choice([5.0, 10.0, 15.0, 20.0], size=m), 0.0)

    non_positive_qty = _mask(rng, m, rates.non_positive_quantity)
    quantity[non_positive_qty] = -rng.integers(0, 5, size=int(non_positive_qty.sum()))
    non_positive_price = _mask(rng, m, rates.non_positive_price) & ~non_positive_qty
    unit_price[non_positive_price] = np.where(
        rng.random(int(non_positive_price.sum())) < 0.5, 0.0, -unit_price[non_positive_price]
    )
    unknown_product = _mask(rng, m, rates.unknown_product) & ~non_positive_qty & ~non_positive_price
    product_col = items["product_id"].to_numpy().copy()
    product_col[unknown_product] = n_products + rng.integers(
        1_000, 9_000, size=int(unknown_product.sum())
    )
    _count(injected, "non_positive_quantity", non_positive_qty)
    _count(injected, "non_positive_price", non_positive_price)
    _count(injected, "unknown_product", unknown_product)

    result = _frame(
        {
            "order_id": items["order_id"],
            "line_number": items["line_number"],
            "product_id": product_col,
            "supplier_id": items["supplier_id"].fill_null(1),
            "quantity": quantity.astype(np.int64),
            "unit_price": np.round(unit_price, 2),
            "discount_pct": discount,
        }
    )
    # Orphans: lines whose order the legacy service never wrote.
    orphans = (
        result.sample(n=max(1, round(m * rates.unknown_order)), seed=orphan_seed)
        .with_columns(
            order_id=pl.col("order_id") + total_orders + 10_000,
            line_number=pl.lit(1, dtype=pl.Int64),
        )
        .unique("order_id", keep="first", maintain_order=True)
    )
    injected["unknown_order"] = injected.get("unknown_order", 0) + orphans.height
    return pl.concat([result, orphans]).with_columns(
        pl.col("unit_price").cast(MONEY), pl.col("discount_pct").cast(PERCENT)
    )


def _stream_orders(
    config: GenerationConfig,
    rng: np.random.Generator,
    tables: dict[str, pl.DataFrame],
    profiles: pl.DataFrame,
    injected: dict[str, int],
    sink: TableSink,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Orders and their lines one calendar month at a time, each month handed to ``sink``.

    Orders are shared out over the months by their day weights and numbered on across
    months, so together they follow the same story as one big batch (anomaly counts
    agree to rounding). Returns the KEPT_* columns of all of them.
    """
    products = tables["products"]
    buyers = _Buyers.of(rng, tables["platform_users"])
    rankings = _country_rankings(rng, products.height)
    offers = _Offers.of(tables["supplier_products"])
    days, weight = _order_days(config)
    month = days.astype("datetime64[M]")
    bounds = np.flatnonzero(np.r_[True, month[1:] != month[:-1], True]).tolist()
    windows = list(pairwise(bounds))  # day indices of each month
    counts = _shares(config.scale.orders, np.array([weight[a:b].sum() for a, b in windows]))
    kept_orders: list[pl.DataFrame] = []
    kept_items: list[pl.DataFrame] = []
    first_id = 1
    for k, (window, n) in enumerate(zip(windows, counts.tolist(), strict=True)):
        if n == 0:
            continue
        orders = _order_batch(
            config, rng, buyers, tables["companies"], tables["customers"], injected,
            n=n, first_id=first_id, window=window,
        )  # fmt: skip
        items = _item_batch(
            config, rng, orders, _lines_per_order(rng, n), rankings, profiles, products, offers,
            injected, total_orders=config.scale.orders, orphan_seed=config.seed + 2 + k,
        )  # fmt: skip
        sink({"orders": orders, "order_items": items})
        kept_orders.append(orders.select(KEPT_ORDER_COLUMNS))
        kept_items.append(items.select(pl.col(KEPT_ITEM_COLUMNS).cast(pl.Int32)))
        first_id += n
    return pl.concat(kept_orders, rechunk=False), pl.concat(kept_items, rechunk=False)
