"""Child processes owned by one parent (`paygate up`, `paygate serve --workers N`)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence

log = logging.getLogger("paygate.supervisor")

STOP_TIMEOUT_S = 15.0


class ProcessGroup:
    def __init__(self, env: dict[str, str] | None = None) -> None:
        # Children stop by themselves if this process dies without stopping them.
        self._env = {**os.environ, **(env or {}), "PAYGATE_PARENT_PID": str(os.getpid())}
        self._procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def spawn_paygate(
        self, name: str, args: Sequence[str], env: dict[str, str] | None = None, nice: int = 0
    ) -> subprocess.Popen[bytes]:
        """Start `paygate <args>`; `nice` > 0 runs it at a lower CPU priority."""
        cmd = [sys.executable, "-m", "gateway", *args]
        proc = subprocess.Popen(
            cmd, env={**self._env, **(env or {})}, stdin=subprocess.DEVNULL,
            preexec_fn=(lambda: os.nice(nice)) if nice else None,
        )  # fmt: skip
        self._procs.append((name, proc))
        log.info("process started", extra={"proc": name, "pid": proc.pid})
        return proc

    def first_exited(self) -> str | None:
        for name, proc in self._procs:
            if proc.poll() is not None:
                return f"{name} (exit {proc.returncode})"
        return None

    def stop_all(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM everyone (they drain), then SIGKILL what is still alive at the deadline."""
        for _, proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + timeout_s
        for name, proc in reversed(self._procs):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("process did not stop, killing", extra={"proc": name})
                proc.kill()
                proc.wait()
        self._procs.clear()
