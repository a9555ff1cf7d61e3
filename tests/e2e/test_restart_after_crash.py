"""`paygate up` right after a crash of everything (issue 22): `up`, its children, the embedded
PostgreSQL and Redis all SIGKILLed, then `up` again at once or 1 s later, five times in a row.
Each start comes up (the old postmaster's lock files and leftover backends are waited for and
cleared, not a reason to exit 1), and the last clean stop leaves nothing running."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import orjson
import psutil
import pytest

from tests.e2e.test_up import storage_processes
from tests.e2e.test_up_recovery import start_up
from tests.harness import wait_until_sync

ROUNDS = 5
UP_TIMEOUT_S = 60.0  # one start on a loaded 2-core machine, crash recovery included


def ready(state_dir: Path) -> dict[str, object] | None:
    """run.json once the gateway it names answers /readyz, else None."""
    try:
        info: dict[str, object] = orjson.loads((state_dir / "run.json").read_bytes())
        with urllib.request.urlopen(f"{info['gateway_url']}/readyz", timeout=2) as resp:
            return info if resp.status == 200 else None
    except (OSError, ValueError):
        return None


def wait_ready(proc: subprocess.Popen[bytes], state_dir: Path, log: Path) -> dict[str, object]:
    def probe() -> dict[str, object] | None:
        assert proc.poll() is None, f"up exited {proc.returncode}:\n{log.read_text()[-3000:]}"
        return ready(state_dir)

    info = wait_until_sync(probe, lambda i: i is not None, timeout_s=UP_TIMEOUT_S, interval_s=0.2)
    assert info is not None
    return info


def processes_of(state_dir: Path) -> list[psutil.Process]:
    """Every process of this state directory's system: the stores (their command lines name
    it) and `up`'s children (they inherit PAYGATE_STATE_DIR)."""
    wanted = str(state_dir)
    found = []
    for proc in psutil.process_iter(attrs=("cmdline",)):
        try:
            if wanted in " ".join(proc.info["cmdline"] or []) or (
                proc.environ().get("PAYGATE_STATE_DIR") == wanted
            ):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def kill_everything(up: subprocess.Popen[bytes], info: dict[str, object]) -> None:
    """SIGKILL `up`, every process under it, the postmaster and redis-server, all at once (as
    an OOM kill or a power cut of the session would); the postmaster's backends are left to
    notice on their own, as they would be."""
    pids = dict(info["pids"])  # type: ignore[call-overload]
    victims = [psutil.Process(up.pid)]
    victims += victims[0].children(recursive=True)
    victims += [psutil.Process(pids[name]) for name in ("postgres", "redis")]
    for proc in victims:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGKILL)
    up.wait(10)


@pytest.mark.parametrize("delay_s", [0.0, 1.0], ids=["at-once", "after-1s"])
def test_up_comes_back_after_everything_is_killed_five_times(
    tmp_path: Path, delay_s: float
) -> None:
    state_dir = tmp_path / "state"
    log = tmp_path / "up.out"
    up = start_up(state_dir, log)
    started = [up]
    try:
        info = wait_ready(up, state_dir, log)
        for _ in range(ROUNDS):
            kill_everything(up, info)
            if delay_s:
                time.sleep(delay_s)  # the fault's own timing: an operator restarting 1 s later
            up = start_up(state_dir, log)
            started.append(up)
            info = wait_ready(up, state_dir, log)
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=60) == 0, log.read_text()[-3000:]
        wait_until_sync(lambda: processes_of(state_dir), lambda ps: ps == [], timeout_s=20)
    finally:
        for proc in started:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for leftover in storage_processes(state_dir):
            leftover.kill()
