"""The web-log simulator: format, story, edge cases, determinism."""

from __future__ import annotations

import datetime as dt
import gzip
import ipaddress
import re
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import iptocc
import numpy as np
import polars as pl
import pytest

from generators.config import SCALES, AnomalyRates, GenerationConfig
from generators.weblogs import (
    MALFORMED_KINDS,
    REJECTED_KINDS,
    WeblogSummary,
    generate_weblogs,
    sample_ips_in_country,
)

AS_OF = dt.date(2025, 3, 15)

# A lenient combined-format parser, as the warehouse needs one: optional vhost prefix, any
# host token, escaped quotes inside quoted fields, "-" sizes and trailing extra fields.
COMBINED = re.compile(
    r"^(?:(?P<vhost>\S+:\d+) )?(?P<host>\S+) (?P<ident>\S+) (?P<user>\S+) "
    r"\[(?P<time>[^\]]+)\] "
    r'"(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}) (?P<size>\d+|-) '
    r'"(?P<referer>(?:[^"\\]|\\.)*)" "(?P<ua>(?:[^"\\]|\\.)*)"(?P<extra>.*)$'
)
PRODUCT_PATH = re.compile(r"^/products/(\d+)$")


@dataclass(frozen=True)
class FakePlatform:
    """Stands in for ``generators.platform.PlatformData``: same attribute names."""

    tables: dict[str, pl.DataFrame]
    user_profiles: pl.DataFrame


def make_platform(config: GenerationConfig) -> FakePlatform:
    """A small platform with the anomalies the real generator injects."""
    rng = np.random.default_rng(7)
    spec = config.scale
    product_ids = np.arange(1000, 1000 + spec.products)
    user_ids = np.arange(1, spec.users + 1)
    countries = rng.choice(
        ["AR", "UY", "CL", "BR", "US"], spec.users, p=[0.8, 0.06, 0.06, 0.05, 0.03]
    )
    travel = np.where(
        rng.random(spec.users) < 0.1, rng.choice(["ES", "US", "BR", "UY"], spec.users), None
    )
    profiles = pl.DataFrame(
        {
            "user_id": user_ids,
            "username": [f"user{u:04d}" for u in user_ids],
            "company_id": rng.integers(1, spec.companies + 1, spec.users),
            "home_country": countries,
            "travel_country": pl.Series(travel.tolist(), dtype=pl.String),
        }
    )
    n = spec.orders
    start = config.start.replace(tzinfo=None)
    span = (config.end - config.start).total_seconds()
    offsets = rng.random(n) * span
    offsets[:3] = span + 86400 * np.arange(1, 4)  # future orders
    offsets[3:6] = -86400 * np.arange(1, 4)  # before the range
    ordered_at = [start + dt.timedelta(seconds=float(s)) for s in offsets]
    user_id = np.where(rng.random(n) < 0.2, None, rng.choice(user_ids, n))
    orders = pl.DataFrame(
        {
            "order_id": np.arange(1, n + 1),
            "company_id": rng.integers(1, spec.companies + 1, n),
            "customer_id": rng.integers(1, spec.customers + 1, n),
            "user_id": pl.Series(user_id.tolist(), dtype=pl.Int64),
            "ordered_at": pl.Series(ordered_at, dtype=pl.Datetime("us")),
            "status": ["placed"] * n,
        }
    )
    lines = rng.integers(1, 5, n)
    item_order = np.repeat(orders["order_id"].to_numpy(), lines)
    product = rng.choice(product_ids, len(item_order))
    product[:5] = 999_999  # unknown products
    items = pl.DataFrame(
        {
            "order_id": np.concatenate([item_order, [n + 100]]),  # plus an orphan item
            "line_number": np.concatenate(
                [np.concatenate([np.arange(1, k + 1) for k in lines]), [1]]
            ),
            "product_id": np.concatenate([product, [product_ids[0]]]),
            "supplier_id": 1,
            "quantity": 2,
        }
    )
    products = pl.DataFrame({"product_id": product_ids, "sku": [f"SKU{i}" for i in product_ids]})
    users = profiles.select("user_id", "company_id", "username")
    return FakePlatform(
        {"products": products, "platform_users": users, "orders": orders, "order_items": items},
        profiles,
    )


@dataclass(frozen=True)
class Line:
    file: str
    raw: bytes
    fields: dict[str, str] | None  # None: not a combined-format line with a valid time
    when: dt.datetime | None
    utf8: bool


