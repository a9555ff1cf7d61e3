"""The simulated clock runs `scale` times faster than wall time and can be jumped."""

import time

from protocol.clock import ClockAnchor, SimClock


def test_scaled_clock_runs_faster_than_wall_time() -> None:
    now = time.time()
    clock = SimClock(ClockAnchor(wall_s=now - 10, sim_s=now, scale=1000))
    assert clock.now_s() - now >= 10 * 1000 - 1


def test_advance_jumps_simulated_time_and_keeps_scale() -> None:
    clock = SimClock(scale=1.0)
    before = clock.now_s()
    clock.advance(86_400)
    assert clock.now_s() - before >= 86_400
    assert clock.scale == 1.0


def test_wall_delay_shrinks_with_scale() -> None:
    clock = SimClock(scale=3600)
    assert clock.wall_delay_s(3600) == 1.0
