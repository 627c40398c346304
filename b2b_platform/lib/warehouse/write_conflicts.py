"""A transaction that lost a write conflict to another writer, tried again.

A DuckDB file has one writer, so it never conflicts. A lake has many: DuckLake refuses
the commit of a transaction that deletes rows from a data file another transaction
changed since it began (two steps replacing slices that share a file, or updating run
records that compaction merged into one file). The loser's work was rolled back whole;
doing it again on the newer snapshot is all it takes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import backoff
import duckdb

T = TypeVar("T")
CONFLICT_ATTEMPTS = 8


def is_write_conflict(exc: BaseException) -> bool:
    """A commit another writer got in the way of: a conflict on the same data, DuckLake's
    own retries of a snapshot taken at the same moment run out, or its check of the
    snapshots committed meanwhile failing (DuckLake 0.3 cannot always read back the
    changes of a concurrent snapshot: "Failed to parse catalog entry"). A transaction
    begun afresh, after those snapshots, does not meet them again."""
    text = str(exc).lower()
    return isinstance(exc, duckdb.TransactionException) and (
        "conflict" in text or "failed to commit ducklake transaction" in text
    )


def retry_on_conflict(
    action: Callable[[], T],
    *,
    attempts: int = CONFLICT_ATTEMPTS,
    on_retry: Callable[[str], None] | None = None,
) -> T:
    """Run `action` (a whole transaction), again after a write conflict, with a growing,
    jittered pause (up to 0.1 s, doubling, at most 5 s) so that two writers do not collide
    again in step; any other error, or the last conflict, is raised."""

    def said(details: Any) -> None:
        if on_retry is not None:
            tries = details["tries"]
            on_retry(f"write conflict with another writer, attempt {tries} of {attempts}")

    again = backoff.on_exception(
        backoff.expo, duckdb.TransactionException, max_tries=attempts, base=2, factor=0.1,
        max_value=5.0, jitter=backoff.full_jitter, giveup=lambda exc: not is_write_conflict(exc),
        on_backoff=said, logger=None,
    )  # fmt: skip
    return again(action)()
