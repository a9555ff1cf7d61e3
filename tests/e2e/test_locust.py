"""The Locust load file against a real `paygate up`: it signs correctly and nothing fails, run
as one process and distributed (a headless master and two workers, the README's commands)."""

from __future__ import annotations

import csv
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from tests.e2e.test_up import stop_up, wait_for_run_file
from tests.harness import free_port

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "loadtest" / "locust" / "locustfile.py"
README = ROOT / "README.md"
LOCUST_RUN_S = 10
LOCUST_TIMEOUT_S = LOCUST_RUN_S + 50  # start-up, spawning, and the stop after the run time
WORKER_STOP_S = 15.0  # a worker quits when its master does
MIN_REQUESTS = 100


@dataclass
class System:
    """A running `paygate up`: its gateway URL, run file and environment."""

    gateway_url: str
    run_file: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    tmp_path = tmp_path_factory.mktemp("locust-up")
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
        yield System(
            f"http://127.0.0.1:{port}", run_file, {**env, "PAYGATE_RUN_FILE": str(run_file)}
        )
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=30) == 0, up_log.read_text(errors="replace")[-6000:]
    finally:
        stop_up(up, state_dir)  # only does something when the module failed before its stop


def aggregated_row(stats_csv: Path) -> dict[str, str]:
    with stats_csv.open(newline="") as f:
        return next(row for row in csv.DictReader(f) if row["Name"] == "Aggregated")


def test_locust_load_on_up_makes_requests_without_failures(system: System, tmp_path: Path) -> None:
    locust = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
         "-u", "20", "-r", "10", "-t", f"{LOCUST_RUN_S}s",
         "--host", system.gateway_url,
         "--csv", str(tmp_path / "stats"), "--exit-code-on-error", "1"],
        env=system.env,
        capture_output=True,
        timeout=LOCUST_TIMEOUT_S,
        cwd=ROOT,
    )  # fmt: skip
    output = (locust.stdout + locust.stderr).decode(errors="replace")[-6000:]
    assert locust.returncode == 0, output

    total = aggregated_row(tmp_path / "stats_stats.csv")
    failures = (tmp_path / "stats_failures.csv").read_text()
    assert int(total["Request Count"]) > MIN_REQUESTS, output
    assert int(total["Failure Count"]) == 0, failures


def readme_distributed_commands() -> list[list[str]]:
    """The README's distributed Locust commands (master first), as argument lists."""
    text = README.read_text()
    section = text[text.index("## Locust") :]
    block = next(b for b in re.findall(r"```sh\n(.*?)```", section, re.S) if "--master " in b)
    lines = block.replace("\\\n", " ").strip().splitlines()
    return [shlex.split(line) for line in lines]


def localise(command: list[str], gateway_url: str, master_port: int, csv_prefix: Path) -> list[str]:
    """The README's command with this test's interpreter, gateway, port and stats path."""
    given = {"--host": gateway_url, "--master-bind-port": str(master_port),
             "--master-port": str(master_port), "--csv": str(csv_prefix)}  # fmt: skip
    assert command[0] == ".venv/bin/locust", command
    out = [sys.executable, "-m", "locust"]
    for arg, prev in zip(command[1:], command[:-1], strict=True):
        out.append(given.get(prev, arg))
    return out


def test_distributed_locust_master_and_two_workers_both_send_load_without_failures(
    system: System, tmp_path: Path
) -> None:
    master_cmd, *worker_cmds = readme_distributed_commands()
    assert "--master" in master_cmd and "--headless" in master_cmd, master_cmd
    assert len(worker_cmds) == 2 and all("--worker" in c for c in worker_cmds), worker_cmds
    port, prefix = free_port(), tmp_path / "locust"
    logs = [tmp_path / name for name in ("master.log", "worker1.log", "worker2.log")]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for command, log_path in zip([master_cmd, *worker_cmds], logs, strict=True):
            with log_path.open("wb") as log:
                procs.append(subprocess.Popen(
                    localise(command, system.gateway_url, port, prefix),
                    env=system.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                ))  # fmt: skip
        master, *workers = procs

        def output() -> str:
            return "\n".join(f"--- {p.name}\n" + p.read_text(errors="replace")[-3000:]
                             for p in logs)  # fmt: skip

        assert master.wait(timeout=LOCUST_TIMEOUT_S) == 0, output()
        for worker in workers:  # the master's quit stops them
            worker.wait(timeout=WORKER_STOP_S)

        total = aggregated_row(Path(f"{prefix}_stats.csv"))
        failures = Path(f"{prefix}_failures.csv").read_text()
        assert int(total["Failure Count"]) == 0, failures
        assert int(total["Request Count"]) > MIN_REQUESTS, output()
        by_worker = orjson.loads(Path(f"{prefix}_workers.json").read_bytes())
        assert len(by_worker) == 2, (by_worker, output())
        assert all(w["requests"] > 0 and w["failures"] == 0 for w in by_worker.values()), by_worker
        assert sum(w["requests"] for w in by_worker.values()) == int(total["Request Count"])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
