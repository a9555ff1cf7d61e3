"""One `LoadResult` from the shards of a run split over processes (or from repeated runs):
counts add up, percentiles come from the merged histograms, never from averaging."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from loadtest.generator.histogram import LatencyHistogram, LatencySummary, merged
from loadtest.generator.result import LoadResult, SecondStats, Totals


def _sum_counts(maps: Sequence[dict[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for m in maps:
        total.update(m)
    return dict(total)


def _upper_bound(rows: list[SecondStats]) -> LatencySummary:
    """Without histograms the best honest figure is the worst shard's."""
    return LatencySummary(
        sum(r.completed for r in rows),
        max((r.p50_ms for r in rows), default=0.0),
        max((r.p90_ms for r in rows), default=0.0),
        max((r.p99_ms for r in rows), default=0.0),
        max((r.p999_ms for r in rows), default=0.0),
        max((r.max_ms for r in rows), default=0.0),
    )


def _second(t: int, rows: list[SecondStats], histogram: LatencyHistogram | None) -> SecondStats:
    s = histogram.summary() if histogram is not None else _upper_bound(rows)
    return SecondStats(
        t=t,
        scheduled=sum(r.scheduled for r in rows),
        sent=sum(r.sent for r in rows),
        completed=sum(r.completed for r in rows),
        errors=sum(r.errors for r in rows),
        p50_ms=s.p50_ms,
        p90_ms=s.p90_ms,
        p99_ms=s.p99_ms,
        p999_ms=s.p999_ms,
        max_ms=s.max_ms,
    )


def _timeline(results: Sequence[LoadResult]) -> list[SecondStats]:
    length = max(len(r.timeline) for r in results)
    rows = []
    for t in range(length):
        present = [r for r in results if t < len(r.timeline)]
        encoded = [r.timeline_histograms[t] for r in present if len(r.timeline_histograms) > t]
        histogram = merged(encoded) if len(encoded) == len(present) else None
        rows.append(_second(t, [r.timeline[t] for r in present], histogram))
    return rows


def merge_results(results: Sequence[LoadResult]) -> LoadResult:
    """Shards share a start time, so their timelines line up second by second. Per-second
    percentiles are exact only when every shard kept its per-second histograms."""
    if not results:
        raise ValueError("nothing to merge")
    latency = merged(r.histogram for r in results)
    lag = merged(r.start_lag_histogram for r in results if r.start_lag_histogram)
    duration_s = max(r.totals.duration_s for r in results)
    completed = sum(r.totals.completed for r in results)
    meta = {k: v for k, v in results[0].meta.items() if k not in ("shard_index", "shard_count")}
    meta["processes"] = len(results)
    if all("connections_opened" in r.meta for r in results):
        meta["connections_opened"] = sum(r.meta["connections_opened"] for r in results)
    notes = sorted({note for r in results for note in r.notes})
    if any(not r.timeline_histograms for r in results) and len(results) > 1:
        notes.append("per-second percentiles are the worst shard's (no per-second histograms)")
    return LoadResult(
        meta=meta,
        totals=Totals(
            scheduled=sum(r.totals.scheduled for r in results),
            sent=sum(r.totals.sent for r in results),
            completed=completed,
            errors=sum(r.totals.errors for r in results),
            late_start=sum(r.totals.late_start for r in results),
            achieved_rate_per_s=round(completed / duration_s, 2) if duration_s else 0.0,
            offered_rate_per_s=round(sum(r.totals.offered_rate_per_s for r in results), 2),
            duration_s=duration_s,
            cpu_s=round(sum(r.totals.cpu_s for r in results), 3),  # each shard its own process
        ),
        latency_ms=latency.summary(),
        start_lag_ms=lag.summary(),
        by_status=_sum_counts([r.by_status for r in results]),
        by_code=_sum_counts([r.by_code for r in results]),
        by_error=_sum_counts([r.by_error for r in results]),
        by_kind=_sum_counts([r.by_kind for r in results]),
        timeline=_timeline(results),
        histogram=latency.encode(),
        histogram_clamped=sum(r.histogram_clamped for r in results),
        notes=notes,
        start_lag_histogram=lag.encode(),
    )