def read_logs(log_dir: Path) -> dict[str, bytes]:
    out = {}
    for path in sorted(log_dir.iterdir()):
        data = path.read_bytes()
        out[path.name] = gzip.decompress(data) if path.name.endswith(".gz") else data
    return out


def parse(name: str, raw: bytes) -> Line:
    try:
        text, utf8 = raw.decode(), True
    except UnicodeDecodeError:
        text, utf8 = raw.decode("latin-1"), False
    m = COMBINED.match(text)
    when = None
    if m:
        try:
            when = dt.datetime.strptime(m["time"], "%d/%b/%Y:%H:%M:%S %z")
        except ValueError:
            m = None
    return Line(name, raw, m.groupdict() if m else None, when, utf8)


def file_day(name: str) -> dt.date:
    digits = re.sub(r"\D", "", name)
    return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))


@pytest.fixture(scope="module")
def config() -> GenerationConfig:
    return GenerationConfig(scale=SCALES["tiny"], seed=42, as_of=AS_OF)


@pytest.fixture(scope="module")
def platform(config: GenerationConfig) -> FakePlatform:
    return make_platform(config)


@pytest.fixture(scope="module")
def run(
    config: GenerationConfig, platform: FakePlatform, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, WeblogSummary]:
    out = tmp_path_factory.mktemp("weblogs")
    return out, generate_weblogs(config, platform, out)


@pytest.fixture(scope="module")
def lines(run: tuple[Path, WeblogSummary]) -> list[Line]:
    out = []
    for name, data in read_logs(run[0]).items():
        assert data.endswith(b"\n") or not data, name
        out += [parse(name, raw) for raw in data.split(b"\n")[:-1]]
    return out


@pytest.fixture(scope="module")
def good(lines: list[Line]) -> list[Line]:
    return [line for line in lines if line.fields is not None]


def test_one_file_per_day_named_and_compressed_like_logrotate(config, run):
    out, summary = run
    names = sorted(p.name for p in out.iterdir())
    days = [file_day(n) for n in names]
    n_days = (config.as_of - config.first_day).days + 1
    assert sorted(days) == [config.first_day + dt.timedelta(days=i) for i in range(n_days)]
    assert summary.files == n_days
    assert summary.bytes_written == sum(p.stat().st_size for p in out.iterdir())
    for name, day in zip(names, days, strict=True):
        age = (config.as_of - day).days
        if age <= 7:
            assert name == f"access-{day:%Y-%m-%d}.log"
        else:
            assert name in (f"access-{day:%Y-%m-%d}.log.gz", f"access.log-{day:%Y%m%d}.gz")
            header = (out / name).read_bytes()[:10]
            assert header[:2] == b"\x1f\x8b"
            assert header[3] & 0x08 == 0, "no file name in the gzip header"
            assert header[4:8] == b"\0\0\0\0", "no mtime in the gzip header"
    assert sum(n.startswith("access.log-") for n in names) >= 5  # every 10th gzipped day


def test_line_count_near_the_scale(run, lines):
    _, summary = run
    assert summary.lines == len(lines)
    assert abs(len(lines) - SCALES["tiny"].log_lines) <= 0.15 * SCALES["tiny"].log_lines


def test_every_edge_case_kind_occurs_at_tiny_scale(config, run):
    _, summary = run
    assert set(summary.malformed_lines) == set(MALFORMED_KINDS)
    assert all(n >= 1 for n in summary.malformed_lines.values()), summary.malformed_lines
    # the configured share of the scale's lines (at least one of each kind), kinds in turn
    planned = round(config.anomalies.malformed_line * config.scale.log_lines)
    assert sum(summary.malformed_lines.values()) == max(planned, len(MALFORMED_KINDS))
    assert max(summary.malformed_lines.values()) - min(summary.malformed_lines.values()) <= 1


