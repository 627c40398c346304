"""Combined-log parsing against real-world lines (fixtures/logs, see fixtures/README.md)."""

import datetime as dt
import gzip
from pathlib import Path

import polars as pl
import pytest

from b2b_platform.lib.weblogs.combined_log import log_file_day, parse_log_lines, read_log_lines
from b2b_platform.lib.weblogs.log_lines import LogName, access_log_name

FIXTURES = Path(__file__).parent / "fixtures" / "logs"


def _parse(lines_frame):
    # rows come out grouped by parse path; line order is for the assertions below
    return parse_log_lines(lines_frame).sort("line_number")


def _parse_text(tmp_path, text: bytes):
    path = tmp_path / "access-2026-09-01.log"
    path.write_bytes(text)
    return _parse(read_log_lines(path)).to_dicts()


def test_apache_edge_cases_all_load_with_their_fields():
    rows = _parse(read_log_lines(FIXTURES / "apache_edge_cases.log")).to_dicts()
    assert [r["reason"] for r in rows] == [None] * 7
    ipv6, _, dash_request, extra, hostname, _, vhost = rows
    assert ipv6["client_ip"] == "::1" and ipv6["user_agent"] is None and ipv6["bytes"] == 209
    assert ipv6["requested_at"] == dt.datetime(2016, 12, 26, 14, 16, 29)  # +0200 -> UTC
    assert (
        dash_request["request"] is None
        and dash_request["status"] == 408
        and dash_request["bytes"] is None
    )
    assert extra["extra"] == '"-"' and extra["target"] == "/stringpatch"
    assert hostname["client_ip"] is None and hostname["client_host"] == "monitoring-server"
    assert vhost["vhost"] == "vhost1.domaine.fr" and vhost["client_ip"] == "123.123.123.123"


def test_nginx_forwarded_for_lists_resolve_to_the_original_client():
    rows = _parse(read_log_lines(FIXTURES / "nginx_edge_cases.log")).to_dicts()
    assert [r["reason"] for r in rows] == [None] * 7
    assert rows[0]["client_ip"] == "10.0.0.2"  # all private: the leftmost is the client
    assert rows[2]["client_ip"] == "85.181.35.98"
    # quoted list, then the proxy: the right-most address that is not a trusted proxy's
    # (199.96.1.1 left of it came from the client's own X-Forwarded-For)
    assert rows[4]["client_ip"] == "204.246.1.1"
    assert rows[5]["client_ip"] == "2a03:0000:10ff:f00f:0000:0000:0:8000"
    assert rows[6]["request"] is None and rows[6]["status"] == 400


def test_real_apache_log_every_line_accounted_for():
    frame = _parse(read_log_lines(FIXTURES / "apache_combined_real_10k.log"))
    assert frame.height == 10_000
    rejected = frame.filter(frame["reason"].is_not_null())
    assert rejected["line_number"].to_list() == [8899]  # the truncated line, no closing quote
    assert rejected["detail"][0].startswith("unbalanced quotes")
    loaded = frame.filter(frame["reason"].is_null())
    assert loaded["client_ip"].n_unique() == 1_753
    assert loaded["requested_at"].null_count() == 0 and loaded["status"].null_count() == 0
    assert loaded["user_agent"].n_unique() == 558


@pytest.mark.parametrize(
    ("line", "reason", "check"),
    [
        (b'1.2.3.4 - bob [01/Sep/2026:10:00:00 -0300] "GET /a\\"b HTTP/1.1" 200 5 "-" "UA \\"quoted\\""',
         None, lambda r: r["user_agent"] == 'UA "quoted"' and r["username"] == "bob"),
        (b'1.2.3.4 - - [31/Feb/2026:10:00:00 -0300] "GET / HTTP/1.1" 200 5 "-" "x"',
         "invalid_timestamp", None),
        (b'1.2.3.4 - - [01/Sep/2026:25:00:00 -0300] "GET / HTTP/1.1" 200 5 "-" "x"',
         "invalid_timestamp", None),
        (b"", "unparseable_line", lambda r: r["detail"] == "blank line"),
        (b"garbage without structure", "unparseable_line", None),
        (b'www.example.com:443 1.2.3.4 - - [01/Sep/2026:10:00:00 -0300] "POST /login?next=/x HTTP/1.1" 302 0 "-" "x"',
         None, lambda r: r["vhost"] == "www.example.com:443" and r["target"] == "/login?next=/x" and r["method"] == "POST"),
        (b'1.2.3.4 - - [01/Sep/2026:10:00:00 -0300] "GET / HTTP/1.1" 200 5 "-" "Mozilla \xff\xfe"',
         None, lambda r: "\ufffd" in r["user_agent"]),
        (b'1.2.3.4 - - [01/Sep/2026:10:00:00 -0300] "GET / HTTP/1.1" 200 - "-" "x" 0.123',
         None, lambda r: r["bytes"] is None and r["extra"] == "0.123"),
        (b'1.2.3.4 - - [01/Sep/2026:10:00:00 -0300] "get /a?b=1 HTTP/1.0" 200 5 "-" "x"',
         None, lambda r: r["method"] == "GET" and r["target"] == "/a?b=1" and r["request"] is None),
        (b'1.2.3.4 - - [01/Sep/2026:10:00:00 -0300] "PROPFIND /dav HTTP/1.1" 207 5 "-" "x"',
         None, lambda r: r["method"] == "PROPFIND" and r["protocol"] == "HTTP/1.1"),
        (b'1.2.3.4 - - [01/Sep/2026:10:00:00 -0300] "\\x16\\x03\\x01" 400 5 "-" "-"',
         None, lambda r: r["method"] is None and r["request"] == "\\x16\\x03\\x01"),
    ],
)  # fmt: skip
def test_single_lines(tmp_path, line, reason, check):
    (row,) = _parse_text(tmp_path, line + b"\n")
    assert row["reason"] == reason, row["detail"]
    if check:
        assert check(row), row


