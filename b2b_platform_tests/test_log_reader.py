"""Bounded reading of log files: parts, long lines, gzip members, hostile content."""

import datetime as dt
import gzip
import os
from pathlib import Path

import pytest

from b2b_platform.lib.input_files.file_manifest import InputFile, content_hash
from b2b_platform.lib.weblogs import log_reader
from b2b_platform.lib.weblogs.combined_log import MAX_LINES_PER_PART, TooManyLines, lines_of_text
from b2b_platform.lib.weblogs.log_reader import (
    MAX_LINE_BYTES,
    LogFileReader,
    LogFileRejected,
    LogHead,
    read_head,
)

FIXTURES = Path(__file__).parent / "fixtures" / "logs"
LINE = b'1.2.3.4 - - [01/Sep/2026:10:00:00 -0300] "GET / HTTP/1.1" 200 5 "-" "agent"\n'


def _parts(path, part_bytes: int = 1 << 20) -> list[log_reader.TextPart]:
    with LogFileReader(path, part_bytes=part_bytes) as reader:
        return list(reader.parts())


def test_gzip_members_and_zero_padding_read_as_one_text(tmp_path):
    path = tmp_path / "access-2026-09-01.log.gz"
    path.write_bytes(gzip.compress(LINE) + gzip.compress(LINE * 2) + b"\0" * 512)
    (part,) = _parts(path)
    assert part.text == LINE * 3 and part.last


def test_parts_end_at_line_ends_and_keep_every_byte(tmp_path):
    path = tmp_path / "access-2026-09-01.log"
    text = b"".join(LINE.replace(b"agent", b"agent %d" % n) for n in range(5_000))
    path.write_bytes(text)
    parts = _parts(path, part_bytes=4096)
    assert len(parts) > 50
    assert all(p.text.endswith(b"\n") for p in parts)
    assert [p.last for p in parts] == [False] * (len(parts) - 1) + [True]
    assert b"".join(p.text for p in parts) == text


def test_a_line_longer_than_the_limit_is_cut_and_the_rest_skipped(tmp_path):
    path = tmp_path / "access-2026-09-01.log.gz"
    huge = b"x" * (5 * MAX_LINE_BYTES)
    path.write_bytes(gzip.compress(LINE + huge + b"\n" + LINE + huge))
    text = b"".join(p.text for p in _parts(path, part_bytes=MAX_LINE_BYTES))
    lines = text.split(b"\n")
    assert lines[0] + b"\n" == LINE and lines[2] + b"\n" == LINE
    # the parser sees the cut line longer than the limit and rejects it as line_too_long
    assert len(lines[1]) == MAX_LINE_BYTES + 1
    assert len(lines[3]) == MAX_LINE_BYTES + 1  # the last line, without its newline


def test_the_content_hash_is_the_files_after_streaming(tmp_path):
    path = tmp_path / "access-2026-09-01.log.gz"
    path.write_bytes(gzip.compress(LINE * 1000))
    with LogFileReader(path, part_bytes=1000) as reader:
        for _ in reader.parts():
            pass
        assert reader.content_hash() == content_hash(path)


def test_empty_files(tmp_path):
    plain = tmp_path / "access-2026-09-01.log"
    plain.write_bytes(b"")
    packed = tmp_path / "access-2026-09-02.log.gz"
    packed.write_bytes(gzip.compress(b""))
    assert [p.text for p in _parts(plain)] == [b""]
    assert [p.text for p in _parts(packed)] == [b""]


def test_binary_data_fails_the_file(tmp_path):
    path = tmp_path / "access-2026-09-01.log"
    path.write_bytes(LINE + os.urandom(4096) + b"\0")
    with pytest.raises(LogFileRejected, match="binary data"):
        _parts(path)


def test_a_decompression_bomb_stops_at_the_ratio(tmp_path, monkeypatch):
    monkeypatch.setattr(log_reader, "INFLATION_FLOOR_BYTES", 1 << 20)
    path = tmp_path / "access-2026-09-01.log.gz"
    path.write_bytes(gzip.compress(LINE * 200_000, compresslevel=9))  # ~15 MB, ~300x
    with pytest.raises(LogFileRejected, match="decompression bomb"):
        _parts(path)


