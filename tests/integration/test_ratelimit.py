"""Merchant admission on a real Redis: exact bursts, refill by the server clock, replays."""

from __future__ import annotations

import asyncio
import time
import uuid

import redis.asyncio as aioredis
from redis.crc import key_slot

from gateway.batching import GroupCommitter
from risk.ratelimit import Admission, AdmissionCheck, MerchantAdmission, boot_key
from tests.conftest import Storage
from tests.harness import unique_name, wait_until

WINDOW_S = 300


def fresh_nonce() -> str:
    return uuid.uuid4().hex


def now_s() -> int:
    """A signature timestamp: now, in whole seconds like the header."""
    return int(time.time())


async def server_time_s(redis: aioredis.Redis) -> float:
    seconds, micros = await redis.time()
    return int(seconds) + int(micros) / 1_000_000


async def burst_of(
    limiter: MerchantAdmission, merchant: str, n: int, rps: int, burst: int
) -> list[Admission]:
    calls = (limiter.admit(merchant, fresh_nonce(), rps, burst, now_s()) for _ in range(n))
    return list(await asyncio.gather(*calls))


async def test_concurrent_burst_admits_exactly_burst(redis_client: aioredis.Redis) -> None:
    limiter, merchant = MerchantAdmission(redis_client, WINDOW_S), unique_name("m")
    # At 1 rps no token refills while the 90 calls run (unless they take over a second);
    # 90 stays under redis-py's default pool of 100 connections, which refuses rather than waits.
    results = await burst_of(limiter, merchant, 90, rps=1, burst=30)
    assert sum(a.allowed for a in results) == 30
    refused = [a for a in results if not a.allowed]
    assert all(a.rate_limited and a.remaining == 0 and a.retry_after_s == 1 for a in refused)


async def test_figures_count_down_then_refuse(redis_client: aioredis.Redis) -> None:
    limiter, merchant = MerchantAdmission(redis_client, WINDOW_S), unique_name("m")
    seen = [await limiter.admit(merchant, fresh_nonce(), 1, 4, now_s()) for _ in range(5)]
    assert [a.allowed for a in seen] == [True, True, True, True, False]
    assert [a.remaining for a in seen] == [3, 2, 1, 0, 0]
    # k requests owed at 1 rps, less the few ms drained since: full again in k seconds.
    assert [a.reset_s for a in seen] == [1, 2, 3, 4, 4]
    assert [a.retry_after_s for a in seen] == [0, 0, 0, 0, 1]
    assert all(a.limit == 4 and not a.replayed for a in seen)


async def test_first_refill_takes_at_least_one_emission_interval(
    redis_client: aioredis.Redis,
) -> None:
    limiter, merchant = MerchantAdmission(redis_client, WINDOW_S), unique_name("m")
    rps, burst = 20, 3
    started_s = await server_time_s(redis_client)
    admitted = sum(a.allowed for a in await burst_of(limiter, merchant, 9, rps, burst))

    async def one() -> Admission:
        return await limiter.admit(merchant, fresh_nonce(), rps, burst, now_s())

    await wait_until(one, lambda a: a.allowed, timeout_s=10.0, interval_s=0.005)
    elapsed_s = await server_time_s(redis_client) - started_s
    # Server clock, bracketing every call: the bucket started full at or after `started_s`,
    # so the next admission needs the requests admitted beyond the burst, plus one, to drain.
    assert elapsed_s >= (admitted - burst + 1) / rps


async def test_refill_between_bursts_matches_the_rate(redis_client: aioredis.Redis) -> None:
    limiter, merchant = MerchantAdmission(redis_client, WINDOW_S), unique_name("m")
    rps, burst, n = 100, 10, 30
    empty_from_s = await server_time_s(redis_client)
    first = sum(a.allowed for a in await burst_of(limiter, merchant, n, rps, burst))
    empty_until_s = await server_time_s(redis_client)
    await wait_until(
        lambda: server_time_s(redis_client), lambda now_s: now_s >= empty_until_s + 0.05
    )
    probe_from_s = await server_time_s(redis_client)
    second = sum(a.allowed for a in await burst_of(limiter, merchant, n, rps, burst))
    probe_until_s = await server_time_s(redis_client)
    # At least what refilled between the two bursts (a full bucket is all admitted) ...
    assert second >= min(burst, int((probe_from_s - empty_until_s) * rps))
    # ... and, from a full bucket, no more than the burst plus all that refilled since.
    assert first + second <= burst + (probe_until_s - empty_from_s) * rps