def test_user_agents_are_cut_to_512_characters():
    agents = ["é" * 600, "x" * 512, "Mozilla/5.0"]  # characters, not bytes, are counted
    request = '1.2.3.4 - - [01/Sep/2026:10:00:00 -0300] "GET / HTTP/1.1" 200 5 "-"'
    lines = pl.DataFrame({"line": [f'{request} "{a}"' for a in agents]})
    lines = lines.with_row_index("line_number", 1)
    parsed = _parse(lines)
    assert parsed["reason"].null_count() == 3
    assert parsed["user_agent"].to_list() == ["é" * 512, "x" * 512, "Mozilla/5.0"]


def test_gzip_and_truncated_gzip(tmp_path):
    good = tmp_path / "access-2026-09-02.log.gz"
    good.write_bytes(gzip.compress((FIXTURES / "apache_edge_cases.log").read_bytes()))
    assert read_log_lines(good).height == 7
    broken = tmp_path / "access-2026-09-03.log.gz"
    broken.write_bytes(good.read_bytes()[:-20])
    with pytest.raises(EOFError, match="end-of-stream marker"):
        read_log_lines(broken)


@pytest.mark.parametrize(
    ("name", "day"),
    [
        ("access-2026-09-01.log", dt.date(2026, 9, 1)),
        ("access-2026-09-01.log.gz", dt.date(2026, 9, 1)),
        ("access.log-20260902", dt.date(2026, 9, 2)),
        ("access.log-20260902.gz", dt.date(2026, 9, 2)),
        ("access-2026-02-30.log", None),
        ("error-2026-09-01.log", None),
        ("access.log", None),
    ],
)
def test_log_file_names(name, day):
    assert log_file_day(Path(name)) == day


@pytest.mark.parametrize(
    ("name", "day", "rotation_day"),
    [
        # Debian/Ubuntu numbered rotation (also size-based), the live file, prefixes
        ("access.log", None, False),
        ("access.log.1", None, False),
        ("access.log.14.gz", None, False),
        ("other_vhosts_access.log.2.gz", None, False),
        ("ssl_access_log", None, False),
        # dateext, daily and hourly: the day of the rotation
        ("access.log-20261206", dt.date(2026, 12, 6), True),
        ("access.log-2026120613.gz", dt.date(2026, 12, 6), True),
        # Apache rotatelogs: seconds since the epoch, or a strftime pattern
        ("access_log.1764979200", dt.date(2025, 12, 6), False),
        ("access_log.2026-12-06-13_00_00", dt.date(2026, 12, 6), False),
        ("access-2026-12-06.log.gz", dt.date(2026, 12, 6), False),
    ],
)
def test_every_common_layouts_names_are_access_logs(name, day, rotation_day):
    assert access_log_name(name) == LogName(day, rotation_day)


@pytest.mark.parametrize(
    "name",
    ["error.log", "error.log.1", "access.log.bak", "README", "access.logx", "access.log-2026"],
)
def test_other_names_are_not_access_logs(name):
    assert access_log_name(name) is None


def test_other_columns_travel_with_their_line():
    lines = read_log_lines(FIXTURES / "apache_combined_real_10k.log")
    for name in ("apache_edge_cases.log", "nginx_edge_cases.log"):
        lines = pl.concat([lines, read_log_lines(FIXTURES / name)])
    crafted = pl.DataFrame(
        {
            "line_number": [1, 2],
            "line": [
                '1.2.3.4 - - [01/Sep/2026:10:00:00 -0300] "GET / HTTP/1.1" 200 5 "-" "a \\"b\\""',
                'shop:443 1.2.3.4 - - [01/Sep/2026:10:00:00 -0300] "get / HTTP/1.1" 200 5 "-" "c"',
            ],
        }
    )
    tagged = pl.concat([crafted, lines]).with_columns(tag=pl.col("line") + "|")
    parsed = parse_log_lines(tagged)
    assert parsed.height == tagged.height
    assert (parsed["tag"] == (parsed["line"] + "|")).all()  # rejected lines keep their text
    # loaded lines drop nothing they had: compare on the line number and the tag's text
    assert sorted(zip(parsed["line_number"], parsed["tag"], strict=True)) == sorted(
        zip(tagged["line_number"], tagged["tag"], strict=True)
    )