def test_only_the_unloadable_kinds_fail_a_lenient_parser(run, lines, good):
    counts = run[1].malformed_lines
    failed = [line for line in lines if line.fields is None]
    assert len(failed) == sum(counts[k] for k in REJECTED_KINDS)
    assert sum(line.raw == b"" for line in failed) == counts["blank"]
    # Each valid edge case is in the files as described.
    assert sum(not line.utf8 for line in lines) == counts["non_utf8"]
    assert sum(line.fields["vhost"] is not None for line in good) == counts["vhost_prefix"]
    assert sum(line.fields["extra"] != "" for line in good) == counts["extra_field"]
    assert sum(line.fields["request"] == "-" for line in good) == counts["request_dash"]
    assert sum(line.fields["request"] == "" for line in good) == counts["request_empty"]
    dash_sizes = sum(line.fields["size"] == "-" for line in good)
    assert dash_sizes == counts["size_dash"] + counts["request_dash"]
    escaped = sum('\\"' in (line.fields["request"] + line.fields["ua"]) for line in good)
    assert escaped == counts["escaped_quote"]
    named = [
        g for g in good if re.search(r"[a-z]", g.fields["host"]) and ":" not in g.fields["host"]
    ]
    assert len(named) == counts["hostname_client"]
    assert sum(":" in line.fields["host"] for line in good) >= counts["ipv6_client"]


def test_lines_are_sorted_and_on_their_files_day(good):
    by_file = defaultdict(list)
    for line in good:
        by_file[line.file].append(line)
    for name, file_lines in by_file.items():
        stamps = [line.when for line in file_lines]
        assert stamps == sorted(stamps), name
        assert {s.date() for s in stamps} == {file_day(name)}, name
        assert {s.utcoffset() for s in stamps} == {dt.timedelta(hours=-3)}


def test_usernames_are_platform_users_and_most_appear(platform, good):
    usernames = set(platform.tables["platform_users"]["username"])
    seen = {line.fields["user"] for line in good} - {"-"}
    assert seen <= usernames
    assert len(seen) >= 0.6 * len(usernames)


def test_product_pages_are_real_products(platform, good):
    products = set(platform.tables["products"]["product_id"])
    paths = [line.fields["request"].split(" ")[1] for line in good if " " in line.fields["request"]]
    viewed = {int(m[1]) for path in paths if (m := PRODUCT_PATH.match(path))}
    assert viewed and viewed <= products


def test_each_user_order_is_a_login_views_and_checkout(config, platform, good):
    users = dict(platform.user_profiles.select("user_id", "username").iter_rows())
    requests = defaultdict(list)  # username -> [(time, method, path, status)]
    for line in good:
        if line.fields["user"] != "-" and " " in line.fields["request"]:
            method, path, _ = line.fields["request"].split(" ")
            requests[line.fields["user"]].append(
                (line.when, method, path, int(line.fields["status"]))
            )
    items = platform.tables["order_items"]
    products = set(platform.tables["products"]["product_id"])
    first_local = dt.datetime.combine(
        config.first_day, dt.time(0), tzinfo=dt.timezone(dt.timedelta(hours=-3))
    )
    orders = platform.tables["orders"].filter(
        pl.col("user_id").is_not_null()
        & (pl.col("ordered_at") >= config.start.replace(tzinfo=None))
        & (pl.col("ordered_at") < config.end.replace(tzinfo=None))
    )
    checked = 0
    for order_id, user_id, ordered_at in orders.select(
        "order_id", "user_id", "ordered_at"
    ).iter_rows():
        at = ordered_at.replace(microsecond=0, tzinfo=dt.UTC)
        if at < first_local:
            continue  # the previous server-local day: before the first file
        mine = requests[users[user_id]]
        assert (at, "POST", "/checkout", 302) in mine, order_id
        logins = [w for w, m, p, s in mine if m == "POST" and p == "/login" and s in (200, 302)]
        if at - dt.timedelta(hours=3) >= first_local:  # else the login may predate the files
            assert any(at - dt.timedelta(hours=3) < w <= at for w in logins), order_id
        bought = set(items.filter(pl.col("order_id") == order_id)["product_id"]) & products
        viewed = {
            int(p.rsplit("/", 1)[1])
            for w, m, p, _ in mine
            if p.startswith("/products/") and w <= at
        }
        assert bought <= viewed, order_id
        checked += 1
    assert checked > 0.9 * orders.height


def test_each_user_keeps_one_to_three_devices(good):
    devices = defaultdict(set)
    for line in good:
        if line.fields["user"] != "-":
            devices[line.fields["user"]].add(line.fields["ua"])
    assert devices
    assert all(1 <= len(d) <= 3 for d in devices.values())
    assert any(len(d) > 1 for d in devices.values())


def test_user_ips_are_in_their_home_or_travel_country(platform, good):
    home = dict(platform.user_profiles.select("username", "home_country").iter_rows())
    travel = dict(platform.user_profiles.select("username", "travel_country").iter_rows())
    authed = [line for line in good if line.fields["user"] != "-"]
    countries = iptocc.country_code([line.fields["host"] for line in authed])
    away = 0
    for line, country in zip(authed, countries, strict=True):
        user = line.fields["user"]
        assert country in (home[user], travel[user]), (line.raw, country)
        away += country != home[user]
    assert away > 0, "travellers sometimes log in from abroad"


