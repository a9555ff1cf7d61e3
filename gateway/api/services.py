"""Everything a request handler may use, created and closed in one place (the app lifecycle)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web

from gateway.api.auth import NonceStore
from gateway.batching import GroupCommitter
from gateway.clock import SimClock
from gateway.merchants.repo import MerchantCache
from gateway.payouts.accept import AcceptItem, AcceptResult, accept_batch
from gateway.settings import Settings
from gateway.storage.pools import create_pg_pool, create_redis, load_clock
from risk.ratelimit import MerchantAdmission
from risk.rules import RiskRules


@dataclass
class Services:
    settings: Settings
    pool: asyncpg.Pool
    redis: aioredis.Redis
    clock: SimClock
    merchants: MerchantCache
    nonces: NonceStore  # bank callbacks; merchants go through `admission`
    admission: MerchantAdmission
    risk_rules: RiskRules
    accepts: GroupCommitter[AcceptItem, AcceptResult]
    _channel_ids: frozenset[str] | None = None

    async def channel_ids(self) -> frozenset[str]:
        """The bank channels that exist (rows are seeded by migrations and never deleted)."""
        if self._channel_ids is None:
            rows = await self.pool.fetch("SELECT id FROM channels")
            self._channel_ids = frozenset(r["id"] for r in rows)
        return self._channel_ids


SERVICES = web.AppKey("services", Services)


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    pool = await create_pg_pool(settings)
    redis = create_redis(settings)
    try:
        clock = await load_clock(pool, settings.time_scale)

        risk_rules = RiskRules(payee_velocity_per_hour=settings.payee_velocity_per_hour)

        async def accept_handler(items: Sequence[AcceptItem]) -> list[AcceptResult]:
            async with pool.acquire() as conn:
                return await accept_batch(conn, items, clock.now(), risk_rules)

        accepts = GroupCommitter(
            "accept",
            accept_handler,
            max_items=settings.accept_batch_max,
            max_wait_s=settings.accept_batch_wait_ms / 1000,
            max_concurrent=settings.accept_concurrency,
        )
        await accepts.start()
        try:
            yield Services(
                settings=settings,
                pool=pool,
                redis=redis,
                clock=clock,
                merchants=MerchantCache(pool, settings.merchant_cache_ttl_s),
                nonces=NonceStore(
                    redis, settings.signature_window_s, settings.rate_limit_fail_open
                ),
                accepts=accepts,
                admission=MerchantAdmission(redis, settings.signature_window_s),
                risk_rules=risk_rules,
            )
        finally:
            await accepts.stop()
    finally:
        await redis.aclose()
        await pool.close()
