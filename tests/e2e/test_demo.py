"""`paygate demo` (what `make run` runs) tells the same story every run: run twice in one state
directory, as a second `make run` does, the advance merchant pays out on its 垫资 line and the
jump past the T+1 cut-off repays it, both times (issue 23 item 5)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from tests.harness import free_port

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 240


def demo(state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PAYGATE_STATE_DIR": str(state_dir),
        "PAYGATE_LOG_LEVEL": "WARNING",
        "PAYGATE_DATABASE_URL": "",  # embedded storage, as `make run`
        "PAYGATE_REDIS_URL": "",
    }
    ports = ("--port", str(free_port()), "--bank-port", str(free_port()),
             "--sink-port", str(free_port()))  # fmt: skip
    cmd = [sys.executable, "-m", "gateway", "demo", "--duration", "8", "--rate", "150", *ports]
    return subprocess.run(
        cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )


def advance_story(data: dict[str, Any]) -> tuple[int, int]:
    """Peak advance used over the run's samples, and advance used at its end (fen)."""
    peak = max((int(s["advance_used"]) for s in data["samples"]), default=0)
    return peak, int(data["exposure"]["advance_used"])


def test_every_demo_run_uses_its_advance_line_and_repays_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    seen: list[tuple[int, int]] = []
    for run in (1, 2):
        done = demo(state)
        assert done.returncode == 0, f"run {run}: " + done.stdout[-3000:] + done.stderr[-3000:]
        # The console's login, and one large payout left for four eyes (the same one again).
        assert "/console/  sign in as admin / " in done.stdout, done.stdout[-3000:]
        assert "(¥60,000.00) is review_pending in 财务审核" in done.stdout, done.stdout[-3000:]
        files = sorted((state / "reports").glob("demo-*.json"))
        assert len(files) == run, files  # one data file per run (stamped to the second)
        peak, end = advance_story(orjson.loads(files[-1].read_bytes()))
        seen.append((peak, end))
    for run, (peak, end) in enumerate(seen, 1):
        assert peak > 0, f"run {run}: 垫资 never used (peak advance used ¥0); runs: {seen}"
        assert end < peak, f"run {run}: advance not repaid ({end} of peak {peak}); runs: {seen}"