def test_traffic_mix_has_bots_anonymous_and_health_checks(good):
    bots = sum(
        bool(re.search(r"bot|spider|crawl|facebookexternalhit", g.fields["ua"], re.I)) for g in good
    )
    assert 0.08 <= bots / len(good) <= 0.25
    anon = [g for g in good if g.fields["user"] == "-"]
    assert any(g.fields["request"].startswith("GET /static/") for g in anon)
    assert any(g.fields["request"].startswith("GET /login ") for g in anon)
    assert any(g.fields["status"] == "404" for g in anon)
    assert any(g.fields["request"] == "GET /robots.txt HTTP/1.1" for g in anon)
    health = [g for g in good if g.fields["request"].startswith("GET /health ")]
    assert health and all(g.fields["ua"].startswith("curl/") for g in health)
    assert all(g.fields["host"].startswith(("10.", "192.168.")) for g in health)
    failed = [g for g in good if g.fields["status"] == "401"]
    assert failed and any("?next=" in g.fields["request"] for g in failed)


def test_same_config_same_bytes(config, platform, run, tmp_path):
    again = generate_weblogs(config, platform, tmp_path)
    assert again == run[1]
    first = {p.name: p.read_bytes() for p in run[0].iterdir()}
    assert first == {p.name: p.read_bytes() for p in tmp_path.iterdir()}


def test_another_seed_other_bytes(config, platform, run, tmp_path):
    generate_weblogs(replace(config, seed=43), platform, tmp_path)
    assert read_logs(tmp_path) != read_logs(run[0])


def test_rerun_replaces_old_logs_only(config, platform, tmp_path):
    (tmp_path / "access-2001-01-01.log").write_text("stale\n")
    (tmp_path / "access.log-20010102.gz").write_bytes(gzip.compress(b"stale\n"))
    (tmp_path / "notes.txt").write_text("keep me\n")
    generate_weblogs(config, platform, tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    assert "notes.txt" in names
    assert not {"access-2001-01-01.log", "access.log-20010102.gz"} & names


@pytest.mark.parametrize("country", ["AR", "UY", "CL", "BR", "US"])
def test_sampled_ips_are_where_iptocc_says(country):
    ips = sample_ips_in_country(country, 60, np.random.default_rng(1))
    assert len(ips) == len(set(ips)) == 60
    assert set(iptocc.country_code(ips)) == {country}
    assert all(
        ipaddress.ip_address(ip).version == 4 and ipaddress.ip_address(ip).is_global for ip in ips
    )


def test_sampled_ipv6_are_where_iptocc_says():
    ips = sample_ips_in_country("AR", 20, np.random.default_rng(1), ipv6=True)
    assert set(iptocc.country_code(ips)) == {"AR"}
    assert all(ipaddress.ip_address(ip).version == 6 for ip in ips)
    assert all(str(ipaddress.ip_address(ip)) == ip for ip in ips), "canonical text"


def test_sampling_is_deterministic_and_checks_its_input():
    assert sample_ips_in_country("CL", 10, np.random.default_rng(5)) == sample_ips_in_country(
        "CL", 10, np.random.default_rng(5)
    )
    with pytest.raises(ValueError, match="country code"):
        sample_ips_in_country("Argentina", 3, np.random.default_rng(0))


def test_no_edge_cases_when_the_rate_is_zero(config, platform, tmp_path):
    clean = replace(config, anomalies=AnomalyRates(malformed_line=0.0))
    summary = generate_weblogs(clean, platform, tmp_path)
    assert sum(summary.malformed_lines.values()) == 0
    for name, data in read_logs(tmp_path).items():
        assert all(parse(name, raw).fields for raw in data.split(b"\n")[:-1]), name


@pytest.mark.slow
def test_small_scale_hits_its_line_count(tmp_path):
    small = GenerationConfig(scale=SCALES["small"], seed=1, as_of=AS_OF)
    summary = generate_weblogs(small, make_platform(small), tmp_path)
    assert abs(summary.lines - small.scale.log_lines) <= 0.15 * small.scale.log_lines
    assert summary.files == (small.as_of - small.first_day).days + 1
    assert min(summary.malformed_lines.values()) >= 150  # 0.2% of 1M, in turn