async def test_replayed_nonce_is_refused_without_taking_a_token(
    redis_client: aioredis.Redis,
) -> None:
    limiter, merchant = MerchantAdmission(redis_client, WINDOW_S), unique_name("m")
    first = await limiter.admit(merchant, "nonce-abcdefgh-1234", 1, 5, now_s())
    again = await limiter.admit(merchant, "nonce-abcdefgh-1234", 1, 5, now_s())
    assert first.allowed and not first.replayed
    assert again.replayed and not again.allowed and not again.rate_limited
    assert again.remaining == 4
    after = await limiter.admit(merchant, fresh_nonce(), 1, 5, now_s())
    assert after.allowed and after.remaining == 3


async def test_replay_of_a_rate_refused_request_is_still_a_replay(
    redis_client: aioredis.Redis,
) -> None:
    limiter, merchant = MerchantAdmission(redis_client, WINDOW_S), unique_name("m")
    assert (await limiter.admit(merchant, fresh_nonce(), 1, 1, now_s())).allowed
    refused = await limiter.admit(merchant, "nonce-refused-000001", 1, 1, now_s())
    assert refused.rate_limited
    assert (await limiter.admit(merchant, "nonce-refused-000001", 1, 1, now_s())).replayed


async def test_nonce_is_per_merchant(redis_client: aioredis.Redis) -> None:
    limiter = MerchantAdmission(redis_client, WINDOW_S)
    a = await limiter.admit(unique_name("m"), "shared-nonce-000001", 1, 1, now_s())
    b = await limiter.admit(unique_name("m"), "shared-nonce-000001", 1, 1, now_s())
    assert a.allowed and b.allowed


async def test_keys_share_a_cluster_slot_and_expire(redis_client: aioredis.Redis) -> None:
    limiter, merchant = MerchantAdmission(redis_client, WINDOW_S), unique_name("m")
    await limiter.admit(merchant, "nonce-expiry-000001", 2, 3, now_s())
    nonce_key = f"pg:{{{merchant}}}:nonce:nonce-expiry-000001"
    state_key = f"pg:{{{merchant}}}:rl"
    assert key_slot(nonce_key.encode()) == key_slot(state_key.encode())
    assert key_slot(boot_key(merchant).encode()) == key_slot(state_key.encode())
    nonce_ttl_s = await redis_client.ttl(nonce_key)
    state_ttl_ms = await redis_client.pttl(state_key)
    assert 0 < nonce_ttl_s <= WINDOW_S
    # One request owed at 2 rps drains in 500 ms; the key goes then (the bucket is full).
    assert 0 < state_ttl_ms <= 501


async def test_script_is_loaded_again_after_a_flush(redis_client: aioredis.Redis) -> None:
    limiter, merchant = MerchantAdmission(redis_client, WINDOW_S), unique_name("m")
    assert (await limiter.admit(merchant, fresh_nonce(), 1, 2, now_s())).allowed
    await redis_client.script_flush()
    after = await limiter.admit(merchant, fresh_nonce(), 1, 2, now_s())
    assert after.allowed and after.remaining == 0


async def test_boot_key_is_the_servers_start(redis_client: aioredis.Redis) -> None:
    limiter, merchant = MerchantAdmission(redis_client, WINDOW_S), unique_name("m")
    before = await redis_client.info("server")
    assert (await limiter.admit(merchant, fresh_nonce(), 1, 2, now_s())).allowed
    after = await redis_client.info("server")
    boot_s = int(await redis_client.get(boot_key(merchant)))
    # Whole seconds: TIME - uptime, bracketed by the same figure read before and after.
    starts = [int(i["server_time_usec"]) // 1_000_000 - int(i["uptime_in_seconds"])
              for i in (before, after)]  # fmt: skip
    assert min(starts) - 1 <= boot_s <= max(starts) + 1


async def test_request_signed_before_or_in_the_second_redis_started_is_refused_burning_nothing(
    redis_client: aioredis.Redis,
) -> None:
    limiter, merchant = MerchantAdmission(redis_client, WINDOW_S), unique_name("m")
    boot_s = now_s()
    await redis_client.set(boot_key(merchant), boot_s)  # as if Redis had just started
    stale = await limiter.admit(merchant, "nonce-stale-0000001", 1, 3, boot_s - 1)
    assert stale.stale and not stale.allowed and not stale.replayed and not stale.rate_limited
    assert stale.remaining == 3 and stale.retry_after_s == 0
    # Signed in the boot second: before the start or after it, whole seconds cannot tell, so
    # it may have been used with the Redis before. Not admitted either, and nothing burned.
    unsure = await limiter.admit(merchant, "nonce-stale-0000001", 1, 3, boot_s)
    assert not unsure.allowed
    assert unsure.in_boot_second and not unsure.stale and not unsure.rate_limited
    assert unsure.remaining == 3 and unsure.retry_after_s == 0
    # Signed again a second later, the same nonce is still unused.
    again = await limiter.admit(merchant, "nonce-stale-0000001", 1, 3, boot_s + 1)
    assert again.allowed and not again.stale and again.remaining == 2


