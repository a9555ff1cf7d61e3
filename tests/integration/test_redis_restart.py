"""A Redis restart (SIGKILL: every nonce lost) does not reopen the replay window, and the
gateway reconnects by itself; while Redis is down, merchants get a clean 503 (SPEC 8, 14)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from gateway.client import ApiResponse, MerchantClient
from gateway.settings import Settings
from gateway.storage.embedded import EmbeddedRedis
from protocol import signing
from tests.harness import LiveGateway, live_gateway, wait_until


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A redis-server of this test's own (on a unix socket), so it can be killed."""
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def kill(server: EmbeddedRedis) -> None:
    assert server.process is not None
    server.process.kill()  # SIGKILL: nothing is saved (the embedded Redis keeps no files)
    server.process.wait()


async def redis_time_s(url: str) -> int:
    client = aioredis.Redis.from_url(url)
    try:
        seconds, _ = await client.time()
        return int(seconds)
    finally:
        await client.aclose()


def assert_error_body(resp: ApiResponse, status: int, code: str) -> None:
    assert resp.status == status, (resp.status, resp.body)
    error = resp.json()["error"]
    assert error["code"] == code and error["message"] and error["request_id"]


async def admitted_merchant(gw: LiveGateway) -> tuple[MerchantClient, dict[str, str]]:
    """A new merchant whose signed GET /v1/balance was admitted: its client, the exact headers."""
    m, client = await gw.merchant()
    headers = signing.sign_request(m["id"], m["secret"], "GET", "/v1/balance", b"")
    first = await client.request("GET", "/v1/balance", headers=headers)
    assert first.status == 200, first.body
    return client, headers


async def test_replay_after_a_redis_restart_is_refused_and_a_fresh_request_passes(
    settings: Settings, private_redis: EmbeddedRedis
) -> None:
    async with live_gateway(dataclasses.replace(settings, redis_url=private_redis.url)) as gw:
        client, headers = await admitted_merchant(gw)
        signed_at_s = int(headers[signing.H_TIMESTAMP])
        # Restart in a later second than the signature: within one second a replay still
        # passes (whole seconds, like the timestamp header; see admission.lua).
        await wait_until(lambda: redis_time_s(private_redis.url), lambda s: s > signed_at_s)
        kill(private_redis)
        private_redis.start()  # same socket, empty memory: the first nonce is forgotten

        # The first request after the restart, on the gateway's now dead connections.
        replay = await client.request("GET", "/v1/balance", headers=headers)
        assert_error_body(replay, 401, "stale_request")
        fresh = await client.get("/v1/balance")
        assert fresh.status == 200, fresh.body
        assert fresh.headers["X-RateLimit-Remaining"] == str(10_000 - 1)  # a new bucket


async def test_while_redis_is_down_merchants_get_503_and_the_gateway_reconnects(
    settings: Settings, private_redis: EmbeddedRedis
) -> None:
    async with live_gateway(dataclasses.replace(settings, redis_url=private_redis.url)) as gw:
        client, _ = await admitted_merchant(gw)
        kill(private_redis)

        # Failing closed (the default): a 503 with the error body, never a 500.
        for _ in range(3):
            down = await client.get("/v1/balance")
            assert_error_body(down, 503, "rate_limiter_unavailable")
        ready = await gw.admin.get("/readyz")
        assert ready.status == 503 and ready.json()["checks"]["redis"].startswith("error")

        private_redis.start()
        # The same gateway process, not restarted: the very next request is admitted.
        back = await client.get("/v1/balance")
        assert back.status == 200, back.body
        assert (await gw.admin.get("/readyz")).status == 200  # the redis-py pool is back too


async def test_failing_open_admits_while_redis_is_down_and_reconnects(
    settings: Settings, private_redis: EmbeddedRedis
) -> None:
    fail_open = dataclasses.replace(
        settings, redis_url=private_redis.url, rate_limit_fail_open=True
    )
    async with live_gateway(fail_open) as gw:
        client, _ = await admitted_merchant(gw)
        kill(private_redis)
        down = await client.get("/v1/balance")
        assert down.status == 200 and "X-RateLimit-Remaining" not in down.headers
        private_redis.start()
        back = await client.get("/v1/balance")
        assert back.status == 200 and "X-RateLimit-Remaining" in back.headers
