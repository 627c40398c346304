"""Client addresses: the X-Forwarded-For rule, IP validation and the staging IP cache."""

import ipaddress
from pathlib import Path

import duckdb
import polars as pl
import pytest

from b2b_common.errors import UserError
from b2b_platform.defs.weblogs import staging
from b2b_platform.lib.resources import LogParsing, build_resources
from b2b_platform.lib.settings import DEFAULT_TRUSTED_PROXIES, Settings, parse_trusted_proxies
from b2b_platform.lib.warehouse.step import warehouse_step
from b2b_platform.lib.weblogs.combined_log import parse_log_lines

REST = '[01/Sep/2026:10:00:00 -0300] "GET / HTTP/1.1" 200 5 "-" "Mozilla/5.0"'
MONTH = "2026-09-01"


def _client(head: str, **options) -> dict:
    """The parsed client fields of one line whose text before the timestamp is `head`."""
    lines = pl.DataFrame({"line_number": [1], "line": [f"{head} {REST}"]})
    (row,) = parse_log_lines(lines, **options).to_dicts()
    assert row["reason"] is None, row["detail"]
    return row


@pytest.mark.parametrize(
    ("head", "client_ip"),
    [
        # the proxy (10.0.0.1) appended the address it got the request from: the client
        ('"198.51.100.7, 203.0.113.9" 10.0.0.1 - -', "203.0.113.9"),
        # the client sent its own X-Forwarded-For naming 1.1.1.1: not believed
        ('"1.1.1.1, 203.0.113.9, 10.0.0.2" 10.0.0.1 - -', "203.0.113.9"),
        ("8.8.8.8, 203.0.113.9 10.0.0.1 - -", "203.0.113.9"),  # unquoted list
        ('"1.1.1.1,203.0.113.9" 10.0.0.1 - -', "203.0.113.9"),  # no space after the comma
        # every hop a trusted proxy: the request started inside, at the left-most
        ("10.0.0.2, 10.0.0.1, 127.0.0.1 - -", "10.0.0.2"),
        ('"192.168.1.4, 172.16.0.9" 10.0.0.1 - -', "192.168.1.4"),
        # IPv6: unique-local, link-local and loopback proxies are looked through
        ('"2001:db8::1, 2a03:2880::1, fd00::5, fe80::1" ::1 - -', "2a03:2880::1"),
        ("2a03:0000:10ff:f00f:0000:0000:0:8000, 10.225.192.17 10.2.2.121 - -",
         "2a03:0000:10ff:f00f:0000:0000:0:8000"),  # kept as written
        ('"8.8.8.8, 203.0.113.9" ::ffff:10.0.0.1 - -', "203.0.113.9"),  # dual-stack proxy
        ("203.0.113.9 - -", "203.0.113.9"),  # no list: the peer itself
    ],
)  # fmt: skip
def test_client_is_the_rightmost_untrusted_address(head, client_ip):
    assert _client(head)["client_ip"] == client_ip


@pytest.mark.parametrize(
    ("head", "client_host"),
    [
        # the first untrusted entry is no address: unknown, however good what is left of it
        ('"8.8.8.8, 999.999.999.999" 10.0.0.1 - -', "999.999.999.999"),
        ('"8.8.8.8, unknown" 10.0.0.1 - -', "unknown"),
        ('"8.8.8.8, 10.0.0.1:8443" 10.0.0.1 - -', "10.0.0.1:8443"),
        ("999.999.999.999 - -", "999.999.999.999"),  # a plain client, the vectorized path
        ("01.2.3.4 - -", "01.2.3.4"),  # ipaddress refuses leading zeros
    ],
)
def test_an_invalid_client_address_leaves_the_ip_null(head, client_host):
    row = _client(head)
    assert row["client_ip"] is None and row["client_host"] == client_host


@pytest.mark.parametrize(
    "text",
    ["0.0.0.0", "255.255.255.255", "256.1.1.1", "1.2.3.999", "1.2.3", "1.2.3.4.5", "1.02.3.4",
     "00.1.2.3", "199.96.1.1", "1..3.4", "１.2.3.4"],
)  # fmt: skip
def test_plain_ipv4_clients_are_checked_as_strictly_as_ipaddress(text):
    try:
        valid = bool(ipaddress.IPv4Address(text))
    except ValueError:
        valid = False
    lines = pl.DataFrame({"line_number": [1], "line": [f"{text} - - {REST}"]})
    row = parse_log_lines(lines).to_dicts()[0]
    assert (row["client_ip"] is not None) == valid, row


