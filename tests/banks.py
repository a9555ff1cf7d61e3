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
from channels.keys import bank_secret
from gateway.client import ApiResponse, MerchantClient
from gateway.payouts.state import FINAL
from gateway.server import start_site
from gateway.settings import Settings
from gateway.workers.runner import Workers, running_workers
from tests.harness import LiveGateway, free_port, live_gateway, wait_until

FINAL_STATUSES = {s.value for s in FINAL}

# Fast pacing for tests: short timeouts and polls, same code paths.
FAST = {
    "submit_timeout_s": 0.5,
    "query_timeout_s": 0.5,
    "unknown_first_query_ms": 50.0,
    "dispatch_idle_ms": 5.0,
    "poll_max_interval_s": 0.5,
    "bank_no_record_polls": 4,
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
    sim_url = f"http://127.0.0.1:{port}"
    world_settings = settings.with_(**FAST, bank_sim_url=sim_url)
    try:
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
    finally:
        await runner.cleanup()
