"""Polars frames handed to DuckDB as Arrow, in the string layout the installed DuckDB scans."""

from __future__ import annotations

from functools import cache

import duckdb
import polars as pl
import pyarrow as pa


@cache
def _scans_string_views() -> bool:
    # DuckDB 1.5 and later filter an Arrow scan themselves and take string views without
    # a copy. The 1.4 line (the lake profile) leaves a filtered scan to pyarrow, which has
    # no filter kernel for string views ("array_filter ... (string_view, bool)"), so it
    # gets large strings: one copy of the text, the layout every version reads.
    major, minor = (int(part) for part in duckdb.__version__.split(".")[:2])
    return (major, minor) >= (1, 5)


def arrow_for_duckdb(frame: pl.DataFrame) -> pa.Table:
    """The frame as an Arrow table the installed DuckDB can scan and filter."""
    level = pl.CompatLevel.newest() if _scans_string_views() else pl.CompatLevel.oldest()
    return frame.to_arrow(compat_level=level)
