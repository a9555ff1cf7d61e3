"""`paygate up` after a hard kill (SPEC 14, issue 16): the embedded PostgreSQL and Redis that a
SIGKILLed `paygate up` leaves running are adopted or replaced by the next `paygate up`, and
its clean stop leaves nothing running."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson

from tests.e2e.test_up import (
    check_signed_payout_reaches_the_bank,
    storage_processes,
    wait_for_run_file,
)
from tests.harness import free_ports, wait_until_sync


def start_up(state_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PAYGATE_STATE_DIR": str(state_dir), "PAYGATE_LOG_LEVEL": "WARNING",
           "PAYGATE_DATABASE_URL": "", "PAYGATE_REDIS_URL": ""}  # fmt: skip
    port, bank_port, sink_port = free_ports(3)
    with log.open("ab") as out:
        # Its own process group: the test kills the whole group, as a closed terminal would.
        return subprocess.Popen(
            [sys.executable, "-m", "gateway", "up", "--port", str(port), "--bank-port",
             str(bank_port), "--sink-port", str(sink_port)],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def test_storage_left_by_a_killed_up_is_stopped_by_the_next_clean_stop(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    log = tmp_path / "up.out"
    first = start_up(state_dir, log)
    second: subprocess.Popen[bytes] | None = None
    try:
        wait_for_run_file(first, state_dir / "run.json", log.read_text)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        # What the issue saw: the stores outlive the killed `paygate up` ...
        assert {p.info["name"] for p in storage_processes(state_dir)} >= {"postgres"}

        (state_dir / "run.json").unlink()
        second = start_up(state_dir, log)
        wait_for_run_file(second, state_dir / "run.json", log.read_text)
        info = orjson.loads((state_dir / "run.json").read_bytes())
        asyncio.run(check_signed_payout_reaches_the_bank(info))
        second.send_signal(signal.SIGINT)
        assert second.wait(timeout=60) == 0, log.read_text()[-3000:]
        # ... and the clean stop of the next one stops them all.
        wait_until_sync(lambda: storage_processes(state_dir), lambda ps: ps == [], timeout_s=20)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for leftover in storage_processes(state_dir):
            leftover.kill()
