"""Property-based tests: whatever bytes a log file holds, the reader and the parser never
crash and account for every line exactly once."""

import gzip

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from b2b_platform.lib.weblogs.combined_log import lines_of_text, parse_log_lines
from b2b_platform.lib.weblogs.log_reader import MAX_LINE_BYTES, LogFileReader, LogFileRejected

VALID = '203.0.113.9 - alice [01/Sep/2026:10:00:00 -0300] "GET /products/7 HTTP/1.1" 200 5 "-" "UA"'

# pieces of real lines, recombined, reach far more of the parser than uniform noise
fragments = st.sampled_from(
    [VALID, " ", '"', '\\"', "[", "]", "-", "\t", "\x1f", "\x00", "é", "\ufffd", "::1",
     "10.0.0.1, 8.8.8.8", "01/Sep/2026:10:00:00 -0300", "GET", "/login?x=1", "200", "-0300]"]
)  # fmt: skip
line_texts = st.one_of(st.text(max_size=300), st.lists(fragments, max_size=12).map("".join))
OUTPUT_COLUMNS = {"line_number", "reason", "client_ip", "requested_at", "status", "user_agent"}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(line_texts, min_size=1, max_size=40))
def test_every_line_comes_out_once_parsed_or_with_a_reason(texts):
    lines = pl.DataFrame({"line_number": range(1, len(texts) + 1), "line": texts})
    parsed = parse_log_lines(lines)
    assert set(parsed.columns) >= OUTPUT_COLUMNS
    assert sorted(parsed["line_number"].to_list()) == list(range(1, len(texts) + 1))
    loaded = parsed.filter(pl.col("reason").is_null())
    assert loaded["requested_at"].null_count() == 0  # what loads has a time
    assert parsed.filter(pl.col("reason").is_not_null())["line"].null_count() == 0


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=4000))
def test_any_bytes_split_into_lines_without_losing_one(data):
    lines = lines_of_text(data)
    expected = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    assert lines.height == expected
    assert lines["line_number"].to_list() == list(range(1, expected + 1))


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=3000), packed=st.booleans(), cut=st.integers(0, 50))
def test_any_file_reads_or_fails_with_a_reason(tmp_path, data, packed, cut):
    path = tmp_path / ("access-2026-09-01.log.gz" if packed else "access-2026-09-01.log")
    path.write_bytes(gzip.compress(data)[: -cut or None] if packed else data)
    try:
        with LogFileReader(path, part_bytes=512) as reader:
            text = b"".join(part.text for part in reader.parts())
    except (LogFileRejected, EOFError, OSError, ValueError):
        return  # the file fails alone, with that message
    # whole lines survive; a line over the limit is cut to just over it
    for line in text.split(b"\n"):
        assert len(line) <= MAX_LINE_BYTES + 1
    if not packed and len(data) <= MAX_LINE_BYTES and b"\x00" not in data:
        assert text == data
