"""One system per state directory: while a `paygate up` holds it, a second `up` on it, or a
scenario run that would wipe its own run directory, refuses at once with a clear error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.state_lock import StateDirBusy, ensure_free, holding, lock_path, wipe

ROOT = Path(__file__).resolve().parents[2]


def paygate(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PAYGATE_STATE_DIR": str(state_dir), "PAYGATE_DATABASE_URL": "",
           "PAYGATE_REDIS_URL": ""}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "gateway", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_the_lock_is_exclusive_and_names_its_holder(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with holding(state), pytest.raises(StateDirBusy, match=f"pid {os.getpid()}"):
        ensure_free(state)
    ensure_free(state)  # released with its holder


def test_the_lock_lives_inside_the_state_dir_and_nothing_is_made_beside_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with holding(state):
        assert lock_path(state).parent == state
    assert [p.name for p in tmp_path.iterdir()] == ["state"]


def test_a_wipe_empties_the_dir_but_keeps_the_lock_working(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "pgdata").mkdir(parents=True)
    (state / "run.json").write_text("{}")
    with holding(state), pytest.raises(StateDirBusy):
        wipe(state)
    assert (state / "run.json").exists()  # a held directory is not touched
    wipe(state)
    assert [p.name for p in state.iterdir()] == [lock_path(state).name]
    with holding(state), pytest.raises(StateDirBusy):
        ensure_free(state)


def test_a_second_up_on_a_held_state_dir_refuses(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with holding(state):
        done = paygate(state, "up")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "is in use by another paygate" in done.stderr
    assert not (state / "run.json").exists()


def test_a_scenario_does_not_wipe_a_run_directory_in_use(tmp_path: Path) -> None:
    state = tmp_path / "state"
    run_dir = state / "scenario-run"
    run_dir.mkdir(parents=True)
    (run_dir / "keep").write_text("a running system's file")
    with holding(run_dir):
        done = paygate(state, "scenario", "run", "scenarios/steady-day.yaml", "--speed", "fast")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "is in use by another paygate" in done.stderr
    assert (run_dir / "keep").exists()
