"""Wall time to simulated time for a scenario's plots (pure).

The gateway keeps the simulated clock as an anchor in the database (`sim_clock`: wall seconds,
simulated seconds, scale); a jump writes a new anchor. The scenario's sampler records every
anchor it sees, so any wall moment of the run (a sample, a load second, a row's `created_at`)
maps to the simulated moment it happened at — jumps included, whatever the sampling rate.
Plots put simulated time on x as simulated minutes since day 1's start, labelled
"day N HH:MM" China time.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from protocol.clock import BUSINESS_TZ

NAN = math.nan
# Tick steps in simulated minutes, from a minute to a day.
_STEPS_MIN = (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880)
MAX_TICKS = 9
GAP_SHARE = 0.02  # how wide a squeezed jump is drawn, as a share of the time that ran


@dataclass(frozen=True, slots=True)
class Anchor:
    wall_s: float  # unix seconds (wall) at which this anchor took effect
    sim_s: float  # simulated unix seconds then
    scale: float  # simulated seconds per wall second


class ClockMap:
    """Maps wall moments of one run to simulated ones, and lays out a simulated-time axis on
    which each clock jump is squeezed to a narrow gap (a jump over a day would otherwise
    leave the minutes that ran as slivers)."""

    def __init__(self, anchors: Iterable[Anchor], origin: datetime) -> None:
        self.anchors = sorted(set(anchors), key=lambda a: a.wall_s)
        if not self.anchors:
            raise ValueError("a clock map needs at least one anchor")
        self._walls = [a.wall_s for a in self.anchors]
        self.origin_s = origin.timestamp()  # day 1's start, simulated unix seconds
        self._day1 = origin.astimezone(BUSINESS_TZ).date()
        # Each jump: (simulated s it jumped from, simulated s it landed at).
        self.jumps: list[tuple[float, float]] = []
        for a, b in itertools.pairwise(self.anchors):
            expected = a.sim_s + (b.wall_s - a.wall_s) * a.scale
            if b.sim_s - expected > max(1.0, a.scale):
                self.jumps.append((expected, b.sim_s))
        last = self.anchors[-1]
        span_min = (last.sim_s - self.origin_s - sum(t - f for f, t in self.jumps)) / 60.0
        self.gap_min = max(1.0, GAP_SHARE * span_min)

    def sim_s(self, wall_s: float) -> float:
        """Simulated unix seconds at wall moment `wall_s` (before the first anchor: the first
        anchor, run backwards)."""
        i = max(0, bisect.bisect_right(self._walls, wall_s) - 1)
        a = self.anchors[i]
        return a.sim_s + (wall_s - a.wall_s) * a.scale

    def ran_s(self, wall_from: float, wall_to: float) -> float:
        """Simulated seconds that ran from one wall moment to a later one: each anchor's stretch
        of wall time at its scale, so a jump between them (a new anchor ahead) adds nothing.
        A latency measured across a 24 h jump is what ran, not the day it skipped."""
        ran = 0.0
        for i, a in enumerate(self.anchors):
            start = a.wall_s if i else -math.inf  # the first anchor also runs backwards
            end = self._walls[i + 1] if i + 1 < len(self._walls) else math.inf
            ran += max(0.0, min(wall_to, end) - max(wall_from, start)) * a.scale
        return ran

    def _x_of_sim(self, sim: float) -> float:
        x = (sim - self.origin_s) / 60.0
        for jumped_from, landed in self.jumps:
            if sim >= landed:
                x -= (landed - jumped_from) / 60.0 - self.gap_min
        return x

    def _sim_of_x(self, x: float) -> float:
        sim = self.origin_s + x * 60.0
        for jumped_from, landed in self.jumps:
            if sim >= jumped_from + self.gap_min * 60.0:
                sim += (landed - jumped_from) - self.gap_min * 60.0
        return sim

    def minute(self, wall_s: float) -> float:
        """x for a wall moment: simulated minutes since day 1's start, less the jumps."""
        return self._x_of_sim(self.sim_s(wall_s))

    def series(self, points: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
        """(wall s, y) points as (x, y), with a gap wherever the clock jumped between two
        points (a line across a jump would draw values nobody saw)."""
        out: list[tuple[float, float]] = []
        before = 0.0
        for wall, y in sorted(points):
            sim = self.sim_s(wall)
            if out and any(before < landed <= sim for _, landed in self.jumps):
                out.append((self._x_of_sim(sim), NAN))
            before = sim
            out.append((self._x_of_sim(sim), y))
        return out

    def label(self, x: float) -> str:
        """The simulated clock at `x`, as "day N HH:MM" China time."""
        when = datetime.fromtimestamp(self._sim_of_x(x), UTC).astimezone(BUSINESS_TZ)
        return f"day {(when.date() - self._day1).days + 1} {when:%H:%M}"

    def ticks(self, lo: float, hi: float) -> Sequence[float]:
        """Ticks at round simulated clock times (China time) covering [lo, hi], and one where
        the clock lands after each jump."""
        step = next((s for s in _STEPS_MIN if (hi - lo) / s <= MAX_TICKS - 1), _STEPS_MIN[-1])
        midnight = datetime.combine(self._day1, datetime.min.time(), BUSINESS_TZ).timestamp()
        starts = [self._x_of_sim(landed) for _, landed in self.jumps]
        out: list[float] = []
        minute = math.floor((self._sim_of_x(lo) - midnight) / 60.0 / step) * step
        while True:
            sim = midnight + minute * 60.0
            minute += step
            if any(jumped_from < sim < landed for jumped_from, landed in self.jumps):
                continue  # a time the clock jumped over
            x = self._x_of_sim(sim)
            if x > hi + step:
                break
            near_jump = any(abs(x - s) < 0.6 * step for s in starts)
            if not near_jump and (not out or x > out[-1]):
                out.append(x)
            if x >= hi:
                break
        return sorted(set(out) | {s for s in starts if lo <= s <= hi})

    def x_label(self) -> str:
        n = len(self.jumps)
        jumps = f"; {n} clock jump{'s' if n > 1 else ''} drawn narrow" if n else ""
        return f"simulated time, China (day 1 = {self._day1.isoformat()}{jumps})"
