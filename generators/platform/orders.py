"""Orders: who places them and when (weekdays busier, business growing), their status by
age, and the misdated, dangling and garbled orders the warehouse must catch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from generators import reference as ref
from generators.config import GenerationConfig
from generators.platform.columns import anomaly_mask, build_frame, count_injected, point_past


@dataclass(frozen=True)
class Buyers:
    """Users with the buyer or admin role and how likely each is to place the next order."""

    user_ids: np.ndarray
    company_ids: np.ndarray
    weights: np.ndarray  # sums to 1

    @classmethod
    def of(cls, rng: np.random.Generator, users: pl.DataFrame) -> Buyers:
        buyers = users.filter(pl.col("role") != "viewer")
        activity = rng.pareto(1.5, size=buyers.height) + 0.1  # heavy-tailed
        return cls(
            buyers["user_id"].to_numpy(), buyers["company_id"].to_numpy(), activity / activity.sum()
        )

    def pick(self, rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
        """User and company ids of ``count`` orders' buyers."""
        pick = rng.choice(len(self.weights), size=count, p=self.weights)
        return self.user_ids[pick], self.company_ids[pick]


def order_days(config: GenerationConfig) -> tuple[np.ndarray, np.ndarray]:
    """Every simulated day and its relative order volume: weekdays busier, business growing."""
    days = np.arange(np.datetime64(config.first_day), np.datetime64(config.as_of) + 1)
    weekday = (days.astype("datetime64[D]").view("int64") - 4) % 7  # 0 = Monday
    weight = np.where(weekday < 5, 1.0, 0.35) * np.linspace(0.7, 1.3, len(days))
    return days, weight


def _order_times(
    config: GenerationConfig,
    rng: np.random.Generator,
    count: int,
    window: tuple[int, int] | None = None,
) -> np.ndarray:
    """Order instants in business hours in Argentina, on the days ``window`` (day indices)."""
    days, weight = order_days(config)
    if window is not None:
        days, weight = days[window[0] : window[1]], weight[window[0] : window[1]]
    day = days[rng.choice(len(days), size=count, p=weight / weight.sum())]
    # 09:00-19:00 ART = 12:00-22:00 UTC, peaking mid-morning
    seconds = np.clip(rng.normal(15.5 * 3600, 2.6 * 3600, size=count), 0, 86_399).astype(np.int64)
    return (day.astype("datetime64[s]") + seconds.astype("timedelta64[s]")).astype("datetime64[us]")


def draw_orders(
    config: GenerationConfig,
    rng: np.random.Generator,
    companies: pl.DataFrame,
    customers: pl.DataFrame,
    users: pl.DataFrame,
    injected: dict[str, int],
) -> pl.DataFrame:
    """Every order in one batch (scales up to STREAM_ABOVE_ORDERS)."""
    buyers = Buyers.of(rng, users)
    return order_batch(
        config, rng, buyers, companies, customers, injected, count=config.scale.orders, first_id=1
    )


