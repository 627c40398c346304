"""Events: batches of requests as numpy columns of integer codes into the string tables,
one dict per batch, and the expansion of sessions into their events."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FIELDS = (
    "time",  # server-local epoch seconds
    "host",
    "user",
    "method",
    "path",
    "protocol",
    "status",
    "size",
    "referer",
    "user_agent",
)
Events = dict[str, np.ndarray]  # FIELDS, and "injectable": may become an edge case


def make_events(n: int, injectable: bool, **columns: np.ndarray | int) -> Events:
    """A batch of ``n`` events; scalar arguments become constant columns."""
    out = {
        field: np.broadcast_to(np.asarray(columns[field], dtype=np.int64), (n,)) for field in FIELDS
    }
    out["injectable"] = np.full(n, injectable)
    return out


def concat_events(batches: Sequence[Events]) -> Events:
    columns = (*FIELDS, "injectable")
    return {field: np.concatenate([batch[field] for batch in batches]) for field in columns}


def take_events(events: Events, rows: np.ndarray) -> Events:
    return {field: column[rows] for field, column in events.items()}


def no_events() -> Events:
    return make_events(0, False, **dict.fromkeys(FIELDS, 0))


def expand_sessions(
    counts: np.ndarray, gaps: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expand sessions to events: session index, position in session, seconds since start."""
    session = np.repeat(np.arange(len(counts)), counts)
    first = np.cumsum(counts) - counts
    position = np.arange(len(session)) - first[session]
    gaps = np.where(position == 0, 0, gaps)
    elapsed = np.cumsum(gaps)
    return session, position, elapsed - elapsed[first][session]


def trim_sessions(counts: np.ndarray, lines: int) -> np.ndarray:
    """Session lengths trimmed so that they add up to exactly ``lines``."""
    counts = counts[: int(np.searchsorted(np.cumsum(counts), lines)) + 1]
    counts[-1] -= counts.sum() - lines
    return counts
