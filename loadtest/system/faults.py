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


# What answers once a killed process or store serves again: the gateway's /readyz checks
# PostgreSQL and Redis too; the worker has no port (its restart is its new pid).
_SERVING: Final = {
    "gateway": ("gateway_url", "/readyz"),
    "postgres": ("gateway_url", "/readyz"),
    "redis": ("gateway_url", "/readyz"),
    "bank-sim": ("bank_sim_url", "/healthz"),
    "webhook-sink": ("webhook_sink_url", "/healthz"),
}


def serving_url(info: dict[str, object], name: str) -> str | None:
    """The URL that answers 200 once `name` serves again after a restart (None: no port)."""
    where = _SERVING.get(name)
    if where is None or not isinstance(info.get(where[0]), str):
        return None
    return f"{info[where[0]]}{where[1]}"


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