def test_links_and_fifos_are_never_opened(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(LINE)
    link = tmp_path / "access-2026-09-01.log"
    link.symlink_to(secret)
    with pytest.raises(OSError):
        LogFileReader(link)
    fifo = tmp_path / "access-2026-09-02.log"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        LogFileReader(fifo)  # returns at once instead of waiting for a writer


def test_control_bytes_do_not_cut_lines():
    text = b"first \x1f field\n\x1e\x1d second\nthird\r\n"
    assert lines_of_text(text)["line"].to_list() == ["first \x1f field", "\x1e\x1d second", "third"]
    # every byte value present: the slower split gives the same kind of lines
    everything = bytes(range(256)) + b"\r\nlast"
    lines = lines_of_text(everything)
    assert lines["line"].to_list() == [
        bytes(range(10)).decode(),  # byte 10 is the newline
        bytes(range(11, 128)).decode() + "\ufffd" * 128,  # not UTF-8, and "\r" stripped
        "last",
    ]


def test_too_many_lines_in_one_part_stop_early():
    with pytest.raises(TooManyLines):
        lines_of_text(b"\n" * (MAX_LINES_PER_PART + 1))
    assert lines_of_text(b"\n" * 10).height == 10


def test_a_small_bomb_is_judged_by_what_it_inflated_so_far(tmp_path, monkeypatch):
    """A .gz no larger than a part that inflates past it streams from the bytes read: the
    ratio is to the compressed bytes the inflater consumed, not the whole file (a 41 MB
    file of 10 GiB text went to 9.8 GiB before it was stopped)."""
    monkeypatch.setattr(log_reader, "INFLATION_FLOOR_BYTES", 4 << 20)
    path = tmp_path / "access-2026-09-01.log.gz"
    text = LINE * 1_000_000  # ~100 MB of one repeated line: far over the ratio
    path.write_bytes(gzip.compress(text, compresslevel=9))
    reader = LogFileReader(path, part_bytes=2 << 20)
    with reader, pytest.raises(LogFileRejected, match="decompression bomb"):
        for _ in reader.parts():
            pass
    assert reader.text_bytes < 12 << 20  # stopped a few parts past the floor


def test_a_log_compressed_as_logs_compress_is_read_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(log_reader, "INFLATION_FLOOR_BYTES", 1 << 20)
    path = tmp_path / "access-2026-09-01.log.gz"
    lines = b"".join(
        b'10.0.%d.%d - - [01/Sep/2026:10:%02d:%02d +0000] "GET /products/%d HTTP/1.1" 200 %d\n'
        % (i % 250, i % 199, i // 60 % 60, i % 60, i % 977, i * 7 % 9999)
        for i in range(100_000)
    )
    path.write_bytes(gzip.compress(lines))
    assert len(lines) / path.stat().st_size < log_reader.MAX_INFLATION_RATIO
    reader = LogFileReader(path, part_bytes=1 << 20)
    with reader:
        assert b"".join(p.text for p in reader.parts()) == lines


def test_a_files_head_is_the_same_under_any_name_and_compression(tmp_path):
    """What rotation cannot change: the first line (identity), the first request's day and
    the text's length, read from the start of the file (and a gzip file's trailer)."""
    text = (FIXTURES / "apache_combined_real_10k.log").read_bytes()
    plain = tmp_path / "access.log.1"
    plain.write_bytes(text)
    packed = tmp_path / "access.log.2.gz"
    packed.write_bytes(gzip.compress(text))
    head = read_head(InputFile.stat(plain))
    assert head == read_head(InputFile.stat(packed))
    assert head.day == dt.date(2015, 5, 17) and head.text_bytes == len(text)
    grown = tmp_path / "access.log"
    grown.write_bytes(text + text[:1000])
    grown_head = read_head(InputFile.stat(grown))
    assert grown_head.identity == head.identity and grown_head.text_bytes > len(text)
    (tmp_path / "empty.log").write_bytes(b"")
    assert read_head(InputFile.stat(tmp_path / "empty.log")) == LogHead(None, None, 0)
    (tmp_path / "broken.gz").write_bytes(b"not gzip")
    assert read_head(InputFile.stat(tmp_path / "broken.gz")).identity is None
