"""A real Redis Cluster for tests: 3 masters and 3 replicas of the embedded `redis-server`
on free local ports, formed with `redis-cli --cluster create`, each server stopped by its own
process handle."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.crc import key_slot

from gateway.storage.embedded import _redis_server_binary
from tests.harness import wait_until_sync

BUS_OFFSET = 10_000  # Redis 6.2 puts a node's cluster bus on its port + 10000 (no cluster-port)
NODE_TIMEOUT_MS = 1_000  # how long a master may be silent before its replica takes over


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_ports(n: int) -> list[int]:
    """`n` free ports whose cluster-bus ports (port + 10000) are free too."""
    out: list[int] = []
    with contextlib.ExitStack() as stack:
        while len(out) < n:
            s = stack.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
            if port + BUS_OFFSET < 65536 and _bindable(port + BUS_OFFSET) and port not in out:
                out.append(port)
    return out


@dataclass
class ClusterNode:
    port: int
    directory: Path
    process: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def address_tuple(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


@dataclass
class RedisClusterServers:
    nodes: list[ClusterNode] = field(default_factory=list)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(n.address for n in self.nodes)

    def node(self, port: int) -> ClusterNode:
        return next(n for n in self.nodes if n.port == port)

    def master_of(self, key: str) -> int:
        """The port of the master that holds `key`'s slot now (CLUSTER SLOTS of a live node)."""
        slot = key_slot(key.encode())
        for n in self.nodes:
            if n.process.poll() is not None:
                continue
            with redis.Redis(port=n.port, socket_timeout=2) as client:
                for start, end, master, *_ in client.execute_command("CLUSTER SLOTS"):
                    if int(start) <= slot <= int(end):
                        return int(master[1])
        raise LookupError(f"no live node maps slot {slot}")

    def replicas_of(self, master_port: int) -> list[int]:
        with redis.Redis(port=master_port, socket_timeout=2) as client:
            role = client.execute_command("ROLE")
        assert role[0] == b"master", role
        return [int(r[1]) for r in role[2]]


def _cli() -> str:
    path = Path(_redis_server_binary()).with_name("redis-cli")
    if path.exists():
        return str(path)
    found = shutil.which("redis-cli")
    assert found, "no redis-cli beside redis-server"
    return found


def _pong(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5) as s:
        s.sendall(b"PING\r\n")
        return s.recv(64).startswith(b"+PONG")
    return False


def _wait_ping(port: int, deadline_s: float) -> None:
    wait_until_sync(lambda: _pong(port), bool, timeout_s=deadline_s, interval_s=0.02)


def _cluster_ok(port: int) -> bool:
    out = subprocess.run([_cli(), "-p", str(port), "cluster", "info"], capture_output=True,
                         text=True, timeout=5).stdout  # fmt: skip
    return "cluster_state:ok" in out


@contextlib.contextmanager
def redis_cluster(
    base: Path, masters: int = 3, replicas_per_master: int = 1
) -> Iterator[RedisClusterServers]:
    """Start and form the cluster; stop every server on the way out."""
    servers = RedisClusterServers()
    try:
        for port in cluster_ports(masters * (1 + replicas_per_master)):
            directory = base / f"redis-{port}"
            directory.mkdir(parents=True)
            args = [
                _redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                # A slot without a master fails alone; the others keep answering.
                "--cluster-require-full-coverage", "no",
                "--save", "", "--appendonly", "no", "--dir", str(directory),
                "--logfile", str(directory / "redis.log"),
            ]  # fmt: skip
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)  # fmt: skip
            servers.nodes.append(ClusterNode(port, directory, proc))
        for n in servers.nodes:
            _wait_ping(n.port, 10)
        subprocess.run(
            [_cli(), "--cluster", "create", *(n.address for n in servers.nodes),
             "--cluster-replicas", str(replicas_per_master), "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        # Every node reports cluster_state:ok (polled, with a deadline).
        wait_until_sync(lambda: all(_cluster_ok(n.port) for n in servers.nodes), bool,
                        timeout_s=30, interval_s=0.05)  # fmt: skip
        yield servers
    finally:
        for n in servers.nodes:
            n.stop()
