"""Child processes owned by one parent (`paygate up`, `paygate serve --workers N`), restarted
when they crash (SPEC 14).

A child that exits on its own is restarted after a backoff (0.5 s, doubling, at most 10 s) and
the restart is logged; one that exits `max_crashes` times within `crash_window_s` stops the
whole with a clear message (`KeepsCrashing`). Anything else the parent watches (the embedded
PostgreSQL and Redis) joins the same loop as a `Watched` with the same rule.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from gateway.metrics import mark_dead

log = logging.getLogger("paygate.supervisor")

STOP_TIMEOUT_S: Final = 15.0
BACKOFF_FIRST_S: Final = 0.5
BACKOFF_MAX_S: Final = 10.0
MAX_CRASHES: Final = 5
CRASH_WINDOW_S: Final = 60.0
POLL_S: Final = 0.2


class KeepsCrashing(Exception):
    def __init__(self, name: str, crashes: int, window_s: float) -> None:
        super().__init__(
            f"{name} crashed {crashes} times within {window_s:.0f} s; stopping everything"
        )
        self.name = name


class Watched(Protocol):
    """Something the supervisor keeps alive: `alive()` is cheap, `restart()` may block."""

    name: str

    def alive(self) -> bool: ...

    def restart(self) -> None: ...


@dataclass
class CrashRecord:
    """When one child crashed lately, and when it is due to start again."""

    times: deque[float] = field(default_factory=deque)
    restart_at: float | None = None

    def crashed(self, now: float, name: str, max_crashes: int, window_s: float) -> float:
        """Count a crash; the backoff before the restart (raises KeepsCrashing)."""
        self.times.append(now)
        while self.times and now - self.times[0] > window_s:
            self.times.popleft()
        if len(self.times) >= max_crashes:
            raise KeepsCrashing(name, len(self.times), window_s)
        backoff: float = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2.0 ** (len(self.times) - 1))
        self.restart_at = now + backoff
        return backoff


@dataclass
class Child:
    name: str
    args: list[str]
    env: dict[str, str]
    nice: int
    proc: subprocess.Popen[bytes]
    crashes: CrashRecord = field(default_factory=CrashRecord)


class ProcessGroup:
    def __init__(self, env: dict[str, str] | None = None) -> None:
        # Children stop by themselves if this process dies without stopping them.
        self._env = {**os.environ, **(env or {}), "PAYGATE_PARENT_PID": str(os.getpid())}
        self._children: list[Child] = []

    def spawn_paygate(
        self, name: str, args: Sequence[str], env: dict[str, str] | None = None, nice: int = 0
    ) -> subprocess.Popen[bytes]:
        """Start `paygate <args>`; `nice` > 0 runs it at a lower CPU priority."""
        full_env = {**self._env, **(env or {})}
        child = Child(name, list(args), full_env, nice, self._popen(list(args), full_env, nice))
        self._children.append(child)
        log.info("process started", extra={"proc": name, "pid": child.proc.pid})
        return child.proc

    @staticmethod
    def _popen(args: list[str], env: dict[str, str], nice: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway", *args], env=env, stdin=subprocess.DEVNULL,
            preexec_fn=(lambda: os.nice(nice)) if nice else None,
        )  # fmt: skip

    def pids(self) -> dict[str, int]:
        return {c.name: c.proc.pid for c in self._children}

    def running(self) -> dict[str, bool]:
        return {c.name: c.proc.poll() is None for c in self._children}

    def tend(
        self, now: float, max_crashes: int = MAX_CRASHES, window_s: float = CRASH_WINDOW_S
    ) -> bool:
        """Notice crashed children and restart those due; True when a pid changed."""
        changed = False
        for child in self._children:
            if child.crashes.restart_at is None and child.proc.poll() is not None:
                code = child.proc.returncode
                mark_dead(child.proc.pid, child.env)
                backoff = child.crashes.crashed(now, child.name, max_crashes, window_s)
                log.error("process exited; restarting", extra={
                    "proc": child.name, "exit": code, "restart_in_s": backoff,
                    "crashes_in_window": len(child.crashes.times)})  # fmt: skip
            due = child.crashes.restart_at
            if due is not None and now >= due:
                child.crashes.restart_at = None
                child.proc = self._popen(child.args, child.env, child.nice)
                log.warning("process restarted", extra={"proc": child.name,
                                                        "pid": child.proc.pid})  # fmt: skip
                changed = True
        return changed

    def stop_all(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM everyone (they drain), then SIGKILL what is still alive at the deadline."""
        for child in reversed(self._children):
            if child.proc.poll() is None:
                child.proc.terminate()
        deadline = time.monotonic() + timeout_s
        for child in reversed(self._children):
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("process did not stop, killing", extra={"proc": child.name})
                child.proc.kill()
                child.proc.wait()
            mark_dead(child.proc.pid, child.env)
        self._children.clear()


def tend_watched(watched: Sequence[Watched], records: dict[str, CrashRecord], now: float) -> bool:
    """The same rule for what is not our child process (embedded storage): True on restart."""
    changed = False
    for w in watched:
        record = records.setdefault(w.name, CrashRecord())
        if record.restart_at is None and not w.alive():
            backoff = record.crashed(now, w.name, MAX_CRASHES, CRASH_WINDOW_S)
            log.error("died; restarting", extra={"proc": w.name, "restart_in_s": backoff})
        if record.restart_at is not None and now >= record.restart_at:
            record.restart_at = None
            try:
                w.restart()
            except Exception:
                log.exception("restart failed; trying again", extra={"proc": w.name})
                record.restart_at = now + BACKOFF_MAX_S / 2
                continue
            log.warning("restarted", extra={"proc": w.name})
            changed = True
    return changed


def supervise(
    group: ProcessGroup,
    watched: Sequence[Watched] = (),
    on_change: Callable[[], None] | None = None,
) -> int:
    """Keep everything running until SIGINT/SIGTERM (0) or something keeps crashing (1).
    Storage is tended first, so children restart against a live database."""
    records: dict[str, CrashRecord] = {}
    code = 0
    try:
        while True:
            now = time.monotonic()
            changed = tend_watched(watched, records, now)
            changed = group.tend(now) or changed
            if changed and on_change is not None:
                on_change()
            time.sleep(POLL_S)  # supervisor poll interval, not synchronisation
    except KeepsCrashing as exc:
        log.error(str(exc), extra={"proc": exc.name})
        print(f"paygate: {exc}", file=sys.stderr, flush=True)
        code = 1
    except KeyboardInterrupt:
        log.info("stopping on signal")
    finally:
        group.stop_all()
    return code
