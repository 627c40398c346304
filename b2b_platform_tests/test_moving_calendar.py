"""The calendar moves: the nightly refresh equals a clean build day after day, across a
month's and a year's end, with B2B_AS_OF and on the real clock, and `make demo`'s
commands work on the days they used to fail on (moving_calendar.py has the rules of the
replay; `make calendar` runs the longer replays and every demo day at `small`)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from b2b_platform_tests.helpers import query
from b2b_platform_tests.moving_calendar import LiveSources, Replay, demo_day

pytestmark = [pytest.mark.slow, pytest.mark.calendar]


def _replay(root: Path, first: dt.date, last: dt.date, *, clock: bool) -> list:
    results = []
    for result in Replay(root, first, last, clock=clock).run():
        assert result.refresh_exit == 0, result.output[-3000:]
        assert result.clean_exit == 0, result.output[-3000:]
        assert result.differing == {}, (result.day, result.differing)
        results.append(result)
    return results


def test_the_nightly_refresh_equals_a_clean_build_across_the_year_end(tmp_path: Path) -> None:
    results = _replay(tmp_path, dt.date(2026, 12, 31), dt.date(2027, 1, 2), clock=False)
    assert [r.day for r in results] == [dt.date(2026, 12, 31) + dt.timedelta(d) for d in range(3)]
    warehouse = tmp_path / "refresh" / "b2b.duckdb"
    # what the days brought, beyond new lines and orders: the file of 29 Dec, delivered
    # on 1 Jan, three days late and in the next year, landed in December; the as-of
    # evening held as future on one day was loaded the next (its file read again, with
    # the later cutoff)
    late = query(warehouse, "SELECT partition_key, rows_loaded FROM etl.file_manifest"
                 " WHERE path LIKE '%2026-12-29%' OR path LIKE '%20261229%'")  # fmt: skip
    assert late and late[0][0] == "2026-12-01" and late[0][1] > 0
    cutoffs = query(warehouse, "SELECT count(DISTINCT load_cutoff) FROM etl.file_manifest"
                    " WHERE source = 'weblogs'")  # fmt: skip
    assert cutoffs[0][0] >= 3
    january = query(warehouse, "SELECT rows_loaded FROM etl.record_accounting"
                    " WHERE entity = 'log_lines' AND partition_key = '2027-01-01'")  # fmt: skip
    assert january and january[0][0] > 0  # the new year's month began and loads


def test_the_nightly_refresh_on_the_real_clock_equals_a_clean_build(tmp_path: Path) -> None:
    """No B2B_AS_OF: each run's process clock is set to the day's evening (libfaketime),
    so the cutoff is the clock, not the end of the day, and moves with it."""
    _replay(tmp_path, dt.date(2026, 11, 30), dt.date(2026, 12, 1), clock=True)
    warehouse = tmp_path / "refresh" / "b2b.duckdb"
    started = query(warehouse, "SELECT min(started_at)::DATE, max(started_at)::DATE"
                    " FROM etl.run_log")  # fmt: skip
    assert started == [(dt.date(2026, 11, 30), dt.date(2026, 12, 1))]  # the faked days
    cutoff = query(warehouse, "SELECT max(load_cutoff) FROM etl.file_manifest")[0][0]
    assert cutoff.date() == dt.date(2026, 12, 1) and cutoff.hour == 23  # now, not midnight


@pytest.mark.parametrize("day", [dt.date(2027, 1, 1), dt.date(2028, 2, 29)], ids=str)
def test_make_demo_commands_work_on_the_edges_of_the_calendar(tmp_path: Path, day) -> None:
    """`b2b generate`, `b2b run`, `b2b report` in an empty directory with the clock at
    noon of the day: a month's and a year's first day, a leap day."""
    result = demo_day(tmp_path / "demo", day, scale="tiny")
    assert result.ok, result.output[-4000:]


def test_revealing_a_day_is_what_the_replay_says(tmp_path: Path) -> None:
    """The replay's rules, checked on its live sources: late orders, late statuses, the
    late log file and the workbooks of ended months."""
    replay = Replay(tmp_path, dt.date(2026, 11, 29), dt.date(2026, 12, 2))
    sources: LiveSources = replay.sources
    sources.reveal(dt.date(2026, 11, 29))
    live = sources.live / "source" / "b2b_platform.db"
    generated = sources.generated / "source" / "b2b_platform.db"

    def scalar(path: Path, sql: str) -> object:
        import sqlite3

        with sqlite3.connect(path) as conn:
            return conn.execute(sql).fetchone()[0]

    placed_by_end = "ordered_at < '2026-11-30'"
    late = scalar(live, f"SELECT count(*) FROM orders WHERE {placed_by_end}"
                        " AND ordered_at >= '2026-11-29' AND order_id % 7 = 0")  # fmt: skip
    assert late == 0  # placed on the 29th, keyed in the next day
    assert scalar(live, "SELECT count(*) FROM orders WHERE ordered_at >= '2026-12-03'") == scalar(
        generated, "SELECT count(*) FROM orders WHERE ordered_at >= '2026-12-03'"
    )  # planted future orders are there from the start
    delivered_later = scalar(
        live, "SELECT count(*) FROM orders WHERE status = 'paid' AND updated_at = ordered_at"
        " AND ordered_at >= '2026-11-20'",
    )  # fmt: skip
    assert delivered_later > 0  # statuses that change after the day
    logs = {p.name for p in (sources.live / "weblogs").iterdir()}
    assert not any("2026-11-27" in name or "20261127" in name for name in logs)  # late file
    assert any("2026-11-29" in name or "20261129" in name for name in logs)
    leads = sorted(p.name[:13] for p in (sources.live / "leads").iterdir())
    assert leads and leads[-1] == "leads_2026-10"  # November's arrives on the 30th
    sources.reveal(dt.date(2026, 11, 30))
    logs = {p.name for p in (sources.live / "weblogs").iterdir()}
    assert any("2026-11-27" in name or "20261127" in name for name in logs)
    assert sorted(p.name[:13] for p in (sources.live / "leads").iterdir())[-1] == "leads_2026-11"


@pytest.mark.parametrize("ahead", [0, 1, 14])
def test_a_fixed_as_of_day_ahead_of_the_clock_has_its_month(ahead: int) -> None:
    """Dagster ends monthly partitions at the real clock's month: an as-of day dated ahead
    (a replay, a demo) must still get its own month, and no month past it."""
    from b2b_common.dates import add_months
    from b2b_platform.lib.resources import CalendarResource

    as_of = add_months(dt.date.today(), ahead) + dt.timedelta(days=1)
    calendar = CalendarResource(
        as_of=as_of.isoformat(), as_of_is_fixed=True,
        first_month=add_months(as_of, -12).isoformat(), attribution_days=90,
    )  # fmt: skip
    keys = calendar.monthly_partitions().get_partition_keys()
    assert keys[-1] == as_of.replace(day=1).isoformat() and len(keys) == 13
