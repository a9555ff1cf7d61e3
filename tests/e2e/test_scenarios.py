"""`paygate scenario` as a user runs it (SPEC 12): a shipped scenario passes at `--speed fast`,
one whose assertion cannot hold prints its FAIL line and exits non-zero, and `list` names the
shipped ones."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 240


def scenario(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PAYGATE_STATE_DIR": str(tmp_path / "state"),
        "PAYGATE_LOG_LEVEL": "WARNING",
        "PAYGATE_DATABASE_URL": "",  # a scenario starts its own embedded system
        "PAYGATE_REDIS_URL": "",
    }
    cmd = [sys.executable, "-m", "gateway", "scenario", *args]
    return subprocess.run(
        cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )


def why(done: subprocess.CompletedProcess[str]) -> str:
    """A failed run's story: the runner's own lines (what was open after the drain, which
    expectation failed) and the tail of the rest, which holds the results table."""
    own = [line for line in done.stdout.splitlines() if line.startswith("scenario:")]
    return "\n".join(own[-40:]) + "\n--- tail ---\n" + done.stdout[-2000:] + done.stderr[-1500:]


def test_list_names_the_shipped_scenarios(tmp_path: Path) -> None:
    done = scenario(tmp_path, "list")
    assert done.returncode == 0, done.stderr
    names = {line.split()[0] for line in done.stdout.splitlines()}
    assert {"steady-day", "singles-day", "bank-outage", "p2p-lender"} <= names


def test_steady_day_passes_fast_and_writes_its_report(tmp_path: Path) -> None:
    done = scenario(tmp_path, "run", "scenarios/steady-day.yaml", "--speed", "fast")
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0, why(done)
    assert lines[-1] == "scenario steady-day: PASS"
    assert any("money lost (must be ¥0.00)" in line and "¥0.00" in line for line in lines)
    reports = list((tmp_path / "state" / "reports").glob("scenario-steady-day-*.html"))
    assert reports and "<svg" in reports[0].read_text()


def test_p2p_lender_passes_fast_with_collections_and_per_class_loads(tmp_path: Path) -> None:
    """Two generators (a class with a load of its own each), the accounts workload (transfers,
    collections, withdrawals) through real processes, and the collections' answers."""
    done = scenario(tmp_path, "run", "scenarios/p2p-lender.yaml", "--speed", "fast")
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0, why(done)
    assert lines[-1] == "scenario p2p-lender: PASS"
    assert "[load 1]" in done.stderr and "[load 2]" in done.stderr
    (row,) = [line for line in lines if "collections (代收) / succeeded" in line]
    found = re.search(r"(\d+) / (\d+);", row)
    assert found is not None, row
    assert int(found[1]) >= int(found[2]) >= 100, row


def test_all_faults_at_once_lose_nothing(tmp_path: Path) -> None:
    """Every fault kind the format has in one run (issue 22): kills of each process and
    store, an outage with the bank simulator killed during it, card debits failing, callback
    storms, a spike and a jump past the T+1 cut-off; its expectations are in the file."""
    done = scenario(tmp_path, "run", "scenarios/all-faults.yaml", "--speed", "fast")
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0, why(done)
    assert lines[-1] == "scenario all-faults: PASS"
    for process in ("gateway", "worker", "webhook-sink", "postgres", "redis", "bank-sim"):
        assert any(f"killed {process} (pid" in line for line in lines), process
    assert any("clock jumped to" in line for line in lines)


def test_an_assertion_that_cannot_hold_fails_the_run(tmp_path: Path) -> None:
    path = tmp_path / "impossible.yaml"
    path.write_text(
        """name: impossible
description: A short quiet run that asserts a request p99 no system has.
duration_min: 4
time_scale: 60
merchants: [{name: shop, credit_fen: 100000000}]
load: {workload: payouts, rate_per_s: 20}
expect:
  ledger_ok: true
  request_p99_ms: {max: 0.001}
""",
        encoding="utf-8",
    )
    done = scenario(tmp_path, "run", str(path))
    last = done.stdout.strip().splitlines()[-1]
    assert done.returncode == 1, why(done)
    assert last.startswith("scenario impossible: FAIL (request_p99_ms ")
    assert "> max 0.001" in last and "ledger_ok" not in last
