"""The bench's machine speed figure: workload units per second of wall time."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from loadtest.bench.machine_speed import machine_speed, speed_line, speed_summary


def test_the_figure_is_units_per_second_of_wall_time() -> None:
    """Time seen by a fake wall clock that moves 1 ms (then 2 ms) per batch of 200 units: the
    figure halves when the same work takes twice the wall time, whatever the CPU time was
    (a competing thread measured against the real clock is too noisy on a loaded machine)."""

    def clock(step_s: float) -> Callable[[], float]:
        ticks = itertools.count()
        return lambda: next(ticks) * step_s

    fast = machine_speed(windows=3, window_s=0.05, clock=clock(0.001))
    slow = machine_speed(windows=3, window_s=0.05, clock=clock(0.002))
    assert (fast, slow) == (200_000, 100_000)


def test_the_real_clock_gives_a_positive_figure() -> None:
    assert machine_speed(windows=1, window_s=0.05) > 0


def test_the_table_line_gives_both_figures_and_their_ratio() -> None:
    summary = speed_summary(150_000, 120_000)
    assert summary["end_over_start"] == 0.8
    label, text = speed_line(summary)
    assert label == "machine speed start / end"
    assert text.startswith("150,000 / 120,000 units/s (end/start 0.8;")
    assert speed_line(None)[1] == "n/a"
