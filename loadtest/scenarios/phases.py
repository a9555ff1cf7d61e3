"""The phases of a scenario's timeline and the SLO in each (pure).

A phase runs from one moment of the timeline to the next: day 1's start, each event (an
outage beginning, a bank back, a kill, a clock jump) and the start and end of a spike. A
payout belongs to the phase it was accepted in (simulated time); its accept -> final time is
the simulated seconds that ran until its first final status (a clock jump in between skips
time, it does not take any). Within the SLO means final no later than `slo_s` after
acceptance; a payout still open is not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from loadtest.scenarios.model import Event, Scenario, at_time, day_and_time


class RunClock(Protocol):
    """What the run's simulated clock tells about wall moments (simtime.ClockMap)."""

    def sim_s(self, wall_s: float) -> float: ...
    def ran_s(self, wall_from: float, wall_to: float) -> float: ...


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    at: str  # "day N HH:MM" it starts
    start_s: float  # simulated unix seconds


def _what(ev: Event) -> str:
    if ev.note:
        return ev.note
    if ev.kill is not None:
        return f"{ev.kill} killed"
    if ev.jump_to is not None:
        return f"clock jumped to {ev.jump_to}"
    if ev.callback_storm is not None:
        return "callback storm"
    return f"bank {ev.bank} profile changed"


def phases(sc: Scenario, start: datetime) -> list[Phase]:
    """The timeline's phases in order; events at the same moment start one phase."""
    marks: list[tuple[float, str, str]] = []
    for ev in sc.timeline:
        marks.append((at_time(ev.at, start).timestamp(), ev.at, _what(ev)))
    for load, classes in sc.loads():
        if load.shape != "spike" or load.spike_at is None:
            continue
        who = "" if load is sc.load else f" ({sc.merchants[classes[0]].name})"
        spike_start = at_time(load.spike_at, start)
        ratio = load.spike_rate_per_s / max(load.rate_per_s, 1e-9)
        marks.append((spike_start.timestamp(), load.spike_at, f"spike ×{ratio:g}{who}"))
        end = spike_start + timedelta(minutes=load.spike_min)
        marks.append((end.timestamp(), day_and_time(end, start), f"after the spike{who}"))
    out = [Phase("start", day_and_time(start, start), start.timestamp())]
    for when, at, what in sorted(marks, key=lambda m: m[0]):  # stable: timeline order
        last = out[-1]
        if when > last.start_s:
            out.append(Phase(what, at, when))
        elif when == last.start_s:  # the same moment: one phase, both names
            out[-1] = Phase(what if last.name == "start" else f"{last.name}; {what}", at, when)
    return out


def _p99(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


def slo_per_phase(
    found: Sequence[Phase],
    times: Sequence[tuple[float, float | None, str]],
    clock: RunClock,
    slo_s: float,
) -> list[dict[str, Any]]:
    """Per phase: payouts accepted in it, p99 accept -> first final (simulated s, over the
    final ones), the share final within the SLO, and how many are still open."""
    took: list[list[float]] = [[] for _ in found]
    counts = [0] * len(found)
    open_ = [0] * len(found)
    starts = [p.start_s for p in found]
    for accepted_wall, final_wall, _ in times:
        accepted = clock.sim_s(accepted_wall)
        i = max(0, sum(1 for s in starts if s <= accepted) - 1)
        counts[i] += 1
        if final_wall is None:
            open_[i] += 1
        else:
            took[i].append(clock.ran_s(accepted_wall, final_wall))
    out = []
    for i, p in enumerate(found):
        within = sum(1 for t in took[i] if t <= slo_s)
        p99 = _p99(took[i])
        out.append({
            "phase": p.name, "from": p.at, "payouts": counts[i],
            "p99_final_s": None if p99 is None else round(p99, 1),
            "within_slo": round(within / counts[i], 4) if counts[i] else None,
            "open": open_[i],
        })  # fmt: skip
    return out


def row(slo_s: float, phase: dict[str, Any]) -> tuple[str, str]:
    """One line of the report's answers."""
    question = f"SLO from {phase['from']} ({phase['phase']}): final within {slo_s:g} s"
    if not phase["payouts"]:
        return question, "no payouts accepted"
    p99 = "-" if phase["p99_final_s"] is None else f"{phase['p99_final_s']:,.1f} s"
    return question, (f"{phase['within_slo']:.2%} of {phase['payouts']:,}; p99 accept→final "
                      f"{p99}; {phase['open']} open")  # fmt: skip
