"""The retry schedule (SPEC 10), in simulated seconds: after the first attempt fails, wait
15 s, 1 m, 5 m, 15 m, 1 h, 2 h, 6 h, 15 h between attempts; after the last, the event fails."""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_SCHEDULE_S: tuple[int, ...] = (15, 60, 300, 900, 3600, 7200, 21600, 54000)


def next_delay_s(attempts_made: int, schedule_s: Sequence[int] = DEFAULT_SCHEDULE_S) -> int | None:
    """Simulated seconds to wait after `attempts_made` failed attempts; None: give up."""
    assert attempts_made >= 1
    if attempts_made > len(schedule_s):
        return None
    return schedule_s[attempts_made - 1]


def max_attempts(schedule_s: Sequence[int] = DEFAULT_SCHEDULE_S) -> int:
    return len(schedule_s) + 1
