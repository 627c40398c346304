"""Files that are not access logs: a file whose lines mostly fail to parse is failed
whole (named in the manifest), not loaded as a heap of quarantined lines."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

import polars as pl

# a file whose lines are mostly not access-log lines fails as that file instead of
# filling the quarantine: over this share of NOT_A_LOG_REASONS among at least
# ABSURD_MIN_LINES lines of a part (dates do not count: a whole file may be out of range)
ABSURD_REJECT_SHARE = 0.5
ABSURD_MIN_LINES = 1_000
NOT_A_LOG_REASONS = ("unparseable_line", "invalid_timestamp", "line_too_long")


class Piece(Protocol):
    """What failing a file takes of a piece of it (loading.FilePiece): its manifest row.
    Declared here, so the loading that calls this module is not imported back."""

    manifest: dict[str, Any]


P = TypeVar("P", bound=Piece)


def not_a_log(parsed: pl.DataFrame) -> str | None:
    """Why lines are not an access log's, if over ABSURD_REJECT_SHARE of them fail to parse."""
    return absurd(
        parsed.height, parsed.select(pl.col("reason").is_in(NOT_A_LOG_REASONS).sum()).item()
    )


def absurd(lines: int, bad: int) -> str | None:
    if lines >= ABSURD_MIN_LINES and bad > ABSURD_REJECT_SHARE * lines:
        return f"not an access log: {bad:,} of {lines:,} lines are not in combined log format"
    return None


def drop_absurd_files(
    parsed: pl.DataFrame, loaded: list[P], failures: list[tuple[dict[str, Any], str]]
) -> tuple[pl.DataFrame | None, list[P]]:
    """Fail the pieces whose lines are mostly not log lines; keep the others' rows."""
    per_file = parsed.group_by("file_index").agg(
        read=pl.len(), bad=pl.col("reason").is_in(NOT_A_LOG_REASONS).sum()
    )
    dropped: list[int] = []
    for index, read, bad in per_file.iter_rows():
        problem = absurd(read, bad)
        if problem:
            failures.append((loaded[int(index)].manifest, problem))
            dropped.append(int(index))
    if not dropped:
        return parsed, loaded
    # renumber the file indexes of the pieces that stay
    kept = [i for i in range(len(loaded)) if i not in dropped]
    renumber = pl.DataFrame(
        {"file_index": kept, "new_index": range(len(kept))},
        schema={"file_index": pl.Int32, "new_index": pl.Int32},
    )
    parsed = (
        parsed.join(renumber, on="file_index")
        .drop("file_index")
        .rename({"new_index": "file_index"})
    )
    return (parsed if kept else None), [loaded[i] for i in kept]
