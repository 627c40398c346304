"""Column builders the platform tables share: weighted picks, anomaly masks, instants,
places, and the polars frame they are assembled into."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from generators import reference as ref
from generators.draws import anomaly_count

MONEY = pl.Decimal(14, 2)
PERCENT = pl.Decimal(5, 2)

_PROVINCE_WEIGHTS = dict(zip(ref.AR_PROVINCES, ref.AR_PROVINCE_WEIGHTS, strict=True))


def pick_weighted(rng: np.random.Generator, weights: Mapping[str, float], size: int) -> np.ndarray:
    """``size`` keys of ``weights`` drawn with their (relative) weights."""
    keys = np.array(list(weights), dtype=object)
    p = np.array(list(weights.values()), dtype=float)
    return keys[rng.choice(len(keys), size=size, p=p / p.sum())]


def anomaly_mask(rng: np.random.Generator, size: int, rate: float) -> np.ndarray:
    """Exactly round(size*rate) (at least one when rate > 0) randomly placed True values."""
    mask = np.zeros(size, dtype=bool)
    mask[rng.choice(size, size=min(size, anomaly_count(rate, size)), replace=False)] = True
    return mask


def count_injected(injected: dict[str, int], kind: str, mask: np.ndarray) -> None:
    """Add a batch's injected anomalies (orders may come in several batches)."""
    injected[kind] = injected.get(kind, 0) + int(mask.sum())


def point_past(
    rng: np.random.Generator, ids: np.ndarray, known: int, rate: float, eligible: np.ndarray
) -> np.ndarray:
    """Point some eligible ``ids`` (in place) at rows past the ``known`` ones; says which.

    Orders of unknown companies or customers, lines of unknown products: each id lands
    1,000-9,000 past the last known one.
    """
    dangling = anomaly_mask(rng, len(ids), rate) & eligible
    ids[dangling] = known + rng.integers(1_000, 9_000, size=int(dangling.sum()))
    return dangling


def build_frame(
    columns: Mapping[str, Any], schema_overrides: Mapping[str, Any] | None = None
) -> pl.DataFrame:
    """A frame from numpy columns; object arrays go in as lists (polars cannot cast Object)."""
    data = {
        name: values.tolist()
        if isinstance(values, np.ndarray) and values.dtype == object
        else values
        for name, values in columns.items()
    }
    return pl.DataFrame(data, schema_overrides=schema_overrides)


def repeats(values: np.ndarray) -> np.ndarray:
    """True where a value already occurred earlier in ``values``."""
    _, first = np.unique(values, return_index=True)
    repeat = np.ones(len(values), dtype=bool)
    repeat[first] = False
    return repeat


def timestamps(
    rng: np.random.Generator, start: dt.datetime, end: dt.datetime, size: int
) -> np.ndarray:
    """Uniform instants in [start, end) at second resolution, as naive UTC datetime64."""
    span = int((end - start).total_seconds())
    offsets = rng.integers(0, max(span, 1), size=size).astype("timedelta64[s]")
    return (np.datetime64(start.replace(tzinfo=None), "s") + offsets).astype("datetime64[us]")


def places(rng: np.random.Generator, countries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Province and city per country code (real AR provinces, a capital elsewhere)."""
    provinces = pick_weighted(rng, _PROVINCE_WEIGHTS, len(countries))
    pick = rng.random(len(countries))
    cities = np.array(
        [
            ref.AR_PROVINCES[name][int(u * len(ref.AR_PROVINCES[name]))]
            for name, u in zip(provinces, pick, strict=True)
        ],
        dtype=object,
    )
    for code, (foreign_province, foreign_city) in ref.FOREIGN_CITIES.items():
        here = countries == code
        provinces[here] = foreign_province
        cities[here] = foreign_city
    # a country without a listed capital keeps no province/city rather than an AR one
    unknown = (countries != "AR") & ~np.isin(countries, list(ref.FOREIGN_CITIES))
    provinces[unknown] = None
    cities[unknown] = None
    return provinces, cities
