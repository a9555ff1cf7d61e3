"""A real streaming replica of an embedded PostgreSQL, for tests: `pg_basebackup -R` with the
embedded server's own binaries into a directory of the test's, then `postgres` on a second
port as the test's own child process, stopped by its handle."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.storage.embedded import EmbeddedPostgres

BASEBACKUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
# As root, pgserver runs PostgreSQL as this user (postgres refuses to run as root).
PGSERVER_USER = "pgserver"


def _run_as() -> dict[str, Any]:
    return {"user": PGSERVER_USER} if os.geteuid() == 0 else {}


@dataclass
class Replica:
    """A hot standby of `primary` under `directory`, on 127.0.0.1:`port` (TCP only)."""

    primary: EmbeddedPostgres
    directory: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        server = self.primary.server
        assert server is not None, "start the primary first"
        info = server.get_postmaster_info()
        bin_dir = Path(server.bin_path)
        self.directory.mkdir(mode=0o700)
        if os.geteuid() == 0:
            shutil.chown(self.directory, PGSERVER_USER, PGSERVER_USER)
        # -R writes standby.signal and primary_conninfo (the primary's unix socket).
        subprocess.run(
            [str(bin_dir / "pg_basebackup"), "-D", str(self.directory), "-R", "-X", "stream",
             "-c", "fast", "-h", str(info.socket_dir), "-p", str(info.port), "-U", "postgres"],
            check=True, capture_output=True, timeout=BASEBACKUP_TIMEOUT_S, **_run_as(),
        )  # fmt: skip
        log = (self.directory / "replica.log").open("wb")
        with log:
            self.process = subprocess.Popen(
                [str(bin_dir / "postgres"), "-D", str(self.directory), "-p", str(self.port),
                 "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
                 "-c", "hot_standby=on"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, **_run_as(),
            )  # fmt: skip

    def log_tail(self) -> str:
        path = self.directory / "replica.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then a kill if it does not stop in time."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
