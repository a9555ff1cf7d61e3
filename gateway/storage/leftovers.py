"""What a killed run leaves behind for the next start of the embedded stores (SPEC 14, issue 22):
processes still going away, and lock files naming servers that are dead.

A SIGKILLed postmaster stays a zombie until its parent (init, once `pg_ctl` has left) reaps it,
which can take seconds; PostgreSQL takes a zombie's pid for a live server (`kill(pid, 0)`
succeeds), so `postmaster.pid` and the socket's `.s.PGSQL.<port>.lock` naming it stop a new
server from starting. Its backends notice the death on their own and exit, but a new server
must not start on the data directory while one of them still runs there. So: wait (bounded)
for the dead server's live processes to leave, then remove its lock files.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

import psutil

log = logging.getLogger("paygate.storage")

LEFTOVER_WAIT_S = 30.0  # backends of a dead postmaster exit within milliseconds; this is slack
POLL_S = 0.05


def live(proc: psutil.Process) -> bool:
    """Running and not a zombie (a zombie holds nothing but its pid)."""
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def process_for(pid: int, name: str, marker: str) -> psutil.Process | None:
    """The live process `pid` if it is a `name` whose command line mentions `marker`."""
    try:
        proc = psutil.Process(pid)
        if live(proc) and name in proc.name() and marker in " ".join(proc.cmdline()):
            return proc
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        pass
    return None


def wait_gone(procs: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Poll until none of `procs` is live (a zombie counts as gone: whether its parent has
    reaped it yet is not ours to wait for); those still live at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        procs = [p for p in procs if live(p)]
        if not procs or time.monotonic() >= deadline:
            return procs
        time.sleep(POLL_S)  # polling other processes' exit, with a deadline


def stop_process(proc: psutil.Process, timeout_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL what is still live at the deadline."""
    with contextlib.suppress(psutil.NoSuchProcess):
        proc.terminate()
        if wait_gone([proc], timeout_s):
            proc.kill()
            wait_gone([proc], timeout_s)


def postgres_processes(pgdata: Path) -> list[psutil.Process]:
    """Live PostgreSQL processes working on `pgdata`: the postmaster and every backend run
    with it as their working directory (a backend's command line does not name it)."""
    wanted = pgdata.resolve()
    found = []
    for proc in psutil.process_iter(attrs=("name",)):
        if "postgres" not in (proc.info["name"] or ""):
            continue
        with contextlib.suppress(psutil.Error, OSError):
            if live(proc) and Path(proc.cwd()) == wanted:
                found.append(proc)
    return found


def clear_dead_postgres(pgdata: Path, timeout_s: float = LEFTOVER_WAIT_S) -> None:
    """Call only once the postmaster of `pgdata` is known dead: wait for its backends to
    leave (killing those still there at the deadline), then remove the lock files that name
    it, so a new server starts."""
    leftovers = postgres_processes(pgdata)
    if leftovers:
        log.warning(
            "waiting for the processes of a killed PostgreSQL to exit",
            extra={"pids": [p.pid for p in leftovers], "timeout_s": timeout_s},
        )
        for proc in wait_gone(leftovers, timeout_s):
            log.error("killing a process of a dead PostgreSQL", extra={"pid": proc.pid})
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
            wait_gone([proc], timeout_s)
    pid_file = pgdata / "postmaster.pid"
    socket_dirs = {pgdata}
    with contextlib.suppress(OSError, IndexError):
        # Line 5 of postmaster.pid: where the server put its socket (and the socket's lock).
        if named := pid_file.read_text().splitlines()[4].strip():
            socket_dirs.add(Path(named))
    for directory in socket_dirs:
        for lock in directory.glob(".s.PGSQL.*.lock"):
            log.warning("removing a dead PostgreSQL's socket lock", extra={"file": str(lock)})
            lock.unlink(missing_ok=True)
    if pid_file.exists():
        log.warning("removing a stale postmaster.pid", extra={"dir": str(pgdata)})
        pid_file.unlink(missing_ok=True)
