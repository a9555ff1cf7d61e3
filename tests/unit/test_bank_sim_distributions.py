"""Random draws: lognormal delays stay in bounds and match their median and p99."""

from __future__ import annotations

import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels.bank_sim.distributions import (
    TAIL_CAP,
    chance,
    delay_ms,
    pick_one,
    weighted_choice,
)
from channels.bank_sim.profile import Delay


def test_instant_delay_is_zero_and_equal_median_and_p99_is_fixed() -> None:
    rng = random.Random(1)
    assert delay_ms(Delay(0.0, 0.0), rng) == 0.0
    assert {delay_ms(Delay(250.0, 250.0), rng) for _ in range(100)} == {250.0}


@given(
    median_ms=st.floats(min_value=0.001, max_value=1e6),
    spread=st.floats(min_value=1.0, max_value=1e3),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_delay_is_never_negative_nor_beyond_the_tail_cap(
    median_ms: float, spread: float, seed: int
) -> None:
    delay = Delay(median_ms, median_ms * spread)
    rng = random.Random(seed)
    for _ in range(50):
        sample = delay_ms(delay, rng)
        assert 0.0 <= sample <= delay.p99_ms * TAIL_CAP


def test_lognormal_delay_matches_its_median_and_p99() -> None:
    rng = random.Random(42)
    samples = sorted(delay_ms(Delay(300.0, 2_000.0), rng) for _ in range(20_000))
    assert statistics.median(samples) == pytest.approx(300.0, rel=0.05)
    assert samples[int(0.99 * len(samples))] == pytest.approx(2_000.0, rel=0.10)


def test_weighted_choice_follows_the_weights_and_skips_zero() -> None:
    rng = random.Random(3)
    weights = {"succeeded": 0.9, "account_frozen": 0.1, "account_closed": 0.0}
    picks = [weighted_choice(weights, rng) for _ in range(10_000)]
    assert picks.count("account_closed") == 0
    assert 0.08 < picks.count("account_frozen") / len(picks) < 0.12


def test_pick_one_is_none_at_zero_and_always_something_at_one() -> None:
    rng = random.Random(5)
    assert {pick_one({"a": 0.0, "b": 0.0}, rng) for _ in range(1_000)} == {None}
    assert None not in {pick_one({"a": 0.5, "b": 0.5}, rng) for _ in range(1_000)}


def test_chance_bounds() -> None:
    rng = random.Random(9)
    assert not any(chance(0.0, rng) for _ in range(1_000))
    assert all(chance(1.0, rng) for _ in range(1_000))