def order_batch(
    config: GenerationConfig,
    rng: np.random.Generator,
    buyers: Buyers,
    companies: pl.DataFrame,
    customers: pl.DataFrame,
    injected: dict[str, int],
    *,
    count: int,
    first_id: int,
    window: tuple[int, int] | None = None,
) -> pl.DataFrame:
    """``count`` orders numbered from ``first_id``, placed on the days ``window`` (all by default)."""
    rates = config.anomalies
    user_ids, company_ids = buyers.pick(rng, count)
    api = rng.random(count) < 0.15  # integrations place orders with no user
    ordered_at = np.sort(_order_times(config, rng, count, window))
    customer_ids = rng.integers(1, customers.height + 1, size=count)
    # An order carries one defect at most, so the warehouse rejects it for that one reason.
    flagged = _misdate(config, rng, ordered_at, injected)
    unknown = point_past(rng, company_ids, companies.height, rates.unknown_company, ~flagged)
    count_injected(injected, "unknown_company", unknown)
    flagged |= unknown
    unknown = point_past(rng, customer_ids, customers.height, rates.unknown_customer, ~flagged)
    count_injected(injected, "unknown_customer", unknown)
    flagged |= unknown
    age_days = (
        (np.datetime64(config.end.replace(tzinfo=None), "s") - ordered_at)
        .astype("timedelta64[D]")
        .astype(int)
    )
    ids = np.arange(first_id, first_id + count, dtype=np.int64)
    # Unknown customers ship to the last customer's place; gathered, not converted whole.
    ship_idx = pl.Series(np.clip(customer_ids - 1, 0, customers.height - 1))
    return build_frame(
        {
            "order_id": ids,
            "order_number": [f"ORD-{i:08d}" for i in ids],
            "company_id": company_ids.astype(np.int64),
            "customer_id": customer_ids.astype(np.int64),
            "user_id": pl.Series(user_ids.astype(np.int64)).set(pl.Series(api), None),
            "ordered_at": ordered_at,
            "status": _statuses(config, rng, age_days, ~flagged, injected),
            "currency": np.full(count, "ARS", dtype=object),
            "shipping_province": customers["province"].gather(ship_idx),
            "shipping_city": customers["city"].gather(ship_idx),
            "updated_at": ordered_at + np.minimum(age_days, 20).clip(0).astype("timedelta64[D]"),
        },
        schema_overrides={
            "status": pl.String,
            "currency": pl.String,
            "shipping_province": pl.String,
            "shipping_city": pl.String,
        },
    )


def _misdate(
    config: GenerationConfig,
    rng: np.random.Generator,
    ordered_at: np.ndarray,
    injected: dict[str, int],
) -> np.ndarray:
    """Move some orders (in place) past the end of the range or before its start; says which."""
    count = len(ordered_at)
    future = anomaly_mask(rng, count, config.anomalies.future_order)
    ordered_at[future] = np.datetime64(config.end.replace(tzinfo=None), "s") + rng.integers(
        3_600, 200 * 86_400, size=int(future.sum())
    ).astype("timedelta64[s]")
    old = anomaly_mask(rng, count, config.anomalies.out_of_range_order) & ~future
    ordered_at[old] = np.datetime64(config.start.replace(tzinfo=None), "s") - rng.integers(
        86_400, 300 * 86_400, size=int(old.sum())
    ).astype("timedelta64[s]")
    count_injected(injected, "future_order", future)
    count_injected(injected, "out_of_range_order", old)
    return future | old


def _statuses(
    config: GenerationConfig,
    rng: np.random.Generator,
    age_days: np.ndarray,
    eligible: np.ndarray,
    injected: dict[str, int],
) -> np.ndarray:
    """Lifecycle by age: old orders are delivered (or cancelled/returned), recent ones in
    flight; some typed with stray case and spaces, some eligible ones not a status at all."""
    count = len(age_days)
    final = np.array(["delivered", "cancelled", "returned"], dtype=object)[
        rng.choice(3, size=count, p=[0.9, 0.06, 0.04])
    ]
    in_flight = np.array(["placed", "paid", "shipped"], dtype=object)[np.clip(age_days, 0, 2)]
    status = np.where(
        age_days > 10, final, np.where(rng.random(count) < 0.05, "cancelled", in_flight)
    ).astype(object)
    messy = rng.random(count) < config.anomalies.messy_status
    status[messy] = [
        f" {s.upper()}" if i % 3 == 0 else (f"{s.title()} " if i % 3 == 1 else f"  {s}")
        for i, s in enumerate(status[messy])
    ]
    invalid = anomaly_mask(rng, count, config.anomalies.invalid_status) & eligible
    status[invalid] = np.array(ref.INVALID_STATUSES, dtype=object)[
        rng.integers(0, len(ref.INVALID_STATUSES), size=int(invalid.sum()))
    ]
    count_injected(injected, "invalid_status", invalid)
    return status
