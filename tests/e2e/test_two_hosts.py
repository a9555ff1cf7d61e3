"""Many hosts, simulated honestly (SPEC 15, issue 26): two "hosts", each its own `paygate serve`
and `paygate worker` started separately with URLs on its own loopback address (127.0.0.2 and
127.0.0.3), in front of one PostgreSQL, a Redis Cluster (3 masters + 3 replicas) and one bank
simulator (the fault-heavy profile, its callbacks aimed at host A). Payouts go through both
hosts; host A's processes are SIGKILLed mid-run. Host B finishes the work: every acknowledged
payout ends final, none is submitted to the bank twice, the bank's paid set is the gateway's
settled set, the ledger holds.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import aiohttp
import pytest

from gateway.client import AdminClient, MerchantClient
from gateway.settings import Settings
from tests.banks import FAST_CHANNEL, FINAL_STATUSES, BankWorld, assert_bank_agrees, wait_all_final
from tests.e2e.test_bank_restart import BankProcess
from tests.harness import LiveGateway, free_port, wait_until, wait_until_sync
from tests.payloads import spread_payouts
from tests.redis_cluster import redis_cluster

PER_MERCHANT = 300  # four merchants, two per host: 1,200 payouts
START_TIMEOUT_S = 60.0  # a bound for a loaded machine, not a speed target
FINAL_BOUND_S = 180.0
# The workers' pacing as tests/banks.py FAST, as environment for separate processes.
FAST_ENV = {
    "PAYGATE_SUBMIT_TIMEOUT_S": "0.5",
    "PAYGATE_QUERY_TIMEOUT_S": "0.5",
    "PAYGATE_POLL_MAX_INTERVAL_S": "0.5",
    "PAYGATE_BANK_NO_RECORD_POLLS": "4",
    "PAYGATE_BANK_NO_RECORD_MIN_S": "1",
}


def loopback_alias_works(address: str) -> bool:
    with socket.socket() as s:
        try:
            s.bind((address, 0))
        except OSError:
            return False
    return True


class Host:
    """One host's processes: `paygate serve` on `address` and `paygate worker`, each started
    separately with URLs (the documented multi-host way to run)."""

    def __init__(self, name: str, address: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://{address}:{self.port}"
        self.address = address
        self.env = env
        self.log = log_dir / f"host-{name}.log"
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        with self.log.open("ab") as out:
            for args in (["serve", "--host", self.address, "--port", str(self.port)], ["worker"]):
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-m", "gateway", *args], env=self.env,
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                ))  # fmt: skip

        def healthy() -> bool:
            for proc in self.procs:
                assert proc.poll() is None, self.log.read_text()[-4000:]
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as resp:
                    return bool(resp.status == 200)
            except OSError:
                return False

        wait_until_sync(healthy, bool, timeout_s=START_TIMEOUT_S, interval_s=0.1)

    def kill(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGKILL)
        for proc in self.procs:
            proc.wait(timeout=10)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def hosts_and_bank(
    settings: Settings, redis_url: str, tmp_path: Path
) -> Iterator[tuple[Host, Host, BankProcess]]:
    base = {
        **os.environ,
        "PAYGATE_DATABASE_URL": settings.database_url,
        "PAYGATE_REDIS_URL": redis_url,
        "PAYGATE_ADMIN_TOKEN": settings.admin_token,
        "PAYGATE_BANK_MASTER_SECRET": settings.bank_master_secret,
        "PAYGATE_LOG_LEVEL": "WARNING",
        "PAYGATE_STATE_DIR": str(tmp_path / "state"),
        **FAST_ENV,
    }
    a_address, b_address = "127.0.0.2", "127.0.0.3"
    bank_env = {**base, "PAYGATE_BANK_PROFILE_PRESET": "fault_heavy"}
    bank = BankProcess(free_port(), tmp_path / "books.sqlite3", tmp_path / "bank.log", bank_env)
    host_env = {**base, "PAYGATE_BANK_SIM_URL": bank.url}
    a = Host("a", a_address, host_env, tmp_path)
    b = Host("b", b_address, host_env, tmp_path)
    bank.env["PAYGATE_CALLBACK_URL"] = a.url  # callbacks go to the host that will die
    started: list[Host | BankProcess] = []
    try:
        for part in (bank, a, b):
            part.start()
            started.append(part)
        yield a, b, bank
    finally:
        for part in reversed(started):
            part.stop()


@asynccontextmanager
async def world_via(settings: Settings, host: Host, sim_url: str) -> AsyncIterator[BankWorld]:
    """tests/banks.py's BankWorld over a gateway in another process (no workers of ours)."""
    admin = AdminClient(host.url, settings.admin_token)
    async with admin, aiohttp.ClientSession() as http:
        gw = LiveGateway(host.url, settings, admin)
        try:
            yield BankWorld(gw, sim_url, http, None, settings.bank_master_secret)  # type: ignore[arg-type]
        finally:
            for client in gw.clients:
                await client.__aexit__(None, None, None)


async def test_a_host_killed_mid_run_leaves_its_work_to_the_other(
    settings: Settings, tmp_path: Path
) -> None:
    if not (loopback_alias_works("127.0.0.2") and loopback_alias_works("127.0.0.3")):
        pytest.skip("this machine cannot bind 127.0.0.2/127.0.0.3")
    with (
        redis_cluster(tmp_path / "cluster") as cluster,
        hosts_and_bank(settings, cluster.url, tmp_path) as (a, b, bank),
    ):
        async with world_via(settings, b, bank.url) as world:
            for ch in ("102", "103", "104", "105", "308", "ibps"):
                resp = await world.gw.admin.patch(f"/admin/channels/{ch}", FAST_CHANNEL)
                assert resp.status == 200, resp.body
            # Two merchants send through host A, two through host B (each one batch).
            accepted: set[str] = set()
            through: dict[str, int] = {}
            for n, host in enumerate((a, b, a, b)):
                if n % 2:
                    m, _ = await world.gw.merchant(0, funding_mode="advance",
                                                   advance_limit=1_000_000_000)  # fmt: skip
                else:
                    m, _ = await world.gw.merchant(1_000_000_000, fee_fixed=50)
                items = spread_payouts(PER_MERCHANT, f"{n}")
                async with MerchantClient(host.url, m["id"], m["secret"]) as client:
                    resp = await client.post("/v1/payout-batches", {"items": items})
                assert resp.status == 200, resp.body
                body = resp.json()
                assert body["accepted"] == PER_MERCHANT, body["refused"]
                accepted |= {item["payout"]["id"] for item in body["items"]}
                through[host.name] = through.get(host.name, 0) + PER_MERCHANT

            # Kill host A once the bank holds a good part of the run, with much in flight.
            held = await wait_until(world.records_held, lambda k: k >= 1, timeout_s=60)
            assert held < len(accepted), "the run finished before the kill"
            a.kill()
            conn = await world.gw.db()
            try:
                open_at_kill = await conn.fetchval(
                    "SELECT count(*) FROM payouts WHERE NOT (status = ANY($1::text[]))",
                    sorted(FINAL_STATUSES),
                )
            finally:
                await conn.close()

            gateway = await wait_all_final(world, timeout_s=FINAL_BOUND_S)
            await assert_bank_agrees(world, accepted, gateway)
            print(f"two hosts: {through} payouts sent through each; host A killed with "
                  f"{held} records at the bank and {open_at_kill} payouts open")  # fmt: skip
            assert open_at_kill > 0, "nothing was left for host B"
