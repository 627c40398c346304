"""Polars frames handed to DuckDB as Arrow, in the string layout the installed DuckDB scans."""

from __future__ import annotations

from functools import cache

import duckdb
import polars as pl
import pyarrow as pa


@cache
def _scans_string_views() -> bool:
    # DuckDB 2.0 filters an Arrow scan itself and takes string views without a copy.
    # Earlier lines (the lake profile's 1.4, and 1.5 too) hand some filtered scans to
    # pyarrow, a join's filter pushed into the scan among them, and pyarrow has no
    # filter kernel for string views ("array_filter ... (string_view, bool)"): they get
    # large strings, one copy of the text, the layout every version reads.
    major, _ = (int(part) for part in duckdb.__version__.split(".")[:2])
    return major >= 2


def arrow_for_duckdb(frame: pl.DataFrame) -> pa.Table:
    """The frame as an Arrow table the installed DuckDB can scan and filter."""
    level = pl.CompatLevel.newest() if _scans_string_views() else pl.CompatLevel.oldest()
    return frame.to_arrow(compat_level=level)
