"""Fault injection into a running `paygate up` (SPEC 14): kill one process or store by its own
pid, as `run.json` names it, and wait for the supervisor to bring it back.

Names: `gateway`, `worker`, `bank-sim`, `webhook-sink` (children of `paygate up`), and
`postgres` (the embedded postmaster), `redis` (the embedded redis-server). Used by the crash
tests, and by scenarios that kill processes or restart stores.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Final

import orjson
import psutil

KILLABLE: Final = ("gateway", "worker", "bank-sim", "webhook-sink", "postgres", "redis")
RESTART_TIMEOUT_S: Final = 60.0


def pids(state_dir: Path) -> dict[str, int]:
    """The pids `paygate up` wrote last (it rewrites them after every restart)."""
    found: dict[str, int] = orjson.loads((state_dir / "run.json").read_bytes())["pids"]
    return found


def kill(state_dir: Path, name: str, sig: signal.Signals = signal.SIGKILL) -> int:
    """Send `sig` to the process `name`; returns its pid. Waits until it is gone."""
    if name not in KILLABLE:
        raise ValueError(f"unknown process {name!r}; one of {', '.join(KILLABLE)}")
    pid = pids(state_dir)[name]
    proc = psutil.Process(pid)
    os.kill(pid, sig)
    if sig == signal.SIGKILL:
        proc.wait(10)  # our child: reaped by its parent; storage: gone once the kernel says so
    return pid


def wait_restarted(
    state_dir: Path, name: str, old_pid: int, timeout_s: float = RESTART_TIMEOUT_S
) -> int:
    """Poll (with a deadline) until `name` runs again under a new pid; returns it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            pid = pids(state_dir).get(name)
        except (OSError, orjson.JSONDecodeError):
            pid = None  # being rewritten or gone
        if pid is not None and pid != old_pid and psutil.pid_exists(pid):
            return pid
        time.sleep(0.1)  # polling run.json, with a deadline
    raise TimeoutError(f"{name} was not restarted within {timeout_s:.0f}s")
