"""A scenario's plots put the simulated clock on x: wall moments map through the clock's
anchors (jumps included), a jump is a gap in the lines, and the ticks read as the clock."""

from __future__ import annotations

import math
from datetime import datetime

import pytest

from loadtest.scenarios.plots import sim_chart
from loadtest.scenarios.simtime import Anchor, ClockMap
from protocol.clock import BUSINESS_TZ

DAY1 = datetime(2026, 11, 27, 9, 0, tzinfo=BUSINESS_TZ)
WALL0 = 1_000_000.0
SCALE = 60.0


def week_of_jumps() -> ClockMap:
    """Day 1 09:00 runs 20 simulated minutes (20 wall s), then the clock jumps to day 2
    17:01 and runs on."""
    first = Anchor(WALL0, DAY1.timestamp(), SCALE)
    landed = datetime(2026, 11, 28, 17, 1, tzinfo=BUSINESS_TZ).timestamp()
    return ClockMap([first, Anchor(WALL0 + 20.0, landed, SCALE)], DAY1)


def test_wall_moments_map_to_the_simulated_clock_across_a_jump() -> None:
    cm = week_of_jumps()
    assert cm.sim_s(WALL0 + 10.0) == DAY1.timestamp() + 600
    assert cm.label(cm.minute(WALL0 + 10.0)) == "day 1 09:10"
    assert cm.label(cm.minute(WALL0 + 25.0)) == "day 2 17:06"
    assert len(cm.jumps) == 1


def test_a_jump_is_a_narrow_gap_in_the_line_not_a_day_long_slope() -> None:
    cm = week_of_jumps()
    points = cm.series([(WALL0 + t, float(t)) for t in range(0, 40, 5)])
    gaps = [i for i, (_, y) in enumerate(points) if math.isnan(y)]
    assert len(gaps) == 1
    xs = [x for x, y in points if not math.isnan(y)]
    assert xs == sorted(xs)
    # 35 simulated minutes ran; the jump of ~32 hours is drawn as about a minute.
    assert xs[-1] - xs[0] < 40


def test_ticks_read_as_the_clock_and_mark_where_the_clock_landed() -> None:
    cm = week_of_jumps()
    lo, hi = cm.minute(WALL0), cm.minute(WALL0 + 40.0)
    labels = [cm.label(x) for x in cm.ticks(lo, hi)]
    assert "day 1 09:00" in labels and "day 2 17:01" in labels
    assert labels == sorted(labels)


def test_a_clock_without_jumps_is_a_plain_timeline() -> None:
    cm = ClockMap([Anchor(WALL0, DAY1.timestamp(), SCALE)], DAY1)
    assert cm.minute(WALL0 + 30.0) == 30.0
    assert [cm.label(x) for x in cm.ticks(0.0, 30.0)][:2] == ["day 1 09:00", "day 1 09:05"]


def test_the_chart_labels_its_x_axis_as_simulated_time() -> None:
    cm = week_of_jumps()
    svg = sim_chart(cm, {"open": [(WALL0 + t, float(t % 7)) for t in range(40)]}, "count", "x")
    assert "simulated time, China" in svg and "day 2 17:01" in svg
    assert svg.count("<polyline") == 2  # one stretch each side of the jump


def test_time_that_ran_leaves_a_24_hour_jump_out() -> None:
    """Accepted 6 simulated s before a 24 h jump, final 3 simulated s after it: 9 s ran."""
    jump_wall = WALL0 + 20.0
    before = DAY1.timestamp() + 20.0 * SCALE
    cm = ClockMap([Anchor(WALL0, DAY1.timestamp(), SCALE),
                   Anchor(jump_wall, before + 86_400, SCALE)], DAY1)  # fmt: skip
    accepted, final = jump_wall - 6 / SCALE, jump_wall + 3 / SCALE
    assert cm.sim_s(final) - cm.sim_s(accepted) == pytest.approx(86_409)  # what the clock shows
    assert cm.ran_s(accepted, final) == pytest.approx(9.0)
    assert cm.ran_s(WALL0, WALL0 + 10.0) == pytest.approx(600.0)  # no jump between: the same
    assert cm.ran_s(accepted - 100, accepted - 90) == pytest.approx(600.0)  # before the anchors
