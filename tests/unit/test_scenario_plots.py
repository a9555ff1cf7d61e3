"""The channel-health plots of a scenario report: each bank's breaker state over simulated
time from the watch's samples, a gateway that did not answer shown as such, and results per
wall second from the channels' running totals."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from loadtest.scenarios.plots import channel_plots
from loadtest.scenarios.simtime import Anchor, ClockMap
from protocol.clock import BUSINESS_TZ

DAY1 = datetime(2026, 11, 27, 10, 0, tzinfo=BUSINESS_TZ)
WALL0 = 1_000_000.0


def sample(t: int, state: str | None, failures: int = 0) -> dict[str, Any]:
    channels = None if state is None else {
        "102": {"state": state, "successes": 10 * t, "failures": failures},
        "ibps": {"state": "closed", "successes": 5 * t, "failures": 0},
    }  # fmt: skip
    return {"wall": WALL0 + t, "channels": channels}


def test_breaker_lanes_show_open_and_a_silent_gateway_per_bank() -> None:
    cm = ClockMap([Anchor(WALL0, DAY1.timestamp(), 60.0)], DAY1)
    rows = [sample(0, "closed"), sample(1, "open", 5), sample(2, None), sample(3, "closed", 6),
            sample(4, "closed", 6)]  # fmt: skip
    strips, failed, ok = channel_plots(cm, rows)
    assert "102: open day 1 10:01 – day 1 10:02" in strips
    assert "102: no answer day 1 10:02 – day 1 10:03" in strips
    assert ">ibps<" in strips and "simulated time, China" in strips
    assert "Channel health: failed submissions" in failed
    assert "102: day 1 10:01, 5" in failed  # 5 failures in the wall second before
    assert "ibps: day 1 10:01, 5" in ok
