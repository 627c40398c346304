"""Read one access-log file as bounded parts of text, whatever the file holds.

Memory depends on the part size, never on the file: a gzip member is inflated as a
stream, a file is cut into parts at line ends, a line longer than MAX_LINE_BYTES is
cut (the parser rejects it as `line_too_long` from the length it sees) and the rest of
it is skipped as it streams by. What cannot be an access log fails early as that file:
binary data or a decompression bomb here, too many lines per part where they are split.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import hashlib
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from isal import igzip, isal_zlib

from b2b_platform.lib.input_files.file_manifest import InputFile, open_regular_file

MAX_LINE_BYTES = 64 * 1024  # longer lines are rejected as line_too_long
# a part is parsed and written as a unit: a day file up to this size is read whole (as
# before parts existed), so only unusually large files pay for cutting
PART_TEXT_BYTES = 96 << 20
# inflating more than this many times the compressed bytes consumed so far, past
# INFLATION_FLOOR_BYTES of text, is a decompression bomb: logs compress 10-30x (a bot's
# identical lines perhaps 60x), deflate's ceiling is about 1032x
MAX_INFLATION_RATIO = 100
INFLATION_FLOOR_BYTES = 1 << 30
# the compressed bytes handed to the inflater per read: how closely the ratio follows it
INFLATE_INPUT_BYTES = 64 * 1024
BINARY_PROBE_BYTES = 64 * 1024  # a NUL byte here: not a text file


class LogFileRejected(Exception):
    """The file cannot be an access log (or is too hostile to read): it fails alone."""


@dataclass(frozen=True)
class TextPart:
    text: bytes  # whole lines (the last one may lack its newline at the end of the file)
    last: bool  # the file's last part


class _HashingReader:
    """A file handle that hashes the bytes read through it (the manifest's content hash)."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.digest = hashlib.blake2b(digest_size=16)
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.digest.update(data)
        self.bytes_read += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        count = self.handle.readinto(buffer)  # type: ignore[attr-defined]
        self.digest.update(memoryview(buffer)[:count])
        self.bytes_read += count
        return count

    def readable(self) -> bool:
        return True

    def hexdigest(self) -> str:
        """The content hash once the whole file was read (equals content_hash(path))."""
        while self.read(1 << 20):
            pass
        return self.digest.hexdigest()


class _MeteredInput:
    """Compressed bytes for the inflater in small reads, counting what it has consumed."""

    def __init__(self, source: IO[bytes] | _HashingReader) -> None:
        self.source = source
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        wanted = INFLATE_INPUT_BYTES if size < 0 else min(size, INFLATE_INPUT_BYTES)
        data = self.source.read(wanted)
        self.bytes_read += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        data = self.read(len(buffer))
        memoryview(buffer)[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True


@dataclass
class TextPrefix:
    """The first `length` bytes of a plain file: their digest (the manifest's content
    hash of a file loaded up to there) and their number of lines."""

    length: int
    digest: Any  # hashlib's blake2b, to go on with the text read after it
    lines: int

    @classmethod
    def start(cls) -> TextPrefix:
        """No text yet (the digest is the manifest's content hash's: blake2b, 16 bytes)."""
        return cls(0, hashlib.blake2b(digest_size=16), 0)

    def hexdigest(self) -> str:
        return str(self.digest.hexdigest())

    def extended(self, text: bytes) -> TextPrefix:
        """The prefix followed by `text` (whole lines)."""
        digest = self.digest.copy()
        digest.update(text)
        return TextPrefix(self.length + len(text), digest, self.lines + text.count(b"\n"))


def read_prefix(path: Path, length: int) -> TextPrefix:
    """Digest and count the lines of a plain file's first `length` bytes."""
    prefix = TextPrefix.start()
    with open_regular_file(path) as handle:
        while prefix.length < length:
            block = handle.read(min(length - prefix.length, 8 << 20))
            if not block:
                raise OSError(f"{path.name} is shorter than the {length:,} bytes loaded")
            prefix.digest.update(block)
            prefix.length += len(block)
            prefix.lines += block.count(b"\n")
    return prefix


class LogFileReader:
    """Open a log file (never through a link) and stream its text in parts.

    `parts()` yields TextPart; `content_hash()` after it gives the file's hash.
    """

    def __init__(self, path: Path, *, part_bytes: int | None = None, start: int = 0) -> None:
        self.path = path
        self.part_bytes = part_bytes or PART_TEXT_BYTES
        self._handle = open_regular_file(path)
        if start:  # a plain file's text after what was loaded (grown_files.py)
            self._handle.seek(start)
        self._raw = _HashingReader(self._handle)
        self.text_bytes = 0

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> LogFileReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def content_hash(self) -> str:
        return self._raw.hexdigest()

    def _blocks(self) -> Iterator[bytes]:
        stream: IO[bytes] | _HashingReader = self._raw
        metered: _MeteredInput | None = None  # compressed input: the ratio's denominator
        if self.path.suffix == ".gz":
            metered = _MeteredInput(self._raw)
            if os.fstat(self._handle.fileno()).st_size <= self.part_bytes:
                # the usual day file: inflated in one go, straight into its text (the
                # stream's buffered reads copy it again); a text over the part size
                # streams from the bytes already read, metered as they are consumed
                data = self._raw.read()
                text = inflate_members(data, self.part_bytes)
                if text is not None:
                    self.text_bytes = len(text)
                    if text:
                        yield text
                    return
                metered = _MeteredInput(io.BytesIO(data))
            stream = igzip.IGzipFile(fileobj=metered)
        # checked a block (a part) at a time: a bomb stops within a part past the floor
        while block := stream.read(self.part_bytes):
            self.text_bytes += len(block)
            if (
                metered is not None
                and self.text_bytes > INFLATION_FLOOR_BYTES
                and self.text_bytes > MAX_INFLATION_RATIO * max(metered.bytes_read, 1)
            ):
                raise LogFileRejected(
                    f"inflates to over {self.text_bytes >> 20:,} MiB of text from"
                    f" {metered.bytes_read >> 10:,} KiB (over {MAX_INFLATION_RATIO}x):"
                    " a decompression bomb, not a log"
                )
            yield block

    def parts(self) -> Iterator[TextPart]:
        """The text in parts that end at line ends, each about part_bytes or less.

        Only one part and the block after it are in memory at a time. A line longer than
        MAX_LINE_BYTES leaves MAX_LINE_BYTES + 1 bytes in its part, so the parser sees it
        is too long; the rest of it is read and dropped.
        """
        pending = b""  # the unfinished last line of the previous block
        skipping = False  # inside a line already cut
        first = True
        blocks = self._blocks()
        block = next(blocks, b"")
        while block:
            following = next(blocks, b"")
            if skipping:
                end = block.find(b"\n")
                if end < 0:
                    block = following
                    continue
                block, skipping = block[end + 1 :], False
            if pending:
                block, pending = pending + block, b""
            if not following:  # the file's end: no need to look for the last line end
                _check_text(block, first)
                yield TextPart(block, last=True)
                return
            end = block.rfind(b"\n") + 1
            if end < len(block):  # no copy when the block ends at a line end
                block, pending = block[:end], block[end:]
            if len(pending) > MAX_LINE_BYTES:
                block += pending[: MAX_LINE_BYTES + 1] + b"\n"
                pending, skipping = b"", True
            if block:
                _check_text(block, first)
                first = False
                yield TextPart(block, last=False)
            block = following
        if pending:
            _check_text(pending, first)
            yield TextPart(pending, last=True)
        else:
            yield TextPart(b"", last=True)


def inflate_members(data: bytes, limit: int) -> bytes | None:
    """Every gzip member of `data` inflated, or None when the text exceeds `limit` bytes.

    A truncated member raises EOFError, as the streaming reader does; zero padding
    after the last member (tape-era tools write it) is ignored.
    """
    members: list[bytes] = []
    size = 0
    while data:
        inflater = isal_zlib.decompressobj(31)  # 31: gzip header and trailer
        text = inflater.decompress(data, limit - size + 1)
        size += len(text)
        if size > limit:
            return None
        members.append(text)
        if not inflater.eof:
            raise EOFError("Compressed file ended before the end-of-stream marker was reached")
        data = inflater.unused_data
        if data[:1] == b"\0" and not data.strip(b"\0"):
            break
    return members[0] if len(members) == 1 else b"".join(members)


def _check_text(text: bytes, first: bool) -> None:
    if first and b"\x00" in text[:BINARY_PROBE_BYTES]:
        raise LogFileRejected("holds binary data (NUL bytes): not a text access log")


HEAD_BYTES = 64 * 1024  # what is read of a file to know it: its first line and day
# the request time of the combined format: [06/Dec/2026:13:55:36 -0300]
_REQUEST_TIME = re.compile(rb"\[(\d{2})/([A-Z][a-z]{2})/(\d{4}):\d{2}:\d{2}:\d{2} [+-]\d{4}\]")
_MONTHS = {m.encode(): i for i, m in enumerate(calendar.month_abbr) if m}


@dataclass(frozen=True)
class LogHead:
    """What the start of a log file says, read without reading the whole file."""

    identity: str | None  # a digest of its first line: the same file under any name; None if empty
    day: dt.date | None  # the day of its first request time (in the line's own offset)
    text_bytes: int | None  # the length of its text (a gzip file's from its trailer)


def read_head(file: InputFile) -> LogHead:
    """The file's first line, first request day and text length. A file that cannot be
    read here gets no identity; its load says why. Kept per file version, so a sensor's
    tick reads only the files that changed since its last."""
    try:
        return _read_head(file.path, file.version)
    except (OSError, EOFError, ValueError):  # not kept: the next look may succeed
        return LogHead(None, None, None)


@functools.lru_cache(maxsize=16_384)
def _read_head(path: Path, version: str) -> LogHead:
    with open_regular_file(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        if path.suffix == ".gz":
            text = igzip.IGzipFile(fileobj=handle).read(HEAD_BYTES)
            handle.seek(max(size - 4, 0))
            # the trailer's ISIZE: the text's length modulo 4 GiB (of the last member)
            text_bytes: int | None = int.from_bytes(handle.read(4), "little")
        else:
            text, text_bytes = handle.read(HEAD_BYTES), size
    return LogHead(line_identity(text), _first_request_day(text), text_bytes)


def line_identity(text: bytes) -> str | None:
    """The identity of a file whose text starts with `text`: a digest of its first line
    (None for an empty file)."""
    if not text:
        return None
    return hashlib.blake2b(text.split(b"\n", 1)[0], digest_size=12).hexdigest()


def _first_request_day(text: bytes) -> dt.date | None:
    for found in _REQUEST_TIME.finditer(text):
        day, month, year = found.groups()
        try:
            return dt.date(int(year), _MONTHS.get(month, 0), int(day))
        except ValueError:
            continue  # not a date: the next line may have one
    return None
