"""Latency histogram: a typed face on HdrHistogram (µs, 1 µs..60 s, 3 significant digits)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

LOWEST_US = 1
HIGHEST_US = 60_000_000
SIGNIFICANT_DIGITS = 3
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Percentiles in milliseconds (0 when nothing was recorded)."""

    count: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float

    def to_dict(self) -> dict[str, float]:
        return {
            "p50": self.p50_ms,
            "p90": self.p90_ms,
            "p99": self.p99_ms,
            "p999": self.p999_ms,
            "max": self.max_ms,
            "count": self.count,
        }


def _ms(value_us: int) -> float:
    return round(value_us / 1000, 3)


class LatencyHistogram:
    def __init__(self, hdr: Any = None) -> None:
        self._hdr: Any = hdr or HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
        # Values above the range are clamped to it; remember how many so a report can say so.
        self.clamped = 0

    def record_us(self, value_us: int) -> None:
        if value_us > HIGHEST_US:
            self.clamped += 1
            value_us = HIGHEST_US
        self._hdr.record_value(max(LOWEST_US, value_us))

    def record_s(self, value_s: float) -> None:
        self.record_us(int(value_s * 1_000_000))

    @property
    def count(self) -> int:
        return int(self._hdr.get_total_count())

    def percentile_ms(self, percentile: float) -> float:
        return _ms(int(self._hdr.get_value_at_percentile(percentile))) if self.count else 0.0

    def max_ms(self) -> float:
        return _ms(int(self._hdr.get_max_value())) if self.count else 0.0

    def summary(self) -> LatencySummary:
        if not self.count:
            return LatencySummary(0, 0.0, 0.0, 0.0, 0.0, 0.0)
        values = self._hdr.get_percentile_to_value_dict(list(PERCENTILES.values()))
        p = [_ms(int(values[q])) for q in PERCENTILES.values()]
        return LatencySummary(self.count, p[0], p[1], p[2], p[3], self.max_ms())

    def add(self, other: LatencyHistogram) -> None:
        self._hdr.add(other._hdr)
        self.clamped += other.clamped

    def encode(self) -> str:
        """Compressed, base64 (HdrHistogram's standard V2 encoding; other tools can read it)."""
        encoded: bytes = self._hdr.encode()
        return encoded.decode("ascii")

    @classmethod
    def decode(cls, encoded: str) -> LatencyHistogram:
        return cls(HdrHistogram.decode(encoded.encode("ascii")))


def merged(encoded: Iterable[str]) -> LatencyHistogram:
    """One histogram from several runs' encoded histograms (e.g. a child process per core)."""
    total = LatencyHistogram()
    for item in encoded:
        total.add(LatencyHistogram.decode(item))
    return total