async def coalesced(
    limiter: MerchantAdmission, checks: list[AdmissionCheck], concurrency: int
) -> tuple[list[Admission], int]:
    """`checks` through the gateway's gathering (GroupCommitter over admit_many, a check that
    finds nothing in flight sent at once), at most `concurrency` in flight at once; the
    answers in order and the number of pipelines."""
    gate = asyncio.Semaphore(concurrency)
    committer: GroupCommitter[AdmissionCheck, Admission] = GroupCommitter(
        "admission",
        limiter.admit_many,
        max_items=256,
        max_concurrent=2,
        retry_singly=False,
        direct_when_idle=True,
    )
    await committer.start()

    async def one(check: AdmissionCheck) -> Admission:
        async with gate:
            return await committer.submit(check)

    try:
        results = list(await asyncio.gather(*(one(c) for c in checks)))
    finally:
        await committer.stop()
        await limiter.aclose()
    return results, committer.batches


async def test_coalesced_checks_admit_exactly_burst_under_64_way_concurrency(
    redis_client: aioredis.Redis,
) -> None:
    limiter, merchant = MerchantAdmission(redis_client, WINDOW_S), unique_name("m")
    burst = 40
    checks = [AdmissionCheck(merchant, fresh_nonce(), 1, burst, now_s()) for _ in range(3 * burst)]
    results, pipelines = await coalesced(limiter, checks, concurrency=64)
    assert sum(a.allowed for a in results) == burst
    # Every refusal is the rate limit's, with nothing left. (Which of 64 checks sent at the same
    # instant come first is not fixed: a check that found nothing in flight goes alone, and the
    # batch gathered behind it can reach Redis on the other connection before it.)
    refused = [a for a in results if not a.allowed]
    assert len(refused) == 2 * burst
    assert all(a.rate_limited and a.remaining == 0 for a in refused)
    assert pipelines < len(checks)  # they really were gathered


async def test_coalesced_replay_in_the_same_pipeline_is_refused_without_a_token(
    redis_client: aioredis.Redis,
) -> None:
    limiter, merchant = MerchantAdmission(redis_client, WINDOW_S), unique_name("m")
    nonce = "nonce-same-pipe-0001"
    checks = [AdmissionCheck(merchant, nonce, 1, 5, now_s()) for _ in range(3)]
    checks.append(AdmissionCheck(merchant, fresh_nonce(), 1, 5, now_s()))
    results, _ = await coalesced(limiter, checks, concurrency=64)
    assert [a.replayed for a in results] == [False, True, True, False]
    assert [a.allowed for a in results] == [True, False, False, True]
    assert results[-1].remaining == 3  # the replays took no token


async def test_coalesced_checks_load_the_script_again_after_a_flush(
    redis_client: aioredis.Redis,
) -> None:
    limiter, merchant = MerchantAdmission(redis_client, WINDOW_S), unique_name("m")
    await redis_client.script_flush()
    try:
        results = await limiter.admit_many([AdmissionCheck(merchant, fresh_nonce(), 1, 2, now_s())])
    finally:
        await limiter.aclose()
    assert results[0].allowed and results[0].remaining == 1


def test_admission_pipeline_runs_on_uvloop_like_the_gateway(storage: Storage) -> None:
    """The gateway runs on uvloop, whose transports are not asyncio.Transport subclasses
    (the tests' loop is asyncio's): one check end to end there, connection made and reused."""
    import uvloop

    async def main() -> list[Admission]:
        client = aioredis.Redis.from_url(storage.redis_url)
        limiter, merchant = MerchantAdmission(client, WINDOW_S), unique_name("m")
        try:
            return [
                (
                    await limiter.admit_many(
                        [AdmissionCheck(merchant, fresh_nonce(), 1, 2, now_s())]
                    )
                )[0]
                for _ in range(3)
            ]
        finally:
            await limiter.aclose()
            await client.aclose()

    first, second, third = uvloop.run(main())
    assert (first.allowed, second.allowed, third.rate_limited) == (True, True, True)
