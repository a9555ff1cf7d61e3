"""Test harness for bank traffic: a live gateway, the real bank simulator on a real port, and the
workers (dispatcher, poller) between them — all started and stopped by the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from channels.bank_sim.app import build_bank_sim_app
from channels.bank_sim.config import BankSimConfig
from gateway.client import ApiResponse, MerchantClient
from gateway.payouts.state import FINAL
from gateway.server import start_site
from gateway.settings import Settings
from gateway.workers.runner import Workers, running_workers
from protocol.keys import bank_secret
from tests.harness import LiveGateway, free_port, live_gateway, wait_until
from tests.payloads import spread_payouts

FINAL_STATUSES = {s.value for s in FINAL}

# Fast pacing for tests: short timeouts and polls, same code paths.
FAST = {
    "submit_timeout_s": 0.5,
    "query_timeout_s": 0.5,
    "unknown_first_query_ms": 50.0,
    "dispatch_idle_ms": 5.0,
    "poll_max_interval_s": 0.5,
    "bank_no_record_polls": 4,
    "bank_no_record_min_s": 1.0,
}
# Channels in tests: breakers trip fast and probe soon; silent payouts are polled quickly.
FAST_CHANNEL = {"expected_ms": 400, "failure_threshold": 3, "open_ms": 300}


@dataclass
class BankWorld:
    gw: LiveGateway
    sim_url: str
    http: aiohttp.ClientSession
    workers: Workers
    master_secret: str

    async def sim_get(self, path: str) -> Any:
        async with self.http.get(self.sim_url + path) as resp:
            assert resp.status == 200, (path, resp.status, await resp.text())
            return orjson.loads(await resp.read())

    async def profile(self, bank_id: str, **fields: Any) -> dict[str, Any]:
        async with self.http.put(
            f"{self.sim_url}/banks/{bank_id}/profile", data=orjson.dumps(fields)
        ) as resp:
            body = await resp.read()
            assert resp.status == 200, (resp.status, body)
            data: dict[str, Any] = orjson.loads(body)
            return data

    async def script(self, bank_id: str, account_no: str, **script: Any) -> None:
        current = await self.sim_get(f"/banks/{bank_id}/profile")
        scripted = dict(current.get("scripted") or {})
        scripted[account_no] = script
        await self.profile(bank_id, scripted=scripted)

    async def records_held(self) -> int:
        """How many payments the bank simulator holds over all its banks (`/sim/stats`)."""
        stats: dict[str, Any] = await self.sim_get("/sim/stats")
        return sum(sum(bank["records"].values()) for bank in stats["banks"].values())

    async def records(self, **query: str) -> list[dict[str, Any]]:
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        data = await self.sim_get(f"/sim/records?{qs}" if qs else "/sim/records")
        records: list[dict[str, Any]] = data["data"]
        return records

    async def record(self, ref: str) -> dict[str, Any]:
        found = [r for r in await self.records() if r["ref"] == ref]
        assert len(found) == 1, (ref, found)
        return found[0]

    async def channel(self, channel_id: str, **patch: Any) -> dict[str, Any]:
        if patch:
            resp = await self.gw.admin.patch(f"/admin/channels/{channel_id}", patch)
            assert resp.status == 200, resp.body
        resp = await self.gw.admin.get("/admin/channels")
        assert resp.status == 200, resp.body
        found: dict[str, Any] = next(c for c in resp.json()["data"] if c["id"] == channel_id)
        return found

    async def wait_payout(
        self, client: MerchantClient, payout_id: str, statuses: set[str] | None = None,
        timeout_s: float = 15.0,
    ) -> dict[str, Any]:  # fmt: skip
        wanted = statuses or FINAL_STATUSES

        async def probe() -> dict[str, Any]:
            resp = await client.get(f"/v1/payouts/{payout_id}")
            assert resp.status == 200, resp.body
            data: dict[str, Any] = resp.json()
            return data

        return await wait_until(probe, lambda p: p["status"] in wanted, timeout_s=timeout_s)

    def bank_client(self, bank_id: str, secret: str | None = None) -> MerchantClient:
        """A client signing as bank `bank_id` (the same scheme as merchants)."""
        key_secret = secret or bank_secret(self.master_secret, bank_id)
        client = MerchantClient(self.gw.url, bank_id, key_secret)
        self.gw.clients.append(client)
        return client

    async def callback(self, bank_id: str, items: list[dict[str, Any]]) -> ApiResponse:
        return await self.bank_client(bank_id).post(f"/callbacks/{bank_id}", {"items": items})


@asynccontextmanager
async def bank_world(
    settings: Settings, *, preset: str = "default", seed: int = 7, fast_channels: bool = True
) -> AsyncIterator[BankWorld]:
    # The simulator calls the gateway back and the gateway calls the simulator: reserve the
    # gateway's port first, start the simulator pointing at it, then the gateway.
    gateway_port = free_port()
    sim_app = build_bank_sim_app(BankSimConfig(
        seed=seed, time_scale=settings.time_scale, master_secret=settings.bank_master_secret,
        callback_url=f"http://127.0.0.1:{gateway_port}", preset=preset,
    ))  # fmt: skip
    runner, port = await start_site(sim_app, "127.0.0.1", 0)
    try:
        async with world_at(settings, f"http://127.0.0.1:{port}", gateway_port,
                            fast_channels=fast_channels) as world:  # fmt: skip
            yield world
    finally:
        await runner.cleanup()


@asynccontextmanager
async def world_at(
    settings: Settings, sim_url: str, gateway_port: int, *, fast_channels: bool = True
) -> AsyncIterator[BankWorld]:
    """A gateway on `gateway_port` and its workers, in front of a simulator already at
    `sim_url` (in this process or its own)."""
    world_settings = settings.with_(**FAST, bank_sim_url=sim_url)
    async with (
        live_gateway(world_settings, gateway_port) as gw,
        aiohttp.ClientSession() as http,
    ):
        if fast_channels:
            for ch in ("102", "103", "104", "105", "308", "ibps"):
                resp = await gw.admin.patch(f"/admin/channels/{ch}", FAST_CHANNEL)
                assert resp.status == 200, resp.body
        async with running_workers(world_settings) as workers:
            yield BankWorld(gw, sim_url, http, workers, settings.bank_master_secret)


@asynccontextmanager
async def certain_world(settings: Settings) -> AsyncIterator[BankWorld]:
    """A bank world whose bank 102 pays and debits every time (only what a test scripts goes
    wrong), and whose ledger check must pass at the end."""
    async with bank_world(settings) as w:
        await w.profile("102", outcomes={"succeeded": 1.0},
                        collection_outcomes={"succeeded": 1.0})  # fmt: skip
        yield w
        check = await w.gw.ledger_ok()
        assert check["ok"] is True, [c for c in check["checks"] if not c["ok"]]


async def submit_spread_run(world: BankWorld, per_merchant: int) -> set[str]:
    """Two prefunded and two advance merchants each submit `per_merchant` payouts to spread
    payees (one payout batch each); returns the accepted payout ids."""
    clients: list[MerchantClient] = []
    for _ in range(2):
        _, c = await world.gw.merchant(1_000_000_000, fee_fixed=50, fee_bps=10)
        clients.append(c)
        _, c = await world.gw.merchant(0, funding_mode="advance",
                                       advance_limit=1_000_000_000, fee_fixed=30)  # fmt: skip
        clients.append(c)
    accepted: set[str] = set()
    for n, client in enumerate(clients):
        resp = await client.post("/v1/payout-batches",
                                 {"items": spread_payouts(per_merchant, f"{n}")})  # fmt: skip
        assert resp.status == 200, resp.body
        body = resp.json()
        assert body["accepted"] == per_merchant, body["refused"]
        accepted |= {item["payout"]["id"] for item in body["items"]}
    return accepted


async def wait_all_final(world: BankWorld, timeout_s: float) -> dict[str, dict[str, Any]]:
    """Poll (with a deadline) until no payout is open; every payout row by id."""
    conn = await world.gw.db()
    try:

        async def open_count() -> int:
            n: int = await conn.fetchval(
                "SELECT count(*) FROM payouts WHERE NOT (status = ANY($1::text[]))",
                sorted(FINAL_STATUSES),
            )
            return n

        await wait_until(open_count, lambda n: n == 0, timeout_s=timeout_s, interval_s=0.5)
        rows = await conn.fetch("SELECT id, status, failure_code FROM payouts")
    finally:
        await conn.close()
    return {r["id"]: dict(r) for r in rows}


async def assert_bank_agrees(
    world: BankWorld, accepted: set[str], gateway: dict[str, dict[str, Any]]
) -> None:
    """Nothing lost, nothing submitted twice, the bank's paid set is the gateway's settled
    set, every failure the bank reported is a failure here, and the ledger holds."""
    status = {pid: row["status"] for pid, row in gateway.items()}
    assert set(status) == accepted
    records = await world.records()
    bank_paid = {r["ref"] for r in records if r["status"] in ("succeeded", "returned")}
    gateway_paid = {pid for pid, s in status.items() if s in ("succeeded", "returned")}
    assert bank_paid == gateway_paid
    assert all(r["submissions"] == 1 for r in records), "a payout was submitted twice"
    assert {r["ref"] for r in records} <= accepted
    # Every failure the bank reported is a failure here too (the rest never reached it).
    bank_failed = {r["ref"] for r in records if r["status"] == "failed"}
    assert all(status[ref] == "failed" for ref in bank_failed)
    assert {"succeeded", "failed"} <= set(status.values())
    check = await world.gw.ledger_ok()
    assert check["ok"], [c for c in check["checks"] if not c["ok"]]
