"""Load shapes schedule the right number of requests at the right rate, where asked."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadtest.generator.shapes import (
    constant,
    duration_s,
    expected_count,
    ramp,
    rate_at_per_s,
    schedule_offsets_s,
    shape_from_dict,
    shape_to_dict,
    spike,
)


def test_constant_sends_rate_times_duration_evenly_spaced() -> None:
    offsets = list(schedule_offsets_s(constant(10, 2)))
    assert len(offsets) == 20
    assert offsets[0] == 0.0
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    assert all(gap == pytest.approx(0.1) for gap in gaps)
    assert offsets[-1] < 2.0


def test_constant_counts_at_high_rate() -> None:
    assert expected_count(constant(2000, 3)) == 6000


def test_ramp_rate_grows_linearly_and_counts_the_area() -> None:
    shape = ramp(0, 100, 10)
    offsets = list(schedule_offsets_s(shape))
    assert len(offsets) == 500  # area of the triangle
    first_second = sum(1 for t in offsets if t < 1)
    last_second = sum(1 for t in offsets if t >= 9)
    assert first_second == pytest.approx(5, abs=1)
    assert last_second == pytest.approx(95, abs=1)
    assert rate_at_per_s(shape, 5) == pytest.approx(50)


def test_ramp_down_mirrors_ramp_up() -> None:
    offsets = list(schedule_offsets_s(ramp(100, 0, 10)))
    assert len(offsets) == 500
    assert sum(1 for t in offsets if t < 1) == pytest.approx(95, abs=1)


def test_spike_is_placed_where_asked() -> None:
    shape = spike(10, 100, 5, spike_at_s=2, spike_len_s=1)
    offsets = list(schedule_offsets_s(shape))
    per_second = [sum(1 for t in offsets if s <= t < s + 1) for s in range(5)]
    assert per_second == [10, 10, 100, 10, 10]
    assert duration_s(shape) == 5
    assert rate_at_per_s(shape, 2.5) == 100
    assert rate_at_per_s(shape, 3.5) == 10


def test_spike_from_zero_base_starts_at_the_spike() -> None:
    offsets = list(schedule_offsets_s(spike(0, 10, 5, 2, 1)))
    assert len(offsets) == 10
    assert offsets[0] == pytest.approx(2.0)
    assert offsets[-1] < 3.0


def test_zero_rate_sends_nothing() -> None:
    assert expected_count(constant(0, 10)) == 0
    assert expected_count(ramp(0, 0, 10)) == 0


@pytest.mark.parametrize(
    "make",
    [
        lambda: constant(-1, 1),
        lambda: constant(10, 0),
        lambda: ramp(10, 2_000_000, 1),
        lambda: spike(10, 100, 5, 4.5, 1),
        lambda: spike(10, 100, 5, -1, 1),
    ],
)
def test_impossible_shapes_are_refused(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


@pytest.mark.parametrize(
    "shape", [constant(25, 2), ramp(1, 9, 3.5), spike(10, 100, 5, spike_at_s=2, spike_len_s=1)]
)
def test_shapes_round_trip_through_json_dicts(shape: object) -> None:
    data = shape_to_dict(shape)  # type: ignore[arg-type]
    assert data["kind"] in ("constant", "ramp", "spike")
    assert shape_from_dict(data) == shape


def test_unknown_shape_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown shape"):
        shape_from_dict({"kind": "sine", "rate_per_s": 1})


rates = st.floats(min_value=0, max_value=500, allow_nan=False)
lengths = st.floats(min_value=0.05, max_value=5, allow_nan=False)


@given(rates, rates, lengths)
def test_ramp_schedule_is_ordered_in_range_and_matches_its_area(
    low: float, high: float, length_s: float
) -> None:
    offsets = list(schedule_offsets_s(ramp(low, high, length_s)))
    assert offsets == sorted(offsets)
    assert len(set(offsets)) == len(offsets)
    assert all(0 <= t < length_s for t in offsets)
    assert abs(len(offsets) - (low + high) / 2 * length_s) <= 1.0001


@given(rates, rates, lengths, st.floats(0, 1), st.floats(0.05, 1))
def test_spike_schedule_never_repeats_or_goes_backwards(
    base: float, peak: float, length_s: float, at_frac: float, len_s: float
) -> None:
    shape = spike(base, peak, length_s + len_s, at_frac * length_s, len_s)
    offsets = list(schedule_offsets_s(shape))
    assert offsets == sorted(offsets)
    assert len(set(offsets)) == len(offsets)
    expected = base * length_s + peak * len_s
    assert abs(len(offsets) - expected) <= 2.0001
