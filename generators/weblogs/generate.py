"""The entry point: plan the run, then make events a server-local month at a time and turn
them into text a day at a time, compressing and writing files in a thread meanwhile."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl

from generators.config import GenerationConfig
from generators.weblogs.calendar import DAY_S, SERVER_UTC_OFFSET_S
from generators.weblogs.edge_cases import MALFORMED_KINDS, REJECTED_KINDS, edge_case_lines
from generators.weblogs.events import FIELDS, Events, concat_events, no_events, take_events
from generators.weblogs.files import clear_old_logs, file_names, file_parts, write_log_file
from generators.weblogs.lines import field_texts, format_lines
from generators.weblogs.plan import Plan, PlatformLike, make_plan
from generators.weblogs.streams import MONTH_STREAM, random_stream
from generators.weblogs.summary import WeblogSummary
from generators.weblogs.user_events import browse_events, order_events
from generators.weblogs.visitor_events import (
    anonymous_events,
    crawler_events,
    health_check_events,
)

_N_KINDS = len(MALFORMED_KINDS)
_NON_UTF8 = MALFORMED_KINDS.index("non_utf8")
_REJECTED = np.array([kind in REJECTED_KINDS for kind in MALFORMED_KINDS])
_MAX_PENDING_DAYS = 4  # bounded: a few days at most wait for zlib


def _month_events(
    plan: Plan, month: int, rng: np.random.Generator, carry: Events
) -> tuple[Events, Events, int]:
    """Month ``month``'s events sorted by time, the ones that belong to later months, and
    how many fell before the first day."""
    calendar, tables, products = plan.calendar, plan.tables, plan.products
    first_order, end_order = (int(i) for i in plan.first_order[month : month + 2])
    first_browse, end_browse = (int(i) for i in plan.first_browse[month : month + 2])
    anonymous = int(plan.anonymous_lines[month])
    events = concat_events(
        [
            carry,
            order_events(rng, plan.orders, plan.users, products, first_order, end_order),
            browse_events(rng, plan.browse, plan.users, products, first_browse, end_browse),
            anonymous_events(rng, calendar, month, anonymous, tables, plan.pools, products),
            crawler_events(rng, calendar, month, int(plan.crawler_lines[month]), tables, products),
            health_check_events(rng, calendar, month, int(plan.health_check_lines[month]), tables),
        ]
    )
    time = events["time"]
    later = time >= calendar.month_bounds[month + 1]
    keep = np.flatnonzero((time >= calendar.start) & ~later)
    # Stable: events of the same second stay in the order they were made.
    order = keep[np.argsort(time[keep], kind="stable")]
    early = len(time) - len(keep) - int(later.sum())
    carry = take_events(events, np.flatnonzero(later))
    # Column by column, letting go of each unsorted one: one month is ~8M events at xlarge.
    return {field: events.pop(field)[order] for field in list(events)}, carry, early


def _choose_edge_cases(
    plan: Plan, month: int, rng: np.random.Generator, injectable: np.ndarray, first: int
) -> np.ndarray:
    """Choose the month's share of edge cases; per event, its number in the run's sequence
    of edge cases (kinds in turn, so the ``first``-th is this month's first), else -1."""
    # Only anonymous and crawler lines: the users' story (logins, devices, countries) stays exact.
    eligible = np.flatnonzero(injectable)
    take = min(int(plan.edge_cases[month]), len(eligible))
    chosen = np.sort(rng.choice(eligible, take, replace=False))
    sequence = np.full(len(injectable), -1)
    sequence[chosen] = first + np.arange(take)
    return sequence


def _render_day(plan: Plan, codes: pl.DataFrame, sequence: np.ndarray) -> pl.Series:
    """The lines of ``codes``, those with ``sequence`` >= 0 rewritten as edge cases."""
    lines = format_lines(codes, plan.calendar, plan.tables)
    chosen = np.flatnonzero(sequence >= 0)
    if len(chosen):
        kinds = pl.Series(MALFORMED_KINDS, dtype=pl.String)
        picked = (
            codes[chosen]
            .select(field_texts(plan.tables))
            .with_columns(
                kind=kinds.gather(sequence[chosen] % _N_KINDS),
                variant=pl.Series((sequence[chosen] // _N_KINDS) % 2),
            )
        )
        lines = lines.scatter(chosen, edge_case_lines(picked, plan.calendar, plan.tables.ipv6))
    return lines


class _BackgroundWriter:
    """Writes files in a thread, a few days at most waiting; counts the bytes written."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        self._pending: deque[Future[int]] = deque()
        self.bytes_written = 0

    def submit(self, path: Path, parts: Sequence[bytes | memoryview]) -> None:
        if len(self._pending) >= _MAX_PENDING_DAYS:
            self.bytes_written += self._pending.popleft().result()
        self._pending.append(self._executor.submit(write_log_file, path, parts))

    def finish(self) -> int:
        while self._pending:
            self.bytes_written += self._pending.popleft().result()
        return self.bytes_written


def _write_month(
    plan: Plan, month: int, events: Events, sequence: np.ndarray, paths: Sequence[Path],
    writer: _BackgroundWriter,
) -> int:  # fmt: skip
    """Write the month's days, one file each; the number of lines written."""
    calendar = plan.calendar
    first_day, end_day = calendar.month_days(month)
    day_starts = calendar.start + np.arange(first_day, end_day + 1) * DAY_S
    bounds = np.searchsorted(events["time"], day_starts)
    for day in range(first_day, end_day):
        start, end = int(bounds[day - first_day]), int(bounds[day - first_day + 1])
        # Text a day at a time: a month of it is gigabytes at the xlarge scale.
        codes = pl.DataFrame({field: events[field][start:end] for field in FIELDS})
        day_sequence = sequence[start:end]
        lines = _render_day(plan, codes, day_sequence)
        raw_at = np.flatnonzero((day_sequence >= 0) & (day_sequence % _N_KINDS == _NON_UTF8))
        writer.submit(paths[day], file_parts(lines, raw_at))
    return int(bounds[-1] - bounds[0])


def _lines_after(cutoff: int, time: np.ndarray, sequence: np.ndarray) -> int:
    """Lines at or after ``cutoff`` that the warehouse can parse."""
    rejected = (sequence >= 0) & _REJECTED[sequence % _N_KINDS]
    return int(((time >= cutoff) & ~rejected).sum())


def generate_weblogs(
    config: GenerationConfig, platform: PlatformLike, out_dir: Path
) -> WeblogSummary:
    """Write one access log per server-local day from ``config.first_day`` to ``config.as_of``.

    Access logs of an earlier run in ``out_dir`` are replaced. Same config, same bytes.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clear_old_logs(out_dir)
    plan = make_plan(config, platform)
    calendar = plan.calendar
    paths = [out_dir / name for name in file_names(calendar)]
    per_kind = np.zeros(_N_KINDS, dtype=np.int64)
    lines = early = after_cutoff = 0
    carry = no_events()
    utc_cutoff = calendar.end + SERVER_UTC_OFFSET_S  # the as-of day's end (UTC), in server time
    # The compressor releases the GIL: compress and write in a thread while the next days
    # are built.
    with ThreadPoolExecutor(max_workers=1) as executor:
        writer = _BackgroundWriter(executor)
        for month in range(calendar.n_months):
            rng = random_stream(config, MONTH_STREAM, month)
            events, carry, before_first_day = _month_events(plan, month, rng, carry)
            early += before_first_day
            sequence = _choose_edge_cases(
                plan, month, rng, events["injectable"], int(per_kind.sum())
            )
            per_kind += np.bincount(sequence[sequence >= 0] % _N_KINDS, minlength=_N_KINDS)
            after_cutoff += _lines_after(utc_cutoff, events["time"], sequence)
            lines += _write_month(plan, month, events, sequence, paths, writer)
            del events, sequence  # let go of this month's events before the next is built
        bytes_written = writer.finish()
    return WeblogSummary(
        files=calendar.n_days,
        lines=lines,
        malformed_lines=dict(zip(MALFORMED_KINDS, per_kind.tolist(), strict=True)),
        bytes_written=bytes_written,
        events_out_of_range=early + len(carry["time"]),  # carry: after the as-of day
        lines_after_cutoff=after_cutoff,
    )
