"""A Redis restart (SIGKILL: every nonce lost) does not reopen the replay window, and the
gateway reconnects by itself; while Redis is down, merchants get a clean 503 (SPEC 8, 14).

Timestamps are whole seconds and Redis's start is known to the second, so a request signed in
the second Redis started may have been used with the Redis before: it is refused with a 503
(sign again in a second). The tests wait, by polling Redis's clock, until the second they need
has passed; none depends on how fast a restart is.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.client import ApiResponse, MerchantClient
from gateway.settings import Settings
from gateway.storage.embedded import EmbeddedRedis
from protocol import signing
from tests.harness import (
    LiveGateway,
    live_gateway,
    past_boot_second,
    redis_boot_s,
    redis_time_s,
    wait_until,
)

SAME_SECOND_ATTEMPTS = 5


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
        await past_boot_second(private_redis.url)
        client, headers = await admitted_merchant(gw)
        signed_at_s = int(headers[signing.H_TIMESTAMP])
        # Restart two seconds after the signature: Redis reads its start from a clock that may
        # lag the one it answers TIME with by a tick, and a restart read in the signature's
        # second is the case of the next test (503, not 401).
        await wait_until(lambda: redis_time_s(private_redis.url), lambda s: s > signed_at_s + 1)
        kill(private_redis)
        private_redis.start()  # same socket, empty memory: the first nonce is forgotten
        assert await redis_boot_s(private_redis.url) > signed_at_s

        # The first request after the restart, on the gateway's now dead connections.
        replay = await client.request("GET", "/v1/balance", headers=headers)
        assert_error_body(replay, 401, "stale_request")
        await past_boot_second(private_redis.url)
        fresh = await client.get("/v1/balance")
        assert fresh.status == 200, fresh.body
        assert fresh.headers["X-RateLimit-Remaining"] == str(10_000 - 1)  # a new bucket


async def wall_fraction() -> float:
    return time.time() % 1


async def test_replay_of_a_request_signed_in_the_second_redis_restarted_is_refused(
    settings: Settings, private_redis: EmbeddedRedis
) -> None:
    """Signed, admitted, Redis killed and started again, all in one wall second: the replay
    cannot be told from a request signed after the start, so it is refused (503, nothing
    burned), and a request signed once that second has passed is admitted."""
    async with live_gateway(dataclasses.replace(settings, redis_url=private_redis.url)) as gw:
        for _ in range(SAME_SECOND_ATTEMPTS):
            await past_boot_second(private_redis.url)
            # Early in a second, so that admitting, killing and starting fit in the rest of it.
            await wait_until(wall_fraction, lambda f: f < 0.2, interval_s=0.005)
            client, headers = await admitted_merchant(gw)
            signed_at_s = int(headers[signing.H_TIMESTAMP])
            kill(private_redis)
            private_redis.start()
            if await redis_boot_s(private_redis.url) == signed_at_s:
                break
        else:
            pytest.fail(f"no restart within the signature's second in {SAME_SECOND_ATTEMPTS}")

        replay = await client.request("GET", "/v1/balance", headers=headers)
        assert_error_body(replay, 503, "rate_limiter_unavailable")
        assert replay.headers["Retry-After"] == "1"
        await past_boot_second(private_redis.url)
        fresh = await client.get("/v1/balance")
        assert fresh.status == 200, fresh.body


async def test_while_redis_is_down_merchants_get_503_and_the_gateway_reconnects(
    settings: Settings, private_redis: EmbeddedRedis
) -> None:
    async with live_gateway(dataclasses.replace(settings, redis_url=private_redis.url)) as gw:
        await past_boot_second(private_redis.url)
        client, _ = await admitted_merchant(gw)
        kill(private_redis)

        # Failing closed (the default): a 503 with the error body, never a 500.
        for _ in range(3):
            down = await client.get("/v1/balance")
            assert_error_body(down, 503, "rate_limiter_unavailable")
        ready = await gw.admin.get("/readyz")
        assert ready.status == 503 and ready.json()["checks"]["redis"].startswith("error")

        private_redis.start()
        await past_boot_second(private_redis.url)
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
        await past_boot_second(private_redis.url)
        client, _ = await admitted_merchant(gw)
        kill(private_redis)
        down = await client.get("/v1/balance")
        assert down.status == 200 and "X-RateLimit-Remaining" not in down.headers
        private_redis.start()
        await past_boot_second(private_redis.url)
        back = await client.get("/v1/balance")
        assert back.status == 200 and "X-RateLimit-Remaining" in back.headers
