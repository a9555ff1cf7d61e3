"""Test harness: real storage (embedded or PAYGATE_* URLs), a database per test, a live gateway."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import orjson
import redis.asyncio as aioredis

from gateway.api.app import build_app
from gateway.client import AdminClient, MerchantClient
from gateway.ports import free_port
from gateway.server import start_site
from gateway.settings import Settings
from gateway.storage.pools import init_connection

ADMIN_TOKEN = "test-admin-token-0123456789"
T = TypeVar("T")


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


async def create_database(admin_url: str, name: str, template: str | None = None) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        tpl = f" TEMPLATE {template} STRATEGY FILE_COPY" if template else ""
        await conn.execute(f"CREATE DATABASE {name}{tpl}")
    finally:
        await conn.close()


async def drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()


def unique_name(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:10]}"


async def wait_until(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    timeout_s: float = 10.0,
    interval_s: float = 0.02,
) -> T:
    """Poll `probe` until `done(result)` or the deadline (then fail with the last result)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await probe()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s; last: {result!r}")
        await asyncio.sleep(interval_s)


async def redis_time_s(url: str) -> int:
    """Redis's clock, whole seconds."""
    client = aioredis.Redis.from_url(url)
    try:
        seconds, _ = await client.time()
        return int(seconds)
    finally:
        await client.aclose()


async def redis_boot_s(url: str) -> int:
    """The second this Redis started, as risk/admission.lua reads it (TIME - uptime)."""
    client = aioredis.Redis.from_url(url)
    try:
        info = await client.info("server")
        return int(info["server_time_usec"]) // 1_000_000 - int(info["uptime_in_seconds"])
    finally:
        await client.aclose()


async def past_boot_second(url: str) -> None:
    """Wait until Redis's clock has left the second it started in: a request signed in that
    second is not admitted (it might have been signed before the start, admission.lua)."""
    boot_s = await redis_boot_s(url)
    await wait_until(lambda: redis_time_s(url), lambda s: s > boot_s)


def free_ports(n: int) -> list[int]:
    """`n` different free ports (each `free_port()` alone may hand out one port twice)."""
    ports: list[int] = []
    while len(ports) < n:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def wait_until_sync(
    probe: Callable[[], T],
    done: Callable[[T], bool],
    timeout_s: float = 10.0,
    interval_s: float = 0.05,
) -> T:
    """`wait_until` for synchronous code (e.g. a subprocess writing a file)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s; last: {result!r}")
        time.sleep(interval_s)


@dataclass
class Reply:
    """A raw HTTP answer: status, parsed JSON body (or None), headers."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def code(self) -> str | None:
        """The error code, in the bank simulator's (`{"code"}`) or the API's shape."""
        if not isinstance(self.body, dict):
            return None
        error = self.body.get("error")
        code = error.get("code") if isinstance(error, dict) else self.body.get("code")
        return str(code) if code is not None else None


async def raw_request(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    timeout_s: float = 5.0,
) -> Reply:
    """Send exactly these bytes and headers (for signature and bad-input tests)."""
    async with http.request(method, url, data=body, headers=headers,
                            timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:  # fmt: skip
        raw = await resp.read()
        return Reply(resp.status, orjson.loads(raw) if raw else None, dict(resp.headers))


@dataclass
class LiveGateway:
    url: str
    settings: Settings
    admin: AdminClient
    clients: list[MerchantClient] = field(default_factory=list)

    async def merchant(
        self, credit_fen: int = 0, **fields: Any
    ) -> tuple[dict[str, Any], MerchantClient]:
        fields.setdefault("name", "Test Merchant")
        fields.setdefault("rate_limit", {"rps": 10_000, "burst": 10_000})
        m = await self.admin.create_merchant(**fields)
        if credit_fen:
            resp = await self.admin.credit(m["id"], credit_fen, f"seed-{m['id']}")
            assert resp.status == 201, resp.body
        client = MerchantClient(self.url, m["id"], m["secret"])
        await client.__aenter__()
        self.clients.append(client)
        return m, client

    async def db(self) -> asyncpg.Connection:
        """A direct connection to this gateway's database, with the gateway's codecs (the
        caller closes it)."""
        conn = await asyncpg.connect(self.settings.database_url)
        await init_connection(conn)
        return conn

    async def ledger_ok(self) -> dict[str, Any]:
        resp = await self.admin.get("/admin/ledger/check")
        assert resp.status == 200, resp.body
        data: dict[str, Any] = resp.json()
        return data


@asynccontextmanager
async def live_gateway(settings: Settings, port: int = 0) -> AsyncIterator[LiveGateway]:
    app = build_app(settings)
    runner, port = await start_site(app, "127.0.0.1", port)
    url = f"http://127.0.0.1:{port}"
    admin = AdminClient(url, settings.admin_token)
    await admin.__aenter__()
    gw = LiveGateway(url=url, settings=settings, admin=admin)
    try:
        yield gw
    finally:
        for client in gw.clients:
            await client.close()
        await admin.close()
        await runner.cleanup()
