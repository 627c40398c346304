"""The simulator's random streams: each part of the plan draws from its own stream, so
changing one part does not reshuffle the others."""

from __future__ import annotations

import numpy as np

from generators.config import GenerationConfig

_SALT = 0x3EB1065  # keeps these random streams apart from the other generators' for one seed

(
    USERS_STREAM,
    ADDRESSES_STREAM,
    ORDERS_STREAM,
    BROWSE_STREAM,
    PRODUCTS_STREAM,
    POOLS_STREAM,
    MONTH_STREAM,
) = range(1, 8)


def random_stream(config: GenerationConfig, stream: int, *more: int) -> np.random.Generator:
    """The generator of ``stream`` (one of the ``*_STREAM`` ids), sub-stream ``more``."""
    return np.random.default_rng([config.seed, _SALT, stream, *more])
