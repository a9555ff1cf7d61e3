"""Benchmark: checks/s of merchant admission against a trivial EVALSHA and `limits`.

Run: python -m risk.bench_ratelimit --redis-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import itertools
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
import uvloop

from risk.ratelimit import MerchantAdmission

# Every check is admitted (the cheapest path for `limits`, the full path for us).
BENCH_RPS = 1_000_000
BENCH_BURST = 1_000_000
NONCE_WINDOW_S = 10  # the bench's nonce keys go soon after it ends
WARMUP_S = 0.3
LIMITS_DEPENDENCY = '"limits>=4.2",'  # 4.2 added the redis-py asyncio client


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def _checks_per_s(
    check: Callable[[], Awaitable[object]], callers: int, seconds: float
) -> float:
    """`callers` tasks each run `check` back to back until the deadline."""

    async def caller(deadline: float) -> int:
        done = 0
        while time.perf_counter() < deadline:
            await check()
            done += 1
        return done

    await asyncio.gather(*(caller(time.perf_counter() + WARMUP_S) for _ in range(callers)))
    started = time.perf_counter()
    counts = await asyncio.gather(*(caller(started + seconds) for _ in range(callers)))
    return sum(counts) / (time.perf_counter() - started)


async def _bench_admission(redis_url: str, callers: int, seconds: float) -> float:
    client = aioredis.Redis.from_url(redis_url, max_connections=callers)
    try:
        admission = MerchantAdmission(client, NONCE_WINDOW_S)
        merchant = f"bench-{uuid.uuid4().hex[:12]}"
        nonces = itertools.count()

        async def check() -> object:
            nonce = f"n{next(nonces)}"
            return await admission.admit(merchant, nonce, BENCH_RPS, BENCH_BURST, int(time.time()))

        return await _checks_per_s(check, callers, seconds)
    finally:
        await client.aclose()


async def _bench_trivial(redis_url: str, callers: int, seconds: float) -> float:
    client = aioredis.Redis.from_url(redis_url, max_connections=callers)
    try:
        script = client.register_script("return 1")

        async def check() -> object:
            return await script()

        return await _checks_per_s(check, callers, seconds)
    finally:
        await client.aclose()


async def _bench_limits(redis_url: str, callers: int, seconds: float) -> float | None:
    try:
        limits = importlib.import_module("limits")
        limits_storage = importlib.import_module("limits.aio.storage")
        limits_strategies = importlib.import_module("limits.aio.strategies")
    except ImportError:
        return None
    # limits spells a unix socket redis+unix:// (the embedded Redis listens on one).
    uri = redis_url.replace("unix://", "redis+unix://", 1)
    storage = limits_storage.RedisStorage(
        "async+" + uri, implementation="redispy", max_connections=callers
    )
    limiter = limits_strategies.MovingWindowRateLimiter(storage)
    item = limits.RateLimitItemPerSecond(BENCH_RPS)
    merchant = f"bench-{uuid.uuid4().hex[:12]}"

    async def check() -> object:
        allowed: bool = await limiter.hit(item, merchant)
        return allowed

    return await _checks_per_s(check, callers, seconds)


def _ratio(ours: float, other: float | None) -> float | None:
    return round(ours / other, 3) if other else None


async def run_bench(redis_url: str, callers: int = 64, seconds: float = 3.0) -> dict[str, Any]:
    """Checks/s of each contender on the same Redis, one after the other."""
    _progress(f"[1/3] MerchantAdmission.admit, {callers} callers, {seconds:g} s")
    ours = await _bench_admission(redis_url, callers, seconds)
    _progress(f"[2/3] trivial EVALSHA 'return 1', {callers} callers, {seconds:g} s")
    trivial = await _bench_trivial(redis_url, callers, seconds)
    _progress(f"[3/3] limits moving window (limits.aio), {callers} callers, {seconds:g} s")
    moving = await _bench_limits(redis_url, callers, seconds)
    if moving is None:
        _progress(f"      limits is not installed: add {LIMITS_DEPENDENCY} to run it")
    return {
        "callers": callers,
        "seconds": seconds,
        "checks_per_s": {
            "admission": round(ours),
            "trivial_evalsha": round(trivial),
            "limits_moving_window": None if moving is None else round(moving),
        },
        "ratios": {
            "admission_over_trivial": _ratio(ours, trivial),
            "admission_over_limits": _ratio(ours, moving),
        },
        "limits_installed": moving is not None,
    }


def table(result: dict[str, Any]) -> str:
    rates = result["checks_per_s"]
    ratios = result["ratios"]
    rows = [
        ("admission (nonce + GCRA)", rates["admission"], 1.0),
        ("trivial EVALSHA", rates["trivial_evalsha"], ratios["admission_over_trivial"]),
        ("limits moving window", rates["limits_moving_window"], ratios["admission_over_limits"]),
    ]
    lines = [f"{'contender':<28}{'checks/s':>12}{'ours/this':>12}"]
    for name, rate, ratio in rows:
        shown = "missing" if rate is None else f"{rate:,}"
        ratio_shown = "-" if ratio is None else f"{ratio:.3f}"
        lines.append(f"{name:<28}{shown:>12}{ratio_shown:>12}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m risk.bench_ratelimit", description=__doc__)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--callers", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    # uvloop, as the gateway runs.
    result = uvloop.run(run_bench(args.redis_url, args.callers, args.seconds))
    print(table(result))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
