"""Polars frames handed to the installed DuckDB: every scan the loaders make works."""

import duckdb
import polars as pl

from b2b_platform.lib.arrow_frames import arrow_for_duckdb


def test_a_join_filtered_into_the_scan_reads_the_frame() -> None:
    # the web-log commit's shape: lines joined to their files, filtered on a text column;
    # DuckDB 1.4 and 1.5 push the join's filter into the Arrow scan, where pyarrow cannot
    # filter string views
    lines = arrow_for_duckdb(pl.DataFrame({
        "file_index": [0, 1, 2] * 50_000,
        "line": ["a", "b", None] * 50_000,
        "reason": [None, "unparseable_line", None] * 50_000,
    }))  # fmt: skip
    files = arrow_for_duckdb(pl.DataFrame({"file_index": [0, 1, 2], "path": ["x", "y", "z"]}))
    conn = duckdb.connect()
    conn.register("lines", lines)
    conn.register("files", files)
    [(loaded,)] = conn.execute(
        "SELECT count(*) FROM lines l JOIN files f USING (file_index) WHERE l.reason IS NULL"
    ).fetchall()
    assert loaded == 100_000
