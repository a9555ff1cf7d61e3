"""Free TCP ports, for servers that must be told their port before they start."""

from __future__ import annotations

import random
import socket

# Ports handed out by `free_port` lie from here up to the kernel's ephemeral range.
FREE_PORT_LOW = 20_000
EPHEMERAL_RANGE = "/proc/sys/net/ipv4/ip_local_port_range"


def free_port(host: str = "127.0.0.1") -> int:
    """A free TCP port on `host`, for a server that must be told its port before it starts
    (a child process; a simulator that calls the gateway back).

    Picked below the kernel's ephemeral range when there is room: `bind(0)` hands out a port
    from that range, where every outgoing connection also takes its local port, so on a busy
    machine (a test run's own clients) one of them could take the port before the server
    binds it; CI saw exactly that (EADDRINUSE). Below the range only another `free_port`
    caller can, one chance in thousands."""
    low = _ephemeral_low()
    for _ in range(50 if low - FREE_PORT_LOW >= 1_000 else 0):
        port = random.randrange(FREE_PORT_LOW, low)
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind((host, 0))
        bound: int = s.getsockname()[1]
        return bound


def _ephemeral_low() -> int:
    try:
        with open(EPHEMERAL_RANGE) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default; elsewhere the bind still checks the port
