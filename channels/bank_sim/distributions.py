"""Random draws for the simulator: lognormal delays, weighted outcomes, coin flips.

Every draw takes the bank's own `random.Random`, so a seeded run repeats itself.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Final, TypeVar

from channels.bank_sim.profile import Delay

Z_99: Final = 2.3263478740408408  # standard normal quantile at 0.99
TAIL_CAP: Final = 4.0  # no delay exceeds 4 x its p99: a bound on every timer

K = TypeVar("K", bound=str)


def delay_ms(delay: Delay, rng: random.Random) -> float:
    """One draw in milliseconds: 0 when instant, the median when p99 == median."""
    if delay.median_ms <= 0:
        return 0.0
    if delay.p99_ms <= delay.median_ms:
        return delay.median_ms
    sigma = math.log(delay.p99_ms / delay.median_ms) / Z_99
    sample = rng.lognormvariate(math.log(delay.median_ms), sigma)
    return min(sample, delay.p99_ms * TAIL_CAP)


def chance(probability: float, rng: random.Random) -> bool:
    # Always draw, so the number of draws per payout does not depend on the profile.
    return rng.random() < probability


def weighted_choice(weights: Mapping[str, float], rng: random.Random) -> str:
    total = sum(weights.values())
    assert total > 0, "weights must sum to a positive number"
    point = rng.random() * total
    chosen = ""
    for key, weight in weights.items():
        if weight <= 0:
            continue
        chosen = key
        point -= weight
        if point < 0:
            break
    return chosen


def pick_one(probabilities: Mapping[K, float], rng: random.Random) -> K | None:
    """At most one of several exclusive events (probabilities summing to <= 1), or None."""
    point = rng.random()
    for key, probability in probabilities.items():
        if point < probability:
            return key
        point -= probability
    return None
