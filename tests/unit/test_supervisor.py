"""The supervisor's restart rule (SPEC 14): backoff doubling to a cap, and a child that keeps
crashing stops the whole."""

from __future__ import annotations

import pytest

from gateway.supervisor import BACKOFF_MAX_S, CrashRecord, KeepsCrashing


def test_backoff_doubles_and_the_fifth_crash_in_a_minute_stops_everything() -> None:
    record = CrashRecord()
    backoffs = [record.crashed(t, "worker", 5, 60.0) for t in (0.0, 1.0, 2.0, 3.0)]
    assert backoffs == [0.5, 1.0, 2.0, 4.0]
    assert record.restart_at == 3.0 + 4.0
    with pytest.raises(KeepsCrashing, match="worker crashed 5 times within 60 s"):
        record.crashed(4.0, "worker", 5, 60.0)


def test_crashes_older_than_the_window_are_forgotten() -> None:
    record = CrashRecord()
    for t in (0.0, 10.0, 20.0, 30.0):
        record.crashed(t, "bank-sim", 5, 60.0)
    # 61 s after the first: four in the window again, not five.
    assert record.crashed(61.0, "bank-sim", 5, 60.0) == 4.0
    many = CrashRecord()
    for n in range(4):
        many.crashed(n * 100.0, "sink", 5, 60.0)
    assert many.crashed(1_000.0, "sink", 5, 60.0) == 0.5
    assert BACKOFF_MAX_S == 10.0
