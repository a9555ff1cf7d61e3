"""`free_port` hands out ports outside the kernel's ephemeral range, where outgoing connections
take their local ports (CI once lost a reserved port to one: EADDRINUSE)."""

from __future__ import annotations

import random
import socket

import pytest

from gateway.ports import FREE_PORT_LOW, _ephemeral_low, free_port
from tests.harness import free_ports


def test_free_ports_lie_below_the_ephemeral_range_and_can_be_bound() -> None:
    low = _ephemeral_low()
    ports = free_ports(20)
    assert len(set(ports)) == 20
    for port in ports:
        assert FREE_PORT_LOW <= port < low, (port, low)
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_a_port_in_use_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", free_port()))
        held.listen()
        taken, other = held.getsockname()[1], free_port()
        picks = iter([taken, taken, other])
        monkeypatch.setattr(random, "randrange", lambda lo, hi: next(picks))
        assert free_port() == other
