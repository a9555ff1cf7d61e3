"""Latency histograms: percentiles within HdrHistogram's precision, mergeable, and a run's
result survives JSON; the recorder counts by scheduled second and by wall second."""

from __future__ import annotations

import orjson
import pytest

from loadtest.generator.histogram import HIGHEST_US, LatencyHistogram, merged
from loadtest.generator.merge import merge_results
from loadtest.generator.recorder import Recorder
from loadtest.generator.result import LoadResult
from loadtest.generator.shapes import constant
from loadtest.generator.spec import LoadSpec, MerchantCred


def uniform_1_to_1000_ms() -> LatencyHistogram:
    hist = LatencyHistogram()
    for ms in range(1, 1001):
        hist.record_us(ms * 1000)
    return hist


def test_percentiles_of_a_known_distribution() -> None:
    s = uniform_1_to_1000_ms().summary()
    assert s.count == 1000
    # 3 significant digits: values are exact to within 0.1%.
    assert s.p50_ms == pytest.approx(500, rel=1e-3)
    assert s.p90_ms == pytest.approx(900, rel=1e-3)
    assert s.p99_ms == pytest.approx(990, rel=1e-3)
    assert s.p999_ms == pytest.approx(999, rel=1e-3)
    assert s.max_ms == pytest.approx(1000, rel=1e-3)


def test_empty_histogram_reports_zeros() -> None:
    s = LatencyHistogram().summary()
    assert (s.count, s.p50_ms, s.max_ms) == (0, 0.0, 0.0)


def test_values_beyond_the_range_are_clamped_and_counted() -> None:
    hist = LatencyHistogram()
    hist.record_s(120.0)
    hist.record_us(0)
    assert hist.count == 2
    assert hist.clamped == 1
    assert hist.max_ms() == pytest.approx(HIGHEST_US / 1000, rel=1e-3)


def test_encoded_histograms_merge_into_the_whole() -> None:
    low, high = LatencyHistogram(), LatencyHistogram()
    for ms in range(1, 501):
        low.record_us(ms * 1000)
    for ms in range(501, 1001):
        high.record_us(ms * 1000)
    whole = merged([low.encode(), high.encode()])
    assert whole.summary() == uniform_1_to_1000_ms().summary()


def recorded_run(offsets_s: list[float], latency_s: float, start_s: float = 100.0) -> Recorder:
    rec = Recorder(start_s, keep_second_histograms=True)
    for offset in offsets_s:
        rec.on_scheduled(offset)
        rec.on_sent(offset, start_s + offset, "noop")
        rec.on_response(offset, start_s + offset + latency_s, 200, None)
    return rec


def test_recorder_buckets_latency_by_scheduled_second_and_counts_by_wall_second() -> None:
    rec = recorded_run([0.0, 0.5, 1.0, 1.5], latency_s=1.2)
    result = rec.result({"workload": "noop"}, shape_duration_s=2.0)
    first, second, third = result.timeline[:3]
    assert (first.scheduled, second.scheduled, third.scheduled) == (2, 2, 0)
    # Completions at 1.2, 1.7, 2.2 and 2.7 s after the start: counted where they happened.
    assert (first.completed, second.completed, third.completed) == (0, 2, 2)
    assert first.p50_ms == pytest.approx(1200, rel=1e-3)
    assert result.totals.duration_s == pytest.approx(2.7)
    assert result.totals.achieved_rate_per_s == pytest.approx(4 / 2.7, rel=1e-3)


def test_errors_count_as_done_but_not_as_latency() -> None:
    rec = Recorder(0.0)
    rec.on_scheduled(0.0)
    rec.on_error(0.0, 5.0, "timeout")
    result = rec.result({}, shape_duration_s=1.0)
    assert (result.totals.errors, result.latency_ms.count) == (1, 0)
    assert result.by_error == {"timeout": 1}
    assert result.timeline[5].errors == 1


def test_result_round_trips_through_json() -> None:
    rec = recorded_run([0.0, 0.25, 0.5], latency_s=0.02)
    rec.on_scheduled(0.75)
    rec.on_response(0.75, 100.8, 422, "insufficient_funds")
    result = rec.result({"workload": "payouts"}, shape_duration_s=1.0)
    again = LoadResult.from_dict(orjson.loads(orjson.dumps(result.to_dict())))
    assert again == result
    assert again.to_dict()["latency_ms"].keys() >= {"p50", "p90", "p99", "p999", "max"}
    assert again.by_code == {"insufficient_funds": 1}
    assert again.latency_histogram().count == 4


def test_shard_results_merge_exactly() -> None:
    a = recorded_run([0.0, 0.5], latency_s=0.010).result({"shard_index": 0}, 1.0)
    b = recorded_run([0.25, 0.75], latency_s=0.030).result({"shard_index": 1}, 1.0)
    both = merge_results([a, b])
    assert both.totals.scheduled == 4
    assert both.totals.offered_rate_per_s == 4.0
    assert both.timeline[0].scheduled == 4
    assert both.timeline[0].p50_ms == pytest.approx(10, rel=1e-2)
    assert both.timeline[0].max_ms == pytest.approx(30, rel=1e-2)
    assert both.latency_ms.count == 4
    assert "shard_index" not in both.meta


def test_generator_cpu_and_connections_add_up_across_shards() -> None:
    a = recorded_run([0.0], latency_s=0.01).result({"connections_opened": 2}, 1.0, cpu_s=0.25)
    b = recorded_run([0.5], latency_s=0.01).result({"connections_opened": 3}, 1.0, cpu_s=0.5)
    both = merge_results([a, b])
    assert both.totals.cpu_s == pytest.approx(0.75)
    assert both.totals.cpu_ms_per_1000_requests() == pytest.approx(375_000)
    assert both.meta["connections_opened"] == 5


def test_a_result_saved_before_cpu_was_measured_still_loads() -> None:
    saved = recorded_run([0.0], latency_s=0.01).result({}, 1.0).to_dict()
    del saved["totals"]["cpu_s"]
    assert LoadResult.from_dict(saved).totals.cpu_s == 0.0


def test_load_spec_round_trips_through_json_and_checks_its_limits() -> None:
    spec = LoadSpec(
        base_url="http://127.0.0.1:8080",
        merchants=(MerchantCred("m_1", "s1"), MerchantCred("m_2", "s2", weight=2.0)),
        workload="mixed",
        shape=constant(100, 10),
        seed=5,
        run_id="steady-1",
        merchant_pick="weighted",
    )
    assert LoadSpec.from_dict(orjson.loads(orjson.dumps(spec.to_dict()))) == spec
    with pytest.raises(ValueError, match="run_id"):
        LoadSpec.from_dict({**spec.to_dict(), "run_id": "has spaces"})
    with pytest.raises(ValueError, match="max_in_flight"):
        LoadSpec.from_dict({**spec.to_dict(), "max_in_flight": 0})
    with pytest.raises(ValueError, match="merchant"):
        LoadSpec.from_dict({**spec.to_dict(), "merchants": []})
