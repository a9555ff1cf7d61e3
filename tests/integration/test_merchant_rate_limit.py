"""Per-merchant rate limits at the HTTP edge (SPEC 8): headers, 429, Redis down and back."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.settings import Settings
from gateway.storage.embedded import EmbeddedRedis
from tests.harness import LiveGateway, live_gateway, past_boot_second
from tests.payloads import payout_body


async def test_headers_count_down_on_every_response(gateway: LiveGateway) -> None:
    _, client = await gateway.merchant(rate_limit={"rps": 1, "burst": 5})
    first = await client.get("/v1/balance")
    second = await client.get("/v1/balance")
    assert first.status == second.status == 200
    assert first.headers["X-RateLimit-Limit"] == "5"
    assert int(first.headers["X-RateLimit-Remaining"]) == 4
    assert int(second.headers["X-RateLimit-Remaining"]) == 3
    assert 1 <= int(second.headers["X-RateLimit-Reset"]) <= 2
    assert "Retry-After" not in second.headers


async def test_burst_admits_exactly_burst_and_refuses_the_rest_with_retry_after(
    gateway: LiveGateway,
) -> None:
    _, client = await gateway.merchant(rate_limit={"rps": 1, "burst": 8})
    responses = await asyncio.gather(*(client.get("/v1/balance") for _ in range(20)))
    statuses = sorted(r.status for r in responses)
    assert statuses == [200] * 8 + [429] * 12
    refused = next(r for r in responses if r.status == 429)
    assert refused.error_code == "rate_limited"
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert refused.headers["X-RateLimit-Limit"] == "8"


async def test_limits_are_per_merchant(gateway: LiveGateway) -> None:
    _, hot = await gateway.merchant(rate_limit={"rps": 1, "burst": 2})
    _, calm = await gateway.merchant(rate_limit={"rps": 1, "burst": 2})
    assert [(await hot.get("/v1/balance")).status for _ in range(3)] == [200, 200, 429]
    assert (await calm.get("/v1/balance")).status == 200


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    # A short path: unix socket paths are limited to ~100 bytes.
    directory = Path(tempfile.mkdtemp(prefix="pgr-", dir="/tmp"))
    redis = EmbeddedRedis(directory)
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize("fail_open", [False, True])
async def test_redis_down_fails_closed_or_open_and_recovers_by_itself(
    settings: Settings, own_redis: EmbeddedRedis, fail_open: bool
) -> None:
    s = settings.with_(redis_url=own_redis.url, rate_limit_fail_open=fail_open)
    async with live_gateway(s) as gw:
        _, client = await gw.merchant(1_000_000)
        await past_boot_second(own_redis.url)
        assert (await client.get("/v1/balance")).status == 200
        own_redis.stop()
        down = await client.get("/v1/balance")
        payout = await client.post("/v1/payouts", payout_body(1_000))
        if fail_open:
            assert down.status == 200, down.body
            assert "X-RateLimit-Limit" not in down.headers
            assert payout.status == 201, payout.body  # funds checks never need Redis
        else:
            assert down.status == 503 and down.error_code == "rate_limiter_unavailable"
            assert payout.status == 503
        own_redis.start()
        await past_boot_second(own_redis.url)
        back = await client.get("/v1/balance")
        assert back.status == 200, back.body
        assert back.headers["X-RateLimit-Limit"]
