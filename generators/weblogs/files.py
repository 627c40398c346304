"""The log files: their names (rotated and compressed like logrotate's), the bytes of a
day's lines, and writing them atomically."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
from isal import isal_zlib

from generators.weblogs.calendar import Calendar
from generators.weblogs.edge_cases import NON_UTF8_PLACEHOLDERS

GZIP_AFTER_DAYS = 7  # files of days older than this are compressed, like logrotate's delaycompress
LOGROTATE_EVERY = 10  # every 10th compressed day uses logrotate's dateext name instead

# Our file names, and the temporary names they are written under.
_FILE_PATTERN = re.compile(
    r"^\.?(access-\d{4}-\d{2}-\d{2}\.log(\.gz)?|access\.log-\d{8}(\.gz)?)(\.tmp)?$"
)


def file_names(calendar: Calendar) -> list[str]:
    """The file name of each day of the run."""
    names, compressed = [], 0
    for i in range(calendar.n_days):
        day = calendar.first_day + dt.timedelta(days=i)
        if (calendar.as_of - day).days <= GZIP_AFTER_DAYS:
            names.append(f"access-{day:%Y-%m-%d}.log")
            continue
        rotated = compressed % LOGROTATE_EVERY == LOGROTATE_EVERY - 1
        names.append(f"access.log-{day:%Y%m%d}.gz" if rotated else f"access-{day:%Y-%m-%d}.log.gz")
        compressed += 1
    return names


def write_log_file(path: Path, parts: Sequence[bytes | memoryview]) -> int:
    """Write ``parts`` to ``path`` (gzipped for a .gz name); the bytes written."""
    if path.name.endswith(".gz"):
        # wbits=31: a gzip member with mtime 0 and no file name, so the bytes are reproducible.
        # ISA-L deflate: about 5x zlib's speed at level 1, still plain gzip for every reader.
        compressor = isal_zlib.compressobj(1, isal_zlib.DEFLATED, 31)
        parts = [*(compressor.compress(part) for part in parts), compressor.flush()]
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as file:
        file.writelines(parts)
    os.replace(tmp, path)  # a file sensor never sees a half-written log
    return sum(len(part) for part in parts)


def _text_bytes(lines: pl.Series) -> tuple[memoryview, np.ndarray]:
    """The lines' text and each line's byte offset, straight from Arrow's buffers."""
    arr = lines.to_arrow(compat_level=pl.CompatLevel.oldest())  # large_string: one buffer
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    _, offsets, data = arr.buffers()
    if data is None:  # no lines at all
        return memoryview(b""), np.zeros(len(arr) + 1, dtype=np.int64)
    offsets = np.frombuffer(offsets, dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    return memoryview(data), offsets


def file_parts(lines: pl.Series, raw_at: np.ndarray) -> list[bytes | memoryview]:
    """The lines as buffers to write in turn; lines at ``raw_at`` get non-UTF-8 bytes."""
    text, offsets = _text_bytes(lines)
    parts: list[bytes | memoryview] = []
    done = 0
    for row in raw_at.tolist():  # a handful of lines, not all
        line = lines.slice(row, 1).cast(pl.Binary).item()
        for placeholder, raw in NON_UTF8_PLACEHOLDERS:
            line = line.replace(placeholder.encode(), raw)
        parts += [text[offsets[done] : offsets[row]], line]
        done = row + 1
    parts.append(text[offsets[done] : offsets[len(lines)]])
    return parts


def clear_old_logs(out_dir: Path) -> None:
    """Drop logs of an earlier run: a day must not be there twice under two names."""
    for path in out_dir.iterdir():
        if path.is_file() and _FILE_PATTERN.match(path.name):
            path.unlink()
