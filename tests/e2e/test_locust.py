"""The Locust load file against a real `paygate up`: it signs correctly and nothing fails."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.e2e.test_up import wait_for_run_file
from tests.harness import free_port

LOCUSTFILE = Path(__file__).resolve().parents[2] / "loadtest" / "locust" / "locustfile.py"
LOCUST_RUN_S = 10
LOCUST_TIMEOUT_S = LOCUST_RUN_S + 50  # start-up, spawning, and the stop after the run time
MIN_REQUESTS = 100


def aggregated_row(stats_csv: Path) -> dict[str, str]:
    with stats_csv.open(newline="") as f:
        return next(row for row in csv.DictReader(f) if row["Name"] == "Aggregated")


def test_locust_load_on_up_makes_requests_without_failures(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    port, bank_port, sink_port = free_port(), free_port(), free_port()
    env = {**os.environ, "PAYGATE_STATE_DIR": str(state_dir), "PAYGATE_LOG_LEVEL": "WARNING"}
    # To a file, not a pipe: nobody reads a pipe while Locust runs, and a full one blocks `up`.
    up_log = tmp_path / "up.log"
    with up_log.open("wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "gateway", "up", "--port", str(port), "--bank-port",
             str(bank_port), "--sink-port", str(sink_port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        run_file = state_dir / "run.json"
        wait_for_run_file(up, run_file, lambda: up_log.read_text(errors="replace"))

        locust = subprocess.run(
            [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
             "-u", "20", "-r", "10", "-t", f"{LOCUST_RUN_S}s",
             "--host", f"http://127.0.0.1:{port}",
             "--csv", str(tmp_path / "stats"), "--exit-code-on-error", "1"],
            env={**env, "PAYGATE_RUN_FILE": str(run_file)},
            capture_output=True,
            timeout=LOCUST_TIMEOUT_S,
        )  # fmt: skip
        output = (locust.stdout + locust.stderr).decode(errors="replace")[-6000:]
        assert locust.returncode == 0, output

        total = aggregated_row(tmp_path / "stats_stats.csv")
        failures = (tmp_path / "stats_failures.csv").read_text()
        assert int(total["Request Count"]) > MIN_REQUESTS, output
        assert int(total["Failure Count"]) == 0, failures

        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=30) == 0, up_log.read_text(errors="replace")[-6000:]
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
