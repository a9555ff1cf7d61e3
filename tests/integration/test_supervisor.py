"""A real crashing child under the supervisor: restarted with a new pid after its backoff,
until it has crashed too often (SPEC 14)."""

from __future__ import annotations

import pytest

from gateway.supervisor import KeepsCrashing, ProcessGroup
from tests.harness import wait_until_sync


def test_a_crashing_child_is_restarted_then_stops_the_whole() -> None:
    group = ProcessGroup()
    # `paygate no-such-command` exits at once with a usage error: a child that always crashes.
    proc = group.spawn_paygate("broken", ["no-such-command"])
    pids = [proc.pid]
    now = 0.0
    try:
        with pytest.raises(KeepsCrashing, match="broken crashed 3 times"):
            while True:
                current = group.pids()["broken"]
                wait_until_sync(group.running, lambda r: not r["broken"], timeout_s=20)
                assert not group.tend(now, max_crashes=3, window_s=60.0)  # noticed, not yet due
                now += 11.0  # past any backoff (simulated: tend takes the time it is given)
                assert group.tend(now, max_crashes=3, window_s=60.0)  # restarted
                assert group.pids()["broken"] != current
                pids.append(group.pids()["broken"])
    finally:
        group.stop_all()
    assert len(set(pids)) == 3  # started, restarted twice, then the third crash stopped it