def test_vhost_and_user_survive_a_forwarded_list():
    row = _client('www.example.com:443 "8.8.8.8, 10.0.0.5" 10.0.0.1 - bob')
    assert (row["vhost"], row["client_ip"], row["username"]) == (
        "www.example.com:443",
        "8.8.8.8",
        "bob",
    )
    # a list entry is never taken for a vhost
    row = _client("unknown, 8.8.8.8 10.0.0.1 - -")
    assert (row["vhost"], row["client_ip"]) == (None, "8.8.8.8")


def test_trusted_proxies_are_configurable():
    head = '"8.8.8.8, 203.0.113.9" 198.51.100.2 - -'
    assert _client(head)["client_ip"] == "198.51.100.2"  # a public peer is not trusted
    cdn = ["198.51.100.0/24", "203.0.113.0/24"]
    assert _client(head, trusted_proxies=cdn)["client_ip"] == "8.8.8.8"
    # with no trusted proxy the peer is always the client, even a private one
    assert _client('"8.8.8.8" 10.0.0.1 - -', trusted_proxies=[])["client_ip"] == "10.0.0.1"


def test_many_lines_with_repeated_chains_keep_their_own_client():
    heads = [f'"{i}.1.1.1, 203.0.113.{i}" 10.0.0.{i % 3} - u{i}' for i in range(1, 200)]
    plain = [f"198.51.100.{i} - u{i}" for i in range(1, 200)]
    lines = pl.DataFrame({"line": [f"{h} {REST}" for h in heads * 2 + plain]}).with_row_index(
        "line_number", 1
    )
    rows = parse_log_lines(lines).sort("line_number").to_dicts()
    expected = [f"203.0.113.{i}" for i in range(1, 200)] * 2 + [
        f"198.51.100.{i}" for i in range(1, 200)
    ]
    assert [r["client_ip"] for r in rows] == expected
    assert [r["username"] for r in rows] == [f"u{i}" for i in range(1, 200)] * 3


def test_trusted_proxies_setting():
    assert parse_trusted_proxies("") == DEFAULT_TRUSTED_PROXIES
    assert parse_trusted_proxies(" none ") == ()
    assert parse_trusted_proxies("10.0.0.0/8, 203.0.113.7,2001:db8::/32") == (
        "10.0.0.0/8",
        "203.0.113.7/32",
        "2001:db8::/32",
    )
    settings = Settings.from_env({"B2B_TRUSTED_PROXIES": "198.51.100.0/24"})
    assert settings.trusted_proxies == ("198.51.100.0/24",)
    assert Settings.from_env({}).trusted_proxies == DEFAULT_TRUSTED_PROXIES
    resource = build_resources(settings)["log_parsing"]
    assert isinstance(resource, LogParsing) and resource.trusted_proxies == ["198.51.100.0/24"]


@pytest.mark.parametrize("value", ["10.0.0.0/33", "10.1.0.0/8", "proxy.example.com", "10.0.0.0/8,"])
def test_a_bad_trusted_proxy_is_a_one_line_user_error(value):
    with pytest.raises(UserError, match="B2B_TRUSTED_PROXIES") as raised:
        Settings.from_env({"B2B_TRUSTED_PROXIES": value})
    assert "\n" not in str(raised.value)


# ---------------------------------------------------------------- staging's IP cache


def make_month(database: Path, requests: list[tuple[str | None, str | None]]) -> None:
    """raw.weblogs holding one month of (client_ip, user_agent) requests, and no users."""
    with duckdb.connect(str(database)) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS raw; CREATE SCHEMA IF NOT EXISTS staging")
        conn.execute(
            "CREATE OR REPLACE TABLE staging.platform_users"
            " (username VARCHAR, user_id BIGINT, company_id BIGINT)"
        )
        frame = pl.DataFrame(
            {"client_ip": [r[0] for r in requests], "user_agent": [r[1] for r in requests]},
            schema={"client_ip": pl.String, "user_agent": pl.String},
        ).with_row_index("line_number", 1)
        conn.register("requests", frame.to_arrow())
        conn.execute(
            """CREATE OR REPLACE TABLE raw.weblogs AS
               SELECT 'access-2026-09-01.log' AS source_file, line_number::BIGINT AS line_number,
                      TIMESTAMP '2026-09-01 10:00:00' AS requested_at, '-0300' AS utc_offset,
                      client_ip, NULL::VARCHAR AS client_host, NULL::VARCHAR AS vhost,
                      NULL::VARCHAR AS username, 'GET' AS method, '/' AS target,
                      'HTTP/1.1' AS protocol, NULL::VARCHAR AS request, 200::SMALLINT AS status,
                      5::BIGINT AS bytes, NULL::VARCHAR AS referer, user_agent,
                      ? AS partition_key
               FROM requests""",
            [MONTH],
        )


