"""The standard pictures and summary table of one `LoadResult` (SVG strings, table rows)."""

from __future__ import annotations

from loadtest.generator.result import LoadResult
from loadtest.reports.svg import bar_chart, line_chart

STATUS_CLASS_COLOURS = {"2": "#228833", "3": "#66CCEE", "4": "#CCBB44", "5": "#EE6677"}
NO_RESPONSE_COLOUR = "#AA3377"


def latency_over_time(result: LoadResult) -> str:
    """Percentiles of requests by the second they were *scheduled* in (log scale): a queue
    building up shows as a rising line even while the server completes at a steady pace."""
    rows = [s for s in result.timeline if s.scheduled]
    series = {
        "p50": [(s.t, s.p50_ms) for s in rows],
        "p90": [(s.t, s.p90_ms) for s in rows],
        "p99": [(s.t, s.p99_ms) for s in rows],
        "p99.9": [(s.t, s.p999_ms) for s in rows],
        "max": [(s.t, s.max_ms) for s in rows],
    }
    return line_chart(series, "scheduled second", "latency (ms)", "Latency over time", log_y=True)


def throughput_over_time(result: LoadResult) -> str:
    """Offered (scheduled) against completed per second; the gap is the growing backlog."""
    series = {
        "scheduled": [(s.t, float(s.scheduled)) for s in result.timeline],
        "completed": [(s.t, float(s.completed)) for s in result.timeline],
        "errors": [(s.t, float(s.errors)) for s in result.timeline],
    }
    return line_chart(series, "second", "requests / s", "Throughput: scheduled vs completed")


def status_mix(result: LoadResult) -> str:
    """Responses by HTTP status, plus requests that got no response (by reason)."""
    counts: dict[str, float] = {status: float(n) for status, n in sorted(result.by_status.items())}
    colours = {status: STATUS_CLASS_COLOURS.get(status[:1], "#BBBBBB") for status in counts}
    for error, n in sorted(result.by_error.items()):
        counts[f"no response: {error}"] = float(n)
        colours[f"no response: {error}"] = NO_RESPONSE_COLOUR
    return bar_chart(counts, "Status mix", y_label="requests", colours=colours)


def error_codes(result: LoadResult) -> str:
    """The gateway's error codes (`{"error": {"code": ...}}`) by count."""
    ranked = sorted(result.by_code.items(), key=lambda item: -item[1])
    return bar_chart({code: float(n) for code, n in ranked}, "Error codes", y_label="requests")


def summary_table(result: LoadResult) -> list[list[str]]:
    """Rows for a report table; the first row is the header."""
    t = result.totals
    lat = result.latency_ms
    lag = result.start_lag_ms
    return [
        ["measure", "value"],
        ["workload", str(result.meta.get("workload", ""))],
        ["scheduled / sent", f"{t.scheduled} / {t.sent}"],
        ["completed / no response", f"{t.completed} / {t.errors}"],
        ["late starts (in-flight bound)", str(t.late_start)],
        ["offered rate", f"{t.offered_rate_per_s:.1f} /s"],
        ["achieved rate", f"{t.achieved_rate_per_s:.1f} /s"],
        ["duration", f"{t.duration_s:.2f} s"],
        ["latency p50 / p90", f"{lat.p50_ms:.2f} / {lat.p90_ms:.2f} ms"],
        [
            "latency p99 / p99.9 / max",
            f"{lat.p99_ms:.2f} / {lat.p999_ms:.2f} / {lat.max_ms:.2f} ms",
        ],
        ["start lag p99 / max", f"{lag.p99_ms:.2f} / {lag.max_ms:.2f} ms"],
    ]
