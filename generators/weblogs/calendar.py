"""Server-local time: the days and months of the run, traffic by weekday and hour of day,
and random instants drawn from them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from generators.config import GenerationConfig

# The platform runs in Argentina: no DST since 2009, so a fixed offset is exact.
SERVER_UTC_OFFSET_S = -3 * 3600
SERVER_TZ = "-0300"
DAY_S = 86400

# Month names by hand: strftime's %b follows the locale.
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# Share of lines per server-local hour: business hours for users, evenings too for the public.
BUSINESS_HOURS = np.array(
    [0.2, 0.1, 0.05, 0.05, 0.05, 0.1, 0.3, 0.8, 2.0, 3.5, 4.2, 4.3,
     3.6, 2.8, 3.4, 4.0, 3.9, 3.2, 2.2, 1.5, 1.1, 0.8, 0.5, 0.3]
)  # fmt: skip
PUBLIC_HOURS = np.array(
    [0.8, 0.5, 0.3, 0.2, 0.2, 0.3, 0.6, 1.2, 2.0, 2.6, 3.0, 3.1,
     3.0, 2.8, 2.9, 3.0, 3.0, 2.9, 2.8, 3.0, 3.2, 3.0, 2.2, 1.4]
)  # fmt: skip
FLAT_HOURS = np.ones(24)


def _epoch_day(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


@dataclass(frozen=True)
class Calendar:
    """The run's days, from ``first_day`` to ``as_of``, in server-local epoch seconds."""

    first_day: dt.date
    as_of: dt.date
    n_days: int
    start: int  # server-local epoch seconds of first_day 00:00
    end: int  # ... of the day after as_of
    month_bounds: np.ndarray  # local epoch seconds of month starts, then ``end``
    day_stamps: pl.Series  # "dd/Mon/YYYY:" per day, as in the log's %t

    @classmethod
    def for_config(cls, config: GenerationConfig) -> Calendar:
        first, as_of = config.first_day, config.as_of
        bounds, month = [], first
        while month <= as_of:
            bounds.append(_epoch_day(month) * DAY_S)
            month = (month + dt.timedelta(days=32)).replace(day=1)
        end = (_epoch_day(as_of) + 1) * DAY_S
        n_days = (as_of - first).days + 1
        days = [first + dt.timedelta(days=i) for i in range(n_days)]
        stamps = pl.Series(
            [f"{day.day:02d}/{_MONTH_NAMES[day.month - 1]}/{day.year}:" for day in days]
        )
        return cls(first, as_of, n_days, bounds[0], end, np.array([*bounds, end]), stamps)

    @property
    def n_months(self) -> int:
        return len(self.month_bounds) - 1

    def month_days(self, month: int) -> tuple[int, int]:
        """The month's first day and the day after its last, as day numbers of the run."""
        first, after = self.month_bounds[month : month + 2]
        return int(first - self.start) // DAY_S, int(after - self.start) // DAY_S

    def month_of(self, times: np.ndarray) -> np.ndarray:
        month = np.searchsorted(self.month_bounds, times, side="right") - 1
        return np.clip(month, 0, self.n_months - 1)

    def day_weights(self, weekend: tuple[float, float], growth: float) -> np.ndarray:
        """Relative traffic per day: quieter weekends and a business that grows."""
        day = np.arange(self.n_days)
        factor = np.ones(7)
        factor[5], factor[6] = weekend
        trend = 1 + growth * (day / max(self.n_days - 1, 1) - 0.5)
        return factor[(self.first_day.weekday() + day) % 7] * trend

    def sample_times(
        self,
        rng: np.random.Generator,
        n: int,
        by_day: np.ndarray,
        by_hour: np.ndarray,
        days: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """``n`` instants, days and hours drawn with the given weights (within ``days``)."""
        first, after = days if days is not None else (0, self.n_days)
        day_p = by_day[first:after] / by_day[first:after].sum()
        day = first + rng.choice(after - first, n, p=day_p)
        hour = rng.choice(24, n, p=by_hour / by_hour.sum())
        return self.start + day * DAY_S + hour * 3600 + rng.integers(0, 3600, n)
