"""The preflight checks' own rules (issue 22): what counts as a busy port, which flags clash,
and what a supervised child leaves to its parent."""

from __future__ import annotations

import argparse
import socket

import pytest

from gateway.preflight import PreflightError, check, ports_free
from gateway.settings import Settings
from tests.harness import free_port


def test_a_port_left_in_time_wait_by_a_stopped_server_counts_as_free() -> None:
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp's servers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        served, _ = listener.accept()
        served.close()  # the server closes first: its side of the port waits in TIME_WAIT
        client.close()
    ports_free("127.0.0.1", [(port, "--port")])  # as a restarted server binds: it may


def test_two_flags_on_one_port_are_refused_by_name() -> None:
    port = free_port()
    with pytest.raises(PreflightError, match=f"--port and --bank-port are both {port}"):
        ports_free("127.0.0.1", [(port, "--port"), (port, "--bank-port")])


def test_a_port_out_of_range_is_refused() -> None:
    with pytest.raises(PreflightError, match="--port 70000 is not a port"):
        ports_free("127.0.0.1", [(70000, "--port")])


def test_a_supervised_gateway_is_not_refused_for_a_store_that_is_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `up` restarting its gateway while PostgreSQL restarts too: an outage, not a mistake.
    down = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    settings = Settings(database_url=down, redis_url=f"redis://127.0.0.1:{free_port()}/0",
                        port=free_port())  # fmt: skip
    args = argparse.Namespace(command="serve", reuse_port=False)
    with pytest.raises(PreflightError, match="is not reachable"):
        check(args, settings)
    monkeypatch.setenv("PAYGATE_PARENT_PID", "1")
    check(args, settings)
