"""The simulated clock (SPEC 12): one clock for business dates, cut-offs, limits and delays.

Simulated time runs `scale` times faster than wall time from an anchor. Signature timestamps
never use it: they are wall time. Every process reads the same anchor from the database, so
`paygate up` and its workers agree on what time it is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

# Business dates follow China Standard Time: banks cut off and roll dates in UTC+8.
BUSINESS_TZ = timezone(timedelta(hours=8), "CST")


@dataclass(frozen=True, slots=True)
class ClockAnchor:
    wall_s: float  # wall-clock unix seconds at the anchor
    sim_s: float  # simulated unix seconds at the anchor
    scale: float  # simulated seconds per wall second


class SimClock:
    """Simulated time from an anchor; `set_anchor` re-anchors (tests and operators drive it)."""

    def __init__(self, anchor: ClockAnchor | None = None, scale: float = 1.0) -> None:
        now = time.time()
        self._anchor = anchor or ClockAnchor(wall_s=now, sim_s=now, scale=scale)

    @property
    def anchor(self) -> ClockAnchor:
        return self._anchor

    @property
    def scale(self) -> float:
        return self._anchor.scale

    def set_anchor(self, anchor: ClockAnchor) -> None:
        if anchor.scale <= 0:
            raise ValueError("time scale must be positive")
        self._anchor = anchor

    def now_s(self) -> float:
        a = self._anchor
        return a.sim_s + (time.time() - a.wall_s) * a.scale

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_s(), UTC)

    def business_date(self) -> date:
        return self.now().astimezone(BUSINESS_TZ).date()

    def wall_delay_s(self, sim_delay_s: float) -> float:
        """How long to wait on the wall clock for `sim_delay_s` of simulated time to pass."""
        return max(0.0, sim_delay_s / self._anchor.scale)

    def advance(self, sim_seconds: float) -> None:
        """Jump simulated time forward (keeps the scale)."""
        now_wall = time.time()
        self._anchor = ClockAnchor(
            wall_s=now_wall, sim_s=self.now_s() + sim_seconds, scale=self._anchor.scale
        )
