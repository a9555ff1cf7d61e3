"""A newcomer's first mistakes (issue 22): each `paygate` command, run as a real process, checks
what it can before starting anything and answers a mistake with exit status 2 and one line on
stderr that names the cause and the fix — never a traceback, never five restarts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.conftest import Storage
from tests.harness import free_port, free_ports

ROOT = Path(__file__).resolve().parents[2]
ANSWER_TIMEOUT_S = 30.0  # a preflight answer takes about a second; this bounds a hang


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def paygate(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PAYGATE_STATE_DIR": str(tmp_path / "state"),
                "PAYGATE_DATABASE_URL": "", "PAYGATE_REDIS_URL": "", **env}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "gateway", *args], env=full_env, cwd=ROOT,
                          capture_output=True, text=True, timeout=ANSWER_TIMEOUT_S)  # fmt: skip


def assert_one_line(done: subprocess.CompletedProcess[str], command: str, says: str) -> None:
    assert "Traceback" not in done.stderr + done.stdout, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr[-2000:]
    assert lines[0].startswith(f"paygate {command}: ") and says in lines[0], lines[0]
    assert done.returncode == 2, done.stderr[-2000:]


def closed_url(scheme: str) -> str:
    """A server URL on a local port nobody listens on."""
    path = "/postgres" if scheme == "postgresql" else "/0"
    return f"{scheme}://user:secret@127.0.0.1:{free_port()}{path}"


def up_ports(**busy: int) -> list[str]:
    ports = dict(zip(("--port", "--bank-port", "--sink-port"), free_ports(3), strict=True))
    ports |= {f"--{k.replace('_', '-')}": v for k, v in busy.items()}
    return [str(x) for pair in ports.items() for x in pair]


# --- paygate up -------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["port", "bank_port", "sink_port"])
def test_up_on_a_busy_port_names_the_port_and_the_flag(
    tmp_path: Path, busy_port: int, flag: str
) -> None:
    done = paygate(tmp_path, "up", *up_ports(**{flag: busy_port}))
    want = f"port {busy_port} is in use: pass --{flag.replace('_', '-')} or stop the other program"
    assert_one_line(done, "up", want)
    assert not (tmp_path / "state" / "pgdata").exists()  # nothing was started


def test_up_with_a_database_url_nobody_answers_says_so_without_the_password(
    tmp_path: Path,
) -> None:
    url = closed_url("postgresql")
    done = paygate(tmp_path, "up", *up_ports(), PAYGATE_DATABASE_URL=url)
    assert_one_line(done, "up", "is not reachable (")
    assert "correct PAYGATE_DATABASE_URL, or unset it" in done.stderr
    assert url.replace("secret", "***") in done.stderr and "secret" not in done.stderr


def test_up_with_a_redis_url_nobody_answers_says_so(tmp_path: Path) -> None:
    done = paygate(tmp_path, "up", *up_ports(), PAYGATE_REDIS_URL=closed_url("redis"))
    assert_one_line(done, "up", "correct PAYGATE_REDIS_URL, or unset it")


def test_up_on_a_state_dir_that_cannot_be_written_says_so(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    done = paygate(tmp_path, "up", *up_ports(), PAYGATE_STATE_DIR=str(blocker / "state"))
    assert_one_line(done, "up", "is not writable (")
    assert "set PAYGATE_STATE_DIR to a directory you can write" in done.stderr


def test_a_setting_that_is_not_a_number_is_named(tmp_path: Path) -> None:
    done = paygate(tmp_path, "up", PAYGATE_PORT="eighty")
    assert_one_line(done, "up", "PAYGATE_PORT='eighty' is not a whole number")


def test_demo_on_a_busy_port_says_so_before_starting_up(tmp_path: Path, busy_port: int) -> None:
    bank_port, sink_port = free_ports(2)
    done = paygate(tmp_path, "demo", "--port", str(busy_port), "--bank-port", str(bank_port),
                   "--sink-port", str(sink_port))  # fmt: skip
    assert_one_line(done, "demo", f"port {busy_port} is in use: pass --port")


# --- the single processes ---------------------------------------------------------------------


def test_serve_on_a_busy_port_says_so(tmp_path: Path, busy_port: int) -> None:
    done = paygate(tmp_path, "serve", "--port", str(busy_port),
                   PAYGATE_DATABASE_URL=closed_url("postgresql"),
                   PAYGATE_REDIS_URL=closed_url("redis"))  # fmt: skip
    assert_one_line(done, "serve", f"port {busy_port} is in use: pass --port")


def test_serve_without_storage_urls_says_which_to_set(tmp_path: Path) -> None:
    done = paygate(tmp_path, "serve", "--port", str(free_port()))
    assert_one_line(done, "serve", "PAYGATE_DATABASE_URL and PAYGATE_REDIS_URL must both be set")


def test_serve_with_a_database_nobody_answers_says_so(tmp_path: Path) -> None:
    done = paygate(tmp_path, "serve", "--port", str(free_port()),
                   PAYGATE_DATABASE_URL=closed_url("postgresql"),
                   PAYGATE_REDIS_URL=closed_url("redis"))  # fmt: skip
    assert_one_line(done, "serve", "correct PAYGATE_DATABASE_URL")


def test_serve_with_a_read_replica_nobody_answers_says_so(tmp_path: Path, storage: Storage) -> None:
    done = paygate(tmp_path, "serve", "--port", str(free_port()),
                   PAYGATE_DATABASE_URL=storage.admin_url, PAYGATE_REDIS_URL=storage.redis_url,
                   PAYGATE_DATABASE_READ_URL=closed_url("postgresql"))  # fmt: skip
    assert_one_line(done, "serve", "correct PAYGATE_DATABASE_READ_URL")
    assert "secret" not in done.stderr


def test_serve_with_a_read_url_that_is_not_a_standby_says_so(
    tmp_path: Path, storage: Storage
) -> None:
    done = paygate(tmp_path, "serve", "--port", str(free_port()),
                   PAYGATE_DATABASE_URL=storage.admin_url, PAYGATE_REDIS_URL=storage.redis_url,
                   PAYGATE_DATABASE_READ_URL=storage.admin_url)  # the primary itself  # fmt: skip
    assert_one_line(done, "serve", "is not a standby")


def test_up_with_a_read_url_and_no_database_url_says_so(tmp_path: Path) -> None:
    done = paygate(tmp_path, "up", *up_ports(),
                   PAYGATE_DATABASE_READ_URL=closed_url("postgresql"))  # fmt: skip
    assert_one_line(done, "up", "PAYGATE_DATABASE_URL is not")


def test_worker_without_a_bank_simulator_url_says_so(tmp_path: Path) -> None:
    done = paygate(tmp_path, "worker", PAYGATE_DATABASE_URL=closed_url("postgresql"),
                   PAYGATE_REDIS_URL=closed_url("redis"), PAYGATE_BANK_SIM_URL="")  # fmt: skip
    assert_one_line(done, "worker", "PAYGATE_BANK_SIM_URL is not set")


def test_worker_with_a_database_nobody_answers_says_so(tmp_path: Path) -> None:
    done = paygate(tmp_path, "worker", PAYGATE_DATABASE_URL=closed_url("postgresql"),
                   PAYGATE_REDIS_URL=closed_url("redis"),
                   PAYGATE_BANK_SIM_URL="http://127.0.0.1:1")  # fmt: skip
    assert_one_line(done, "worker", "correct PAYGATE_DATABASE_URL")


def test_bank_sim_on_a_busy_port_says_so(tmp_path: Path, busy_port: int) -> None:
    done = paygate(tmp_path, "bank-sim", "--port", str(busy_port))
    assert_one_line(done, "bank-sim", f"port {busy_port} is in use: pass --port")


def test_webhook_sink_without_its_secrets_file_says_so(tmp_path: Path) -> None:
    done = paygate(tmp_path, "webhook-sink", "--port", str(free_port()), "--secrets-file",
                   str(tmp_path / "missing.json"))  # fmt: skip
    assert_one_line(done, "webhook-sink", "pass --secrets-file with a JSON object")


def test_migrate_with_a_database_nobody_answers_says_so(tmp_path: Path) -> None:
    done = paygate(tmp_path, "migrate", PAYGATE_DATABASE_URL=closed_url("postgresql"))
    assert_one_line(done, "migrate", "correct PAYGATE_DATABASE_URL")


# --- scenario, bench, reconcile ---------------------------------------------------------------


def test_scenario_run_of_a_missing_file_says_so(tmp_path: Path) -> None:
    done = paygate(tmp_path, "scenario", "run", str(tmp_path / "nope.yaml"))
    assert_one_line(done, "scenario", "does not exist: name an existing YAML file")


def test_scenario_run_without_a_file_says_how_to_name_one(tmp_path: Path) -> None:
    done = paygate(tmp_path, "scenario", "run")
    assert_one_line(done, "scenario", "no scenario file given: name one")


def test_scenario_run_of_an_invalid_file_says_so_on_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nload: [unclosed\n  - 1\n")
    done = paygate(tmp_path, "scenario", "run", str(bad))
    assert_one_line(done, "scenario", "correct the file")


def test_bench_on_a_state_dir_that_cannot_be_written_says_so(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    done = paygate(tmp_path, "bench", "--quick", PAYGATE_STATE_DIR=str(blocker))
    assert_one_line(done, "bench", "is not writable (")


def test_bench_with_no_gateway_processes_says_so(tmp_path: Path) -> None:
    done = paygate(tmp_path, "bench", "--quick", "--workers", "0")
    assert_one_line(done, "bench", "--workers is 0: pass 1 or more")


def test_reconcile_with_no_gateway_running_says_to_start_one(tmp_path: Path) -> None:
    done = paygate(tmp_path, "reconcile", "--bank", "102", "--date", "2025-01-31")
    assert_one_line(done, "reconcile", "no gateway is running here")


def test_reconcile_after_the_gateway_stopped_says_so(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    gone = {"gateway_url": f"http://127.0.0.1:{free_port()}", "admin_token": "x"}
    (state / "run.json").write_bytes(orjson.dumps(gone))
    done = paygate(tmp_path, "reconcile", "--bank", "102", "--date", "2025-01-31")
    assert_one_line(done, "reconcile", f"the gateway at {gone['gateway_url']} is not answering")


@pytest.mark.parametrize("day", ["2025-13-01", "31/01/2025", "yesterday"])
def test_reconcile_with_a_bad_date_says_the_format(tmp_path: Path, day: str) -> None:
    done = paygate(tmp_path, "reconcile", "--bank", "102", "--date", day)
    assert_one_line(done, "reconcile", "is not a date: write it as YYYY-MM-DD")
