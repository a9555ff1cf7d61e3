"""Load shapes (constant, ramp, spike): when each request of an open-loop run is due.

A shape is a piecewise-linear rate; request k (0, 1, 2, ...) is due at the moment the
integral of the rate reaches k, so arrivals are evenly spaced at the current rate.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

MAX_RATE_PER_S = 1_000_000.0
MAX_DURATION_S = 7 * 86_400.0


@dataclass(frozen=True, slots=True)
class Segment:
    """Rate going linearly from `from_rate_per_s` to `to_rate_per_s` over `duration_s`."""

    duration_s: float
    from_rate_per_s: float
    to_rate_per_s: float

    def count(self) -> float:
        return (self.from_rate_per_s + self.to_rate_per_s) / 2 * self.duration_s


def _check_rate(name: str, rate_per_s: float) -> None:
    if not 0 <= rate_per_s <= MAX_RATE_PER_S:
        raise ValueError(f"{name} must be within 0..{MAX_RATE_PER_S:g} per second")


def _check_duration(name: str, duration_s: float) -> None:
    if not 0 < duration_s <= MAX_DURATION_S:
        raise ValueError(f"{name} must be within (0, {MAX_DURATION_S:g}] seconds")


@dataclass(frozen=True, slots=True)
class Constant:
    rate_per_s: float
    duration_s: float
    kind: Literal["constant"] = "constant"

    def __post_init__(self) -> None:
        _check_rate("rate_per_s", self.rate_per_s)
        _check_duration("duration_s", self.duration_s)

    def segments(self) -> list[Segment]:
        return [Segment(self.duration_s, self.rate_per_s, self.rate_per_s)]


@dataclass(frozen=True, slots=True)
class Ramp:
    from_rate_per_s: float
    to_rate_per_s: float
    duration_s: float
    kind: Literal["ramp"] = "ramp"

    def __post_init__(self) -> None:
        _check_rate("from_rate_per_s", self.from_rate_per_s)
        _check_rate("to_rate_per_s", self.to_rate_per_s)
        _check_duration("duration_s", self.duration_s)

    def segments(self) -> list[Segment]:
        return [Segment(self.duration_s, self.from_rate_per_s, self.to_rate_per_s)]


@dataclass(frozen=True, slots=True)
class Spike:
    """`base_rate_per_s`, but `spike_rate_per_s` in [spike_at_s, spike_at_s + spike_len_s)."""

    base_rate_per_s: float
    spike_rate_per_s: float
    duration_s: float
    spike_at_s: float
    spike_len_s: float
    kind: Literal["spike"] = "spike"

    def __post_init__(self) -> None:
        _check_rate("base_rate_per_s", self.base_rate_per_s)
        _check_rate("spike_rate_per_s", self.spike_rate_per_s)
        _check_duration("duration_s", self.duration_s)
        _check_duration("spike_len_s", self.spike_len_s)
        if self.spike_at_s < 0 or self.spike_at_s + self.spike_len_s > self.duration_s:
            raise ValueError("the spike must lie within the run (0 <= spike_at_s, end <= duration)")

    def segments(self) -> list[Segment]:
        parts = [
            Segment(self.spike_at_s, self.base_rate_per_s, self.base_rate_per_s),
            Segment(self.spike_len_s, self.spike_rate_per_s, self.spike_rate_per_s),
            Segment(
                self.duration_s - self.spike_at_s - self.spike_len_s,
                self.base_rate_per_s,
                self.base_rate_per_s,
            ),
        ]
        return [p for p in parts if p.duration_s > 0]


Shape = Constant | Ramp | Spike


def constant(rate_per_s: float, duration_s: float) -> Constant:
    return Constant(rate_per_s, duration_s)


def ramp(from_rate: float, to_rate: float, duration_s: float) -> Ramp:
    return Ramp(from_rate, to_rate, duration_s)


def spike(
    base_rate: float, spike_rate: float, duration_s: float, spike_at_s: float, spike_len_s: float
) -> Spike:
    return Spike(base_rate, spike_rate, duration_s, spike_at_s, spike_len_s)


def schedule_offsets_s(shape: Shape) -> Iterator[float]:
    """Seconds from the start at which each request is due, in order (lazily: a long run's
    schedule is never held in memory)."""
    start_s = 0.0
    done = 0.0  # requests due before this segment (fractional)
    next_k = 0  # the next request number to place
    for seg in shape.segments():
        if seg.from_rate_per_s == 0 and seg.to_rate_per_s == 0:
            start_s += seg.duration_s
            continue
        slope = (seg.to_rate_per_s - seg.from_rate_per_s) / seg.duration_s
        while True:
            # Solve from*u + slope*u²/2 = need, in the form that stays stable when slope is 0.
            need = next_k - done
            if need <= 0:
                u = 0.0
            else:
                disc = seg.from_rate_per_s**2 + 2 * slope * need
                denom = seg.from_rate_per_s + math.sqrt(disc) if disc >= 0 else 0.0
                if denom <= 0:
                    break
                u = 2 * need / denom
            if u >= seg.duration_s:
                break
            yield start_s + u
            next_k += 1
        start_s += seg.duration_s
        done += seg.count()


def expected_count(shape: Shape) -> int:
    """How many requests the shape schedules (by counting, so it agrees with the schedule)."""
    return sum(1 for _ in schedule_offsets_s(shape))


def duration_s(shape: Shape) -> float:
    return sum(seg.duration_s for seg in shape.segments())


def rate_at_per_s(shape: Shape, t_s: float) -> float:
    start_s = 0.0
    for seg in shape.segments():
        if t_s < start_s + seg.duration_s:
            frac = (t_s - start_s) / seg.duration_s
            return seg.from_rate_per_s + (seg.to_rate_per_s - seg.from_rate_per_s) * frac
        start_s += seg.duration_s
    return 0.0


def shape_to_dict(shape: Shape) -> dict[str, Any]:
    fields = {name: getattr(shape, name) for name in shape.__dataclass_fields__}
    return {"kind": fields.pop("kind"), **fields}


def shape_from_dict(data: dict[str, Any]) -> Shape:
    fields = dict(data)
    kind = fields.pop("kind", None)
    if kind == "constant":
        return Constant(**fields)
    if kind == "ramp":
        return Ramp(**fields)
    if kind == "spike":
        return Spike(**fields)
    raise ValueError(f"unknown shape kind {kind!r} (constant, ramp, spike)")
