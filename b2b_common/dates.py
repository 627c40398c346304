"""Calendar months, as the warehouse and the simulators both count them."""

from __future__ import annotations

import datetime as dt


def add_months(day: dt.date, months: int) -> dt.date:
    """First day of the month `months` after the month of `day`."""
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    return dt.date(year, month + 1, 1)


def months_between(first: dt.date, last: dt.date) -> int:
    """Calendar months from the month of `first` to the month of `last` (0: the same)."""
    return (last.year - first.year) * 12 + last.month - first.month


def month_name(month: str | dt.date) -> str:
    """A month as people read it, `Dec 2026`, from its first day or partition key."""
    day = dt.date.fromisoformat(month[:10]) if isinstance(month, str) else month
    return day.strftime("%b %Y")


def report_window(as_of: dt.date) -> tuple[dt.date, dt.date]:
    """[first day, day after the as-of day): the 12 most recent complete calendar months at
    the end of the as-of day, plus the as-of month to date when the as-of day is not the
    last of its month (on a month's last day: the 12 months ending with it)."""
    end = as_of + dt.timedelta(days=1)
    month_is_complete = end.day == 1
    return add_months(as_of, -11 if month_is_complete else -12), end


def same_point_last_month(moment: dt.datetime) -> dt.datetime:
    """As far into the previous month as `moment` is into its own, capped at the end of
    the previous month: what a month to date compares with, like for like (6 Dec 00:00
    gives 6 Nov 00:00; 31 Mar 12:00 gives 1 Mar 00:00, the whole of February)."""
    month_start = dt.datetime.combine(moment.date().replace(day=1), dt.time(0))
    previous_start = dt.datetime.combine(add_months(moment.date(), -1), dt.time(0))
    return min(previous_start + (moment - month_start), month_start)


def load_cutoff(as_of: dt.date, now: dt.datetime | None = None) -> dt.datetime:
    """The moment records stop being loaded: the end of the as-of day, or `now` (naive
    UTC) when that is earlier; `now` is None when the as-of day is fixed."""
    end_of_as_of = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(0))
    return end_of_as_of if now is None else min(end_of_as_of, now)
