"""The overview's figures over time: once a second, while someone has the console open, one
process (a Redis lease) counts what was accepted and finalized since the last sample (a
primary-key range: ids are time-ordered), reads the advance pool, and takes request p99 from
the metrics; the last 5 minutes are kept in Redis, shared by every gateway process.

Nobody watching: no sampling at all, so the console costs the payout path nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Final

import orjson
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from gateway.api.services import Services
from gateway.console.sessions import key_prefix
from protocol.ids import floor_id

log = logging.getLogger("paygate.console")

INTERVAL_S: Final = 1.0
KEEP: Final = 300  # samples: 5 minutes
WATCH_S: Final = 120  # a console request keeps the sampling on this long
SAMPLES: Final = "samples"  # keys under the console's prefix (sessions.key_prefix)
WATCH: Final = "watching"
LEASE: Final = "sample-lease"
FINAL_EVENTS: Final = ["payout.succeeded", "payout.failed", "payout.rejected"]

SAMPLE_SQL: Final = """
SELECT (SELECT count(*) FROM payouts WHERE id >= $1 AND id < $2) AS accepted,
       (SELECT count(*) FROM outbox_events WHERE id >= $3 AND id < $4
                                            AND type = ANY($5::text[])) AS finalized,
       (SELECT used_fen FROM advance_pool WHERE id = 1) AS pool_used,
       (SELECT cap_fen FROM advance_pool WHERE id = 1) AS pool_cap"""


def _key(services: Services, name: str) -> str:
    return key_prefix(services.settings.database_url) + name


def p99_ms(before: dict[float, float], after: dict[float, float]) -> float | None:
    """The 99th percentile's bucket bound (ms) of the requests between two cumulative
    histograms ({bound: count})."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    if total <= 0:
        return None
    for bound, count in zip(bounds, counts, strict=True):
        if count >= 0.99 * total:
            return bound * 1000 if bound != float("inf") else None
    return None


def from_metrics(metrics_text: str) -> tuple[dict[float, float], int]:
    """Cumulative request-latency buckets summed over the merchant API's routes, and the
    notifications given up on (failed) since the processes started."""
    buckets: dict[float, float] = {}
    failed = 0.0
    for family in text_string_to_metric_families(metrics_text):
        if family.name == "paygate_http_request_duration_seconds":
            for s in family.samples:
                if s.name.endswith("_bucket") and s.labels.get("route", "").startswith("/v1/"):
                    bound = float(s.labels["le"])
                    buckets[bound] = buckets.get(bound, 0.0) + s.value
        elif family.name == "paygate_notification_attempts":
            for s in family.samples:
                if s.name.endswith("_total") and s.labels.get("outcome") == "failed":
                    failed += s.value
    return buckets, int(failed)


class Sampler:
    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._marked_at = float("-inf")
        self._buckets: dict[float, float] = {}

    async def watched(self, services: Services) -> None:
        """Called by each console request: sampling runs while someone looks."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(services), name="console-sampler")
        now = time.monotonic()
        if now - self._marked_at > 10:
            self._marked_at = now
            await services.redis.set(_key(services, WATCH), b"1", ex=WATCH_S)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self, services: Services) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=INTERVAL_S)  # the period
            if self._stop.is_set():
                return
            try:
                await self._maybe_sample(services)
            except Exception as exc:  # the overview shows a gap; the next second tries again
                log.warning("console sample failed", extra={"error": repr(exc)})

    async def _maybe_sample(self, services: Services) -> None:
        redis = services.redis
        if not await redis.exists(_key(services, WATCH)):
            return
        if not await redis.set(_key(services, LEASE), b"1", nx=True, px=int(INTERVAL_S * 900)):
            return  # another process samples this second
        now = time.time()
        last = await redis.lindex(_key(services, SAMPLES), -1)
        since = orjson.loads(last)["t"] if last else now - INTERVAL_S
        since = max(since, now - 10 * INTERVAL_S)  # after a pause, count at most 10 s
        row = await services.pool.fetchrow(
            SAMPLE_SQL, floor_id("po", since), floor_id("po", now), floor_id("evt", since),
            floor_id("evt", now), FINAL_EVENTS,
        )  # fmt: skip
        buckets, notify_failed = from_metrics(services.metrics.render().decode())
        p99 = p99_ms(self._buckets, buckets) if self._buckets else None
        self._buckets = buckets
        span = max(now - since, 1e-3)
        sample: dict[str, Any] = {
            "t": now,
            "accepted_per_s": round(row["accepted"] / span, 2),
            "finalized_per_s": round(row["finalized"] / span, 2),
            "pool_used": row["pool_used"],
            "pool_cap": row["pool_cap"],
            "p99_ms": p99,
            "notify_failed": notify_failed,
        }
        async with redis.pipeline(transaction=True) as pipe:
            pipe.rpush(_key(services, SAMPLES), orjson.dumps(sample))
            pipe.ltrim(_key(services, SAMPLES), -KEEP, -1)
            await pipe.execute()


async def samples(services: Services) -> list[dict[str, Any]]:
    raw = await services.redis.lrange(_key(services, SAMPLES), 0, -1)
    return [orjson.loads(r) for r in raw]


SAMPLER: Final = web.AppKey("console_sampler", Sampler)
