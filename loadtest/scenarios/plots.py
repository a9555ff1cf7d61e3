"""A scenario report's plots over simulated time (SPEC 12): exposure, throughput and latency,
accept -> final, payout status mix, channel health and breaker state, backlog, notification
lag. x is the simulated clock
(`simtime.ClockMap`); a clock jump shows as a gap in the lines."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from loadtest.generator.result import LoadResult
from loadtest.reports.svg import line_chart, state_strips
from loadtest.scenarios.simtime import ClockMap

BREAKER_COLOURS = {"closed": "#228833", "half_open": "#CCBB44", "open": "#EE6677",
                   "no answer": "#BBBBBB"}  # fmt: skip
TARGET_BUCKETS = 60  # points per line for what is bucketed by acceptance time
Points = Sequence[tuple[float, float]]


def sim_chart(
    cm: ClockMap, series: Mapping[str, Iterable[tuple[float, float]]], y_label: str,
    title: str, log_y: bool = False,
) -> str:  # fmt: skip
    """A line chart of (wall s, y) series over the simulated clock."""
    mapped = {name: cm.series(points) for name, points in series.items()}
    return line_chart(mapped, cm.x_label(), y_label, title, log_y,
                      x_ticks=cm.ticks, x_format=cm.label)  # fmt: skip


def _column(rows: Sequence[dict[str, Any]], key: str, scale: float = 1.0) -> Points:
    return [(float(r["wall"]), r[key] / scale) for r in rows]


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _buckets(
    times: Sequence[tuple[float, float | None, str]], start: float, end: float
) -> tuple[float, dict[int, list[tuple[float, float | None, str]]]]:
    width = max(1.0, round((end - start) / TARGET_BUCKETS))
    out: dict[int, list[tuple[float, float | None, str]]] = defaultdict(list)
    for item in times:
        out[int((item[0] - start) // width)].append(item)
    return width, out


def scenario_plots(
    cm: ClockMap, rows: Sequence[dict[str, Any]], load: LoadResult, load_start_wall: float,
    times: Sequence[tuple[float, float | None, str]], lag: Points,
) -> list[str]:  # fmt: skip
    """`rows`: the watch's samples; `times`: (accepted, first final, status) per payout;
    `lag`: (wall s, ms) notification lag p99 by second."""
    plots = [
        sim_chart(cm, {"advance used": _column(rows, "advance_used", 100),
                       "pending_in": _column(rows, "pending_in", 100),
                       "uncovered": _column(rows, "uncovered", 100),
                       "fronted for payers (公司垫付)": _column(rows, "collections_fronted", 100)},
                  "CNY", "Advance exposure (垫资), and what it fronted for payers"),
    ]  # fmt: skip
    at = [(load_start_wall + s.t, s) for s in load.timeline]
    plots.append(sim_chart(cm, {
        "scheduled": [(w, float(s.scheduled)) for w, s in at],
        "completed": [(w, float(s.completed)) for w, s in at],
        "errors": [(w, float(s.errors)) for w, s in at],
    }, "requests per wall second", "Throughput: scheduled vs completed"))  # fmt: skip
    scheduled = [(w, s) for w, s in at if s.scheduled]
    plots.append(sim_chart(cm, {
        "p50": [(w, s.p50_ms) for w, s in scheduled],
        "p99": [(w, s.p99_ms) for w, s in scheduled],
        "max": [(w, s.max_ms) for w, s in scheduled],
    }, "request latency (ms, wall)", "Request latency by scheduled time", log_y=True))  # fmt: skip
    if times:
        start = min(t[0] for t in times)
        end = max(t[0] for t in times)
        width, buckets = _buckets(times, start, end)
        final: dict[str, list[tuple[float, float]]] = {"p50": [], "p99": []}
        status: dict[str, list[tuple[float, float]]] = defaultdict(list)
        names = sorted({t[2] for t in times})
        for k in sorted(buckets):
            items = buckets[k]
            wall = start + (k + 0.5) * width
            took = [cm.ran_s(a, f) for a, f, _ in items if f is not None]
            if took:
                final["p50"].append((wall, max(_percentile(took, 0.5), 0.001)))
                final["p99"].append((wall, max(_percentile(took, 0.99), 0.001)))
            for name in names:
                status[name].append((wall, float(sum(1 for t in items if t[2] == name))))
        plots.append(sim_chart(cm, final, "simulated seconds",
                               "Accepted -> first final status, by acceptance time",
                               log_y=True))  # fmt: skip
        plots.append(sim_chart(cm, status, f"payouts per {width:g} wall s",
                               "Payout status mix (status now) by acceptance time"))  # fmt: skip
    plots += channel_plots(cm, rows)
    plots.append(sim_chart(cm, {
        "open payouts": _column(rows, "open_payouts"),
        "notifications pending": _column(rows, "notifications_pending"),
    }, "count", "Backlog: payouts not final, notifications not delivered"))  # fmt: skip
    plots.append(
        sim_chart(
            cm,
            {"p99 lag": lag},
            "ms (wall)",
            "Notification lag (created -> delivered) p99, by creation time",
        )
    )
    return plots


def channel_plots(cm: ClockMap, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Each bank channel's breaker state over time, and its transport results (successes and
    failures the breaker counted) per wall second, from the watch's GET /admin/channels."""
    ids = sorted({c for r in rows for c in (r.get("channels") or {})})
    lanes: dict[str, list[tuple[float, float, str]]] = {c: [] for c in ids}
    ok: dict[str, list[tuple[float, float]]] = {c: [] for c in ids}
    failed: dict[str, list[tuple[float, float]]] = {c: [] for c in ids}
    for before, after in itertools.pairwise(rows):
        x0, x1 = cm.minute(before["wall"]), cm.minute(after["wall"])
        seen, now = before.get("channels"), after.get("channels")
        wall_s = max(after["wall"] - before["wall"], 1e-3)
        for c in ids:
            state = seen[c]["state"] if seen and c in seen else "no answer"
            lanes[c].append((x0, x1, state))
            if seen and now and c in seen and c in now:
                ok[c].append((after["wall"], (now[c]["successes"] - seen[c]["successes"]) / wall_s))
                failed[c].append(
                    (after["wall"], (now[c]["failures"] - seen[c]["failures"]) / wall_s)
                )
    return [
        state_strips(lanes, "Channel breakers over time (per bank channel)", BREAKER_COLOURS,
                     cm.x_label(), x_ticks=cm.ticks, x_format=cm.label),
        sim_chart(cm, failed, "per wall second", "Channel health: failed submissions"),
        sim_chart(cm, ok, "per wall second", "Channel health: successful submissions"),
    ]  # fmt: skip
