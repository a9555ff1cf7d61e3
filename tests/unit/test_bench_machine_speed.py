"""The bench's machine speed figure measures how much of the machine the workload gets."""

from __future__ import annotations

import threading

from loadtest.bench.machine_speed import machine_speed, speed_line, speed_summary


def test_a_competing_thread_lowers_the_measured_speed() -> None:
    alone = machine_speed(windows=3, window_s=0.2)
    stop = threading.Event()

    def spin() -> None:  # takes its share of the interpreter, as a busy neighbour takes a core
        n = 0
        while not stop.is_set():
            n += 1

    rival = threading.Thread(target=spin)
    rival.start()
    try:
        shared = machine_speed(windows=3, window_s=0.2)
    finally:
        stop.set()
        rival.join()
    assert alone > 0
    assert shared < 0.8 * alone, (alone, shared)


def test_the_table_line_gives_both_figures_and_their_ratio() -> None:
    summary = speed_summary(150_000, 120_000)
    assert summary["end_over_start"] == 0.8
    label, text = speed_line(summary)
    assert label == "machine speed start / end"
    assert text.startswith("150,000 / 120,000 units/s (end/start 0.8;")
    assert speed_line(None)[1] == "n/a"
