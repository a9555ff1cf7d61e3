"""A whole Paygate (`paygate up`) as a child process, for the demo and the benchmark.

Started with its own state directory and ports, awaited until it has written run.json, and
stopped with SIGINT (it drains and stops its children and storage) — killed only if it does
not stop in time. Its logs go to `<state_dir>/up.log`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 45.0


@contextmanager
def running_system(
    state_dir: Path,
    *,
    port: int,
    bank_port: int,
    sink_port: int,
    env: dict[str, str] | None = None,
    up_args: tuple[str, ...] = (),
    cwd: Path | None = None,
) -> Iterator[dict[str, Any]]:
    """`cwd`: run the Paygate checked out there (`python -m gateway` imports from the
    working directory first), e.g. another branch's, to measure it beside this one."""
    state_dir.mkdir(parents=True, exist_ok=True)
    run_file = state_dir / "run.json"
    run_file.unlink(missing_ok=True)
    log_file = (state_dir / "up.log").open("ab")
    child_env = {**os.environ, "PAYGATE_STATE_DIR": str(state_dir), **(env or {})}
    cmd = [sys.executable, "-m", "gateway", "up", "--port", str(port), "--bank-port",
           str(bank_port), "--sink-port", str(sink_port), *up_args]  # fmt: skip
    proc = subprocess.Popen(cmd, env=child_env, stdin=subprocess.DEVNULL, stdout=log_file,
                            stderr=subprocess.STDOUT, cwd=cwd)  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not run_file.exists():
            if proc.poll() is not None:
                said = Path(log_file.name).read_text(errors="replace")[-3000:]
                raise RuntimeError(
                    f"paygate up exited with {proc.returncode}; see {log_file.name}:\n{said}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"paygate up did not start in {START_TIMEOUT_S:.0f}s")
            time.sleep(0.1)  # polling for run.json, with a deadline
        info: dict[str, Any] = orjson.loads(run_file.read_bytes())
        yield info
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log_file.close()
