"""The bank simulator on a free port with a small receiver app that checks each signed
callback: the harness of the bank simulator's tests (tests/integration/test_bank_sim_*)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import orjson
from aiohttp import web

from channels.bank_sim.app import build_bank_sim_app
from channels.bank_sim.config import BankSimConfig
from gateway.server import start_site
from protocol import signing
from protocol.keys import GATEWAY_KEY_ID, bank_secret
from tests.harness import Reply, raw_request, wait_until

MASTER = "test-bank-master-secret"
ICBC_CODE = "102100099996"
CCB_CODE = "105100000017"
T = TypeVar("T")


@dataclass
class Receiver:
    """Stands in for the gateway's /callbacks/{bank_id}: verifies and records each item, and the
    items of each POST together."""

    items: list[dict[str, Any]] = field(default_factory=list)
    posts: list[list[dict[str, Any]]] = field(default_factory=list)
    bad_signatures: int = 0
    fail_next: int = 0  # answer 500 to this many valid callbacks first

    def app(self) -> web.Application:
        async def callback(request: web.Request) -> web.Response:
            bank_id = request.match_info["bank_id"]
            body = await request.read()
            h = request.headers
            expected = signing.sign(
                bank_secret(MASTER, bank_id),
                h.get(signing.H_TIMESTAMP, ""),
                h.get(signing.H_NONCE, ""),
                request.method,
                request.raw_path,
                body,
            )
            given = h.get(signing.H_SIGNATURE, "")
            if h.get(signing.H_KEY) != bank_id or not signing.signature_matches(expected, given):
                self.bad_signatures += 1
                return web.Response(status=401)
            if self.fail_next > 0:
                self.fail_next -= 1
                return web.Response(status=500)
            post = [item | {"bank_id": bank_id} for item in orjson.loads(body)["items"]]
            self.posts.append(post)
            self.items.extend(post)
            return web.Response(status=200)

        app = web.Application()
        app.router.add_post("/callbacks/{bank_id}", callback)
        return app

    def for_ref(self, ref: str) -> list[dict[str, Any]]:
        return [item for item in self.items if item["ref"] == ref]


@dataclass
class LiveSim:
    url: str
    http: aiohttp.ClientSession
    receiver: Receiver

    async def signed(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        *,
        bank_id: str = "102",
        secret: str | None = None,
        timestamp: int | None = None,
        nonce: str | None = None,
        timeout_s: float = 5.0,
    ) -> Reply:
        headers = signing.sign_request(
            GATEWAY_KEY_ID,
            secret or bank_secret(MASTER, bank_id),
            method,
            path,
            body,
            timestamp=timestamp,
            nonce=nonce,
        )
        return await self.raw(method, path, body, headers, timeout_s=timeout_s)

    async def raw(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        *,
        timeout_s: float = 5.0,
    ) -> Reply:
        return await raw_request(self.http, method, self.url + path, body, headers, timeout_s)

    async def submit(self, payout: dict[str, Any], bank_id: str = "102", **kw: Any) -> Reply:
        path = f"/banks/{bank_id}/payouts"
        return await self.signed("POST", path, orjson.dumps(payout), bank_id=bank_id, **kw)

    async def submit_batch(
        self, items: list[dict[str, Any]], bank_id: str = "102", **kw: Any
    ) -> Reply:
        path = f"/banks/{bank_id}/payout-batches"
        body = orjson.dumps({"items": items})
        return await self.signed("POST", path, body, bank_id=bank_id, **kw)

    async def query(self, ref: str, bank_id: str = "102") -> Reply:
        return await self.signed("GET", f"/banks/{bank_id}/payouts/{ref}", bank_id=bank_id)

    async def put_profile(self, bank_id: str, patch: dict[str, Any]) -> Reply:
        return await self.raw("PUT", f"/banks/{bank_id}/profile", orjson.dumps(patch))

    async def script(self, bank_id: str, account_no: str, **script: Any) -> None:
        reply = await self.put_profile(bank_id, {"scripted": {account_no: script}})
        assert reply.status == 200, reply.body

    async def records(self, **query: str) -> list[dict[str, Any]]:
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        reply = await self.raw("GET", f"/sim/records?{qs}")
        assert reply.status == 200, reply.body
        data: list[dict[str, Any]] = reply.body["data"]
        return data

    async def stats(self) -> dict[str, Any]:
        reply = await self.raw("GET", "/sim/stats")
        assert reply.status == 200
        stats: dict[str, Any] = reply.body
        return stats

    async def final(self, ref: str, bank_id: str = "102") -> dict[str, Any]:
        async def done() -> dict[str, Any] | None:
            reply = await self.query(ref, bank_id)
            record: dict[str, Any] = reply.body
            return record if reply.status == 200 and record["status"] != "processing" else None

        return await wait_until(done, bool, timeout_s=5.0)

    async def idle(self) -> None:
        """Wait until no timer or callback task is pending in the simulator."""

        async def quiet() -> bool:
            pending: int = (await self.stats())["pending_timers"]
            return pending == 0

        await wait_until(quiet, bool, timeout_s=5.0)


async def callbacks_for(sim: LiveSim, ref: str, count: int) -> list[dict[str, Any]]:
    async def arrived() -> list[dict[str, Any]] | None:
        items = sim.receiver.for_ref(ref)
        return items if len(items) >= count else None

    return await wait_until(arrived, bool, timeout_s=5.0)


def payout(ref: str, account_no: str = "6222020200112233445", **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ref": ref,
        "amount": 10_000,
        "currency": "CNY",
        "payee": {
            "account_no": account_no,
            "account_name": "Zhang San",
            "bank_code": ICBC_CODE,
            "account_type": "personal",
        },
        "purpose": "salary",
    }
    return body | over


@asynccontextmanager
async def running_sim(books: Path | None = None) -> AsyncIterator[LiveSim]:
    """The simulator (seeded, `instant` preset) and a receiver for its callbacks; `books`
    keeps its books in that file across runs."""
    receiver = Receiver()
    rx_runner, rx_port = await start_site(receiver.app(), "127.0.0.1", 0)
    config = BankSimConfig(
        seed=7,
        callback_url=f"http://127.0.0.1:{rx_port}",
        master_secret=MASTER,
        preset="instant",
        books_path=books,
    )
    runner, port = await start_site(build_bank_sim_app(config), "127.0.0.1", 0)
    http = aiohttp.ClientSession()
    try:
        yield LiveSim(f"http://127.0.0.1:{port}", http, receiver)
    finally:
        await http.close()
        await runner.cleanup()
        await rx_runner.cleanup()
