"""What an open-loop run measured (`LoadResult`) and what it reports while running (`Snapshot`).

Latency is completion minus *scheduled* send time, for every request that got an HTTP
response (any status). `errors` are requests that got none (timeout, refused, reset); they
are counted in `by_error` and kept out of the latency histogram.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from loadtest.generator.histogram import LatencyHistogram, LatencySummary


@dataclass(frozen=True, slots=True)
class Totals:
    scheduled: int
    sent: int
    completed: int
    errors: int
    late_start: int  # started only after waiting for a free in-flight slot
    achieved_rate_per_s: float  # completed ÷ duration_s
    offered_rate_per_s: float  # scheduled ÷ the shape's duration
    duration_s: float  # start to last completion (at least the shape's duration)
    # CPU time (user + sys) of the generator's process(es) over the run; 0.0 in results from
    # before it was measured. A run in the caller's process counts everything else it does too.
    cpu_s: float = 0.0

    def cpu_ms_per_1000_requests(self) -> float:
        """The generator's own cost: CPU ms per 1,000 requests sent."""
        return self.cpu_s * 1e6 / self.sent if self.sent else 0.0


@dataclass(frozen=True, slots=True)
class SecondStats:
    """One second of the run. `scheduled` and the latency percentiles belong to requests
    *scheduled* in this second (so queueing shows as rising latency); `sent`, `completed` and
    `errors` count what *happened* in this second (so throughput shows the server's pace)."""

    t: int
    scheduled: int
    sent: int
    completed: int
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float


@dataclass(frozen=True, slots=True)
class LoadResult:
    meta: dict[str, Any]  # workload, shape, run_id, seed, merchants (a count), base_url
    totals: Totals
    latency_ms: LatencySummary
    start_lag_ms: LatencySummary  # actual send minus scheduled time: the generator's own lag
    by_status: dict[str, int]
    by_code: dict[str, int]
    by_error: dict[str, int]
    by_kind: dict[str, int]
    timeline: list[SecondStats]
    histogram: str  # HdrHistogram of latency in µs, compressed + base64 (see histogram.py)
    histogram_clamped: int = 0  # latencies above 60 s, recorded as 60 s
    start_lag_histogram: str = ""  # the same for start lag
    # Per timeline second, only from one shard of a multi-process run (so the parent can merge
    # per-second percentiles exactly); empty in a finished result.
    timeline_histograms: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def latency_histogram(self) -> LatencyHistogram:
        return LatencyHistogram.decode(self.histogram)

    def to_dict(self) -> dict[str, Any]:
        return {
            "meta": dict(self.meta),
            "totals": asdict(self.totals),
            "latency_ms": self.latency_ms.to_dict(),
            "start_lag_ms": self.start_lag_ms.to_dict(),
            "by_status": dict(self.by_status),
            "by_code": dict(self.by_code),
            "by_error": dict(self.by_error),
            "by_kind": dict(self.by_kind),
            "timeline": [asdict(s) for s in self.timeline],
            "histogram": self.histogram,
            "histogram_clamped": self.histogram_clamped,
            "start_lag_histogram": self.start_lag_histogram,
            "timeline_histograms": list(self.timeline_histograms),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadResult:
        return cls(
            meta=dict(data.get("meta", {})),
            totals=Totals(**data["totals"]),
            latency_ms=_summary(data["latency_ms"]),
            start_lag_ms=_summary(data.get("start_lag_ms", {})),
            by_status=dict(data.get("by_status", {})),
            by_code=dict(data.get("by_code", {})),
            by_error=dict(data.get("by_error", {})),
            by_kind=dict(data.get("by_kind", {})),
            timeline=[SecondStats(**s) for s in data.get("timeline", [])],
            histogram=str(data["histogram"]),
            histogram_clamped=int(data.get("histogram_clamped", 0)),
            start_lag_histogram=str(data.get("start_lag_histogram", "")),
            timeline_histograms=list(data.get("timeline_histograms", [])),
            notes=list(data.get("notes", [])),
        )


def _summary(data: dict[str, float]) -> LatencySummary:
    return LatencySummary(
        int(data.get("count", 0)),
        float(data.get("p50", 0.0)),
        float(data.get("p90", 0.0)),
        float(data.get("p99", 0.0)),
        float(data.get("p999", 0.0)),
        float(data.get("max", 0.0)),
    )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Progress so far (cumulative counts) and over the last interval."""

    elapsed_s: float
    scheduled: int
    sent: int
    completed: int
    errors: int
    in_flight: int
    late_start: int
    interval_rate_per_s: float  # completions per second over the last interval
    interval_p99_ms: float  # p99 latency of the last interval's completions

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        return (
            f"t={self.elapsed_s:.1f}s scheduled={self.scheduled} sent={self.sent} "
            f"completed={self.completed} errors={self.errors} in_flight={self.in_flight} "
            f"late_start={self.late_start} rate={self.interval_rate_per_s:.0f}/s "
            f"p99={self.interval_p99_ms:.1f}ms"
        )