def stage_month(database: Path, run: str = "run-1") -> tuple[dict, dict]:
    """Stage MONTH as the asset does: (its counts, its checks' results by name)."""
    with warehouse_step(database, run, "staging/web_requests", MONTH) as step:
        counts = staging._stage_month(step, MONTH, lambda conn: [])  # no audit
        results = {r.check_name: r for r in staging._month_checks(step.conn, MONTH)}
    return counts, results


def _rows(database: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def test_describe_ips_validates_each_address():
    frame = staging.describe_ips(
        ["8.8.8.8", "999.999.999.999", "10.0.0.1", "2a03:0000:10ff:f00f:0000:0000:0:8000",
         "2a03::10ff::1", "::ffff:8.8.8.8", "192.0.2.1"]
    )  # fmt: skip
    assert frame.rows() == [
        ("8.8.8.8", "US", True, True),
        ("999.999.999.999", None, False, False),
        ("10.0.0.1", None, True, False),
        ("2a03:0000:10ff:f00f:0000:0000:0:8000", "PT", True, True),
        ("2a03::10ff::1", None, False, False),  # IPv6 of the right shape, still no address
        ("::ffff:8.8.8.8", "US", True, True),  # an IPv4 client through a dual-stack socket
        ("192.0.2.1", None, True, False),  # documentation range: not routable, not public
    ]


def test_staging_flags_invalid_ips_and_checks_only_public_ones(tmp_path):
    database = tmp_path / "b2b.duckdb"
    make_month(database, [("8.8.8.8", "x"), ("2a03::10ff::1", "x"), ("10.0.0.1", "x")] * 3)
    counts, results = stage_month(database)
    assert counts["new_ips"] == 3
    assert _rows(
        database, "SELECT ip, is_valid, is_public FROM staging.ip_countries ORDER BY ip"
    ) == [
        ("10.0.0.1", True, False),
        ("2a03::10ff::1", False, False),
        ("8.8.8.8", True, True),
    ]
    unknown = results["unknown_country_share"]
    assert unknown.passed and unknown.metadata["requests_with_invalid_ip"].value == 3
    assert results["unique_key"].passed and results["accounting_identity"].passed
    assert stage_month(database, "run-2")[0]["new_ips"] == 0  # cached: not looked up again


def test_an_ip_cache_from_before_validation_is_upgraded_in_place(tmp_path):
    database = tmp_path / "b2b.duckdb"
    make_month(database, [("8.8.8.8", "x"), ("999.999.999.999", "x")])
    with duckdb.connect(str(database)) as conn:  # the cache as earlier builds wrote it
        conn.execute(
            "CREATE TABLE staging.ip_countries AS SELECT * FROM (VALUES"
            " ('8.8.8.8', 'US', TIMESTAMP '2026-01-01'),"
            " ('999.999.999.999', 'ZZ', TIMESTAMP '2026-01-01'),"
            " ('1.1.1.1', 'AU', TIMESTAMP '2026-01-01')) t(ip, country_code, looked_up_at)"
        )
    counts, results = stage_month(database)
    assert counts["new_ips"] == 2  # the month's rows are validated again, replacing the old
    assert _rows(
        database, "SELECT ip, country_code, is_valid FROM staging.ip_countries ORDER BY ip"
    ) == [
        ("1.1.1.1", "AU", None),  # another month's: validated when that month runs
        ("8.8.8.8", "US", True),
        ("999.999.999.999", None, False),
    ]
    assert results["unique_key"].passed  # one cache row per address
    assert stage_month(database, "run-2")[0]["new_ips"] == 0
