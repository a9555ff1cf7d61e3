"""Counts and latencies of one open-loop run, per second and overall; builds the `LoadResult`.

Times are `time.monotonic()` seconds; a request is identified by its scheduled offset from
the run's start, which is what its latency and its timeline second are measured from.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from loadtest.generator.histogram import LatencyHistogram, LatencySummary
from loadtest.generator.result import LoadResult, SecondStats, Snapshot, Totals

NO_SCHEDULE_YET = -1


@dataclass(slots=True)
class _Bucket:
    """Requests scheduled in one second: their latencies, summarised and freed once the
    last of them is done (a per-second histogram is ~140 KB; a long run has many)."""

    scheduled: int = 0
    done: int = 0
    histogram: LatencyHistogram | None = None
    summary: LatencySummary | None = None
    encoded: str = ""

    def close(self, keep_encoded: bool) -> None:
        if self.summary is None:
            hist = self.histogram or LatencyHistogram()
            self.summary = hist.summary()
            if keep_encoded:
                self.encoded = hist.encode()
            self.histogram = None


class Recorder:
    def __init__(self, start_s: float, *, keep_second_histograms: bool = False) -> None:
        self.start_s = start_s
        self.keep_second_histograms = keep_second_histograms
        self.overall = LatencyHistogram()
        self.start_lag = LatencyHistogram()
        self._interval = LatencyHistogram()
        self._interval_since_s = start_s
        self._buckets: dict[int, _Bucket] = {}
        self._scheduling = NO_SCHEDULE_YET  # the second being scheduled; earlier ones are full
        self.sent_at: Counter[int] = Counter()
        self.completed_at: Counter[int] = Counter()
        self.errors_at: Counter[int] = Counter()
        self.by_status: Counter[str] = Counter()
        self.by_code: Counter[str] = Counter()
        self.by_error: Counter[str] = Counter()
        self.by_kind: Counter[str] = Counter()
        self.scheduled = 0
        self.sent = 0
        self.completed = 0
        self.errors = 0
        self.late_start = 0
        self.last_done_s = start_s

    def _second(self, at_s: float) -> int:
        return int(at_s - self.start_s)

    def on_scheduled(self, offset_s: float) -> None:
        second = int(offset_s)
        if second != self._scheduling:
            self._scheduling = second
            for earlier, bucket in self._buckets.items():
                if earlier < second and bucket.done == bucket.scheduled:
                    bucket.close(self.keep_second_histograms)
        self._buckets.setdefault(second, _Bucket()).scheduled += 1
        self.scheduled += 1

    def on_late_start(self) -> None:
        self.late_start += 1

    def on_sent(self, offset_s: float, now_s: float, kind: str) -> None:
        self.sent += 1
        self.sent_at[self._second(now_s)] += 1
        self.by_kind[kind] += 1
        self.start_lag.record_s(now_s - self.start_s - offset_s)

    def on_response(self, offset_s: float, now_s: float, status: int, code: str | None) -> None:
        latency_s = now_s - self.start_s - offset_s
        self.completed += 1
        self.completed_at[self._second(now_s)] += 1
        self.by_status[str(status)] += 1
        if code is not None:
            self.by_code[code] += 1
        self.overall.record_s(latency_s)
        self._interval.record_s(latency_s)
        bucket = self._buckets[int(offset_s)]
        if bucket.histogram is None:
            bucket.histogram = LatencyHistogram()
        bucket.histogram.record_s(latency_s)
        self._done(int(offset_s), now_s)

    def on_error(self, offset_s: float, now_s: float, error: str) -> None:
        self.errors += 1
        self.errors_at[self._second(now_s)] += 1
        self.by_error[error] += 1
        self._done(int(offset_s), now_s)

    def _done(self, second: int, now_s: float) -> None:
        bucket = self._buckets[second]
        bucket.done += 1
        self.last_done_s = max(self.last_done_s, now_s)
        if second < self._scheduling and bucket.done == bucket.scheduled:
            bucket.close(self.keep_second_histograms)

    def snapshot(self, now_s: float, in_flight: int) -> Snapshot:
        """Progress so far; starts a new interval."""
        interval_s = max(now_s - self._interval_since_s, 1e-9)
        snap = Snapshot(
            elapsed_s=round(now_s - self.start_s, 3),
            scheduled=self.scheduled,
            sent=self.sent,
            completed=self.completed,
            errors=self.errors,
            in_flight=in_flight,
            late_start=self.late_start,
            interval_rate_per_s=round(self._interval.count / interval_s, 1),
            interval_p99_ms=self._interval.percentile_ms(99.0),
        )
        self._interval = LatencyHistogram()
        self._interval_since_s = now_s
        return snap

    def _closed_buckets(self) -> list[_Bucket]:
        seconds = [*self._buckets, *self.sent_at, *self.completed_at, *self.errors_at]
        buckets = [self._buckets.get(t, _Bucket()) for t in range(max(seconds, default=-1) + 1)]
        for bucket in buckets:
            bucket.close(self.keep_second_histograms)
        return buckets

    def timeline(self) -> list[SecondStats]:
        rows = []
        for t, bucket in enumerate(self._closed_buckets()):
            s = bucket.summary
            assert s is not None
            rows.append(
                SecondStats(
                    t=t,
                    scheduled=bucket.scheduled,
                    sent=self.sent_at[t],
                    completed=self.completed_at[t],
                    errors=self.errors_at[t],
                    p50_ms=s.p50_ms,
                    p90_ms=s.p90_ms,
                    p99_ms=s.p99_ms,
                    p999_ms=s.p999_ms,
                    max_ms=s.max_ms,
                )
            )
        return rows

    def result(
        self, meta: dict[str, Any], shape_duration_s: float, cpu_s: float = 0.0
    ) -> LoadResult:
        """The run's result; call once every request is done. `cpu_s`: what the run cost."""
        assert self.completed + self.errors == self.scheduled, "requests still in flight"
        duration_s = max(shape_duration_s, self.last_done_s - self.start_s)
        notes = []
        if self.overall.clamped:
            notes.append(f"{self.overall.clamped} latencies above 60 s were recorded as 60 s")
        return LoadResult(
            meta=meta,
            totals=Totals(
                scheduled=self.scheduled,
                sent=self.sent,
                completed=self.completed,
                errors=self.errors,
                late_start=self.late_start,
                achieved_rate_per_s=round(self.completed / duration_s, 2),
                offered_rate_per_s=round(self.scheduled / shape_duration_s, 2),
                duration_s=round(duration_s, 3),
                cpu_s=round(cpu_s, 3),
            ),
            latency_ms=self.overall.summary(),
            start_lag_ms=self.start_lag.summary(),
            by_status=dict(self.by_status),
            by_code=dict(self.by_code),
            by_error=dict(self.by_error),
            by_kind=dict(self.by_kind),
            timeline=self.timeline(),
            histogram=self.overall.encode(),
            histogram_clamped=self.overall.clamped,
            notes=notes,
            start_lag_histogram=self.start_lag.encode(),
            timeline_histograms=(
                [b.encoded for b in self._closed_buckets()] if self.keep_second_histograms else []
            ),
        )
