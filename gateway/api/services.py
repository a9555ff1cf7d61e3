"""Everything a request handler may use, created and closed in one place (the app lifecycle)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import asyncpg
from aiohttp import web

from channels.client import B2BBank, BankClient
from gateway.accounts.transfers import TransferItem, TransferResult, transfer_batch
from gateway.api.auth import NonceStore
from gateway.batching import GroupCommitter
from gateway.merchants.repo import MerchantCache
from gateway.metrics import ADMISSIONS, Metrics, in_hop
from gateway.payouts.accept import AcceptResult, accept_batch
from gateway.payouts.accept_fast import accept_fast
from gateway.payouts.model import AcceptItem
from gateway.payouts.transitions import Applied, PayoutEvent, apply_events
from gateway.settings import Settings
from gateway.storage.pools import (
    RedisClient,
    create_pg_pool,
    create_read_pool,
    create_redis,
    follow_clock,
    load_clock,
)
from gateway.storage.replica import ReadRouter
from gateway.system_gauges import SystemGauges
from protocol.clock import SimClock
from risk.ratelimit import Admission, AdmissionCheck, MerchantAdmission, admission_outcome
from risk.rules import RiskRules


@dataclass
class Services:
    settings: Settings
    metrics: Metrics
    gauges: SystemGauges  # read from the database when /metrics is scraped
    pool: asyncpg.Pool
    reads: ReadRouter  # merchant lists: the read replica when it has the merchant's writes
    redis: RedisClient  # one server, or a cluster (redis+cluster://)
    clock: SimClock
    merchants: MerchantCache
    nonces: NonceStore  # bank callbacks; merchants go through `admission`
    admission: MerchantAdmission
    admissions: GroupCommitter[AdmissionCheck, Admission]  # admission.admit_many, gathered
    risk_rules: RiskRules
    bank: BankClient | None  # None without a bank simulator URL (reconciliation answers 503)
    b2b_bank: B2BBank | None  # None without a bank simulator URL: B2B answers 503
    accepts: GroupCommitter[AcceptItem, AcceptResult]
    payout_events: GroupCommitter[Sequence[PayoutEvent], list[Applied]]  # bank callbacks
    transfers: GroupCommitter[TransferItem, TransferResult]  # SPEC 16 internal transfers
    _channels: dict[str, str] | None = None  # id -> kind

    async def _channel_kinds(self) -> dict[str, str]:
        # Channel rows are seeded by migrations and never deleted.
        if self._channels is None:
            rows = await self.pool.fetch("SELECT id, kind FROM channels")
            self._channels = {r["id"]: r["kind"] for r in rows}
        return self._channels

    async def channel_ids(self) -> frozenset[str]:
        """Every bank channel (callbacks may come from any)."""
        return frozenset(await self._channel_kinds())

    async def bank_channel_ids(self) -> frozenset[str]:
        """Channels that are banks (a B2B payment comes from one; not the interbank system)."""
        return frozenset(i for i, kind in (await self._channel_kinds()).items() if kind == "bank")


SERVICES = web.AppKey("services", Services)
TRANSFER_BATCH_MAX = 256  # transfers decided in one transaction
CALLBACK_BATCHES = 2  # bank callback batches applied at once


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    metrics = Metrics("gateway")
    pool = await create_pg_pool(settings, metrics)
    # Accepts and bank callbacks: their own connections, on generic plans (Settings
    # .generic_plans), one for each batch their group commits may have in flight.
    hot_pool = await create_pg_pool(
        settings, metrics, generic_plans=settings.generic_plans,
        max_size=settings.accept_concurrency + CALLBACK_BATCHES,
    )  # fmt: skip
    read_pool = await create_read_pool(settings, metrics)
    redis = create_redis(settings)
    reads = ReadRouter(pool, read_pool, redis, settings.database_read_max_lag_s, metrics)
    bank_http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
    stop_clock = asyncio.Event()
    clock_task: asyncio.Task[None] | None = None
    await metrics.start()
    try:
        clock = await load_clock(pool, settings.time_scale)
        clock_task = asyncio.create_task(follow_clock(pool, clock, stop_clock), name="clock")
        await reads.start()
        bank = b2b_bank = None
        if settings.bank_sim_url:
            bank = BankClient(
                bank_http, settings.bank_sim_url, settings.bank_master_secret,
                submit_timeout_s=settings.submit_timeout_s,
                query_timeout_s=settings.query_timeout_s,
            )  # fmt: skip
            b2b_bank = B2BBank(bank)

        risk_rules = RiskRules(payee_velocity_per_hour=settings.payee_velocity_per_hour)

        async def accept_handler(items: Sequence[AcceptItem]) -> list[AcceptResult]:
            in_hop("accept")
            now = clock.now()
            async with hot_pool.acquire() as conn:
                if settings.accept_fast:
                    done = await accept_fast(conn, items, now, risk_rules)
                    if done is not None:
                        return done
                return await accept_batch(conn, items, now, risk_rules)

        # A payout that finds no batch in flight is written at once from its request's task;
        # those that find one gather for PAYGATE_ACCEPT_BATCH_WAIT_MS after it (fewer, larger
        # transactions under load: without the wait, ~1.09x the CPU per payout at 700/s).
        accepts = GroupCommitter(
            "accept",
            accept_handler,
            max_items=settings.accept_batch_max,
            max_wait_s=settings.accept_batch_wait_ms / 1000,
            max_concurrent=settings.accept_concurrency,
            direct_when_idle=True,
            metrics=metrics,
        )
        await accepts.start()

        async def events_handler(groups: Sequence[Sequence[PayoutEvent]]) -> list[list[Applied]]:
            in_hop("callback")
            flat = [e for g in groups for e in g]
            async with hot_pool.acquire() as conn:
                applied = await apply_events(conn, flat)
            out, i = [], 0
            for g in groups:
                out.append(applied[i : i + len(g)])
                i += len(g)
            return out

        payout_events: GroupCommitter[Sequence[PayoutEvent], list[Applied]] = GroupCommitter(
            "callbacks",
            events_handler,
            max_items=128,
            max_concurrent=CALLBACK_BATCHES,
            metrics=metrics,
        )
        await payout_events.start()

        async def transfer_handler(items: Sequence[TransferItem]) -> list[TransferResult]:
            in_hop("transfer")
            async with pool.acquire() as conn:
                return await transfer_batch(conn, items)

        # One batch at a time, like accepts: batches on one hot account would only queue on
        # its row lock, and one transaction decides a whole batch in order.
        transfers = GroupCommitter(
            "transfer", transfer_handler, max_items=TRANSFER_BATCH_MAX, max_concurrent=1,
            metrics=metrics,
        )  # fmt: skip
        await transfers.start()
        admission = MerchantAdmission(redis, settings.signature_window_s)

        async def admit_counted(checks: Sequence[AdmissionCheck]) -> list[Admission | Exception]:
            try:
                verdicts = await admission.admit_each(checks)
            except Exception:
                metrics.inc(ADMISSIONS, "unavailable", n=len(checks))
                raise
            for v in verdicts:
                metrics.inc(ADMISSIONS, "unavailable" if isinstance(v, Exception)
                            else admission_outcome(v))  # fmt: skip
            return verdicts

        # Concurrent requests' admission checks go to Redis as one pipeline (one round trip;
        # on a cluster, side by side to their slots); a check that finds nothing in flight
        # goes at once from its request's task (no queue, no flush task, no wait). One that
        # finds company (under load) waits PAYGATE_ADMISSION_BATCH_WAIT_MS for more.
        wait_s = settings.admission_batch_wait_ms / 1000
        admissions: GroupCommitter[AdmissionCheck, Admission] = GroupCommitter(
            "admission", admit_counted, max_items=256, max_wait_s=wait_s, max_concurrent=2,
            retry_singly=False, direct_when_idle=True, metrics=metrics,
        )  # fmt: skip
        await admissions.start()
        try:
            yield Services(
                settings=settings,
                metrics=metrics,
                gauges=SystemGauges(pool),
                pool=pool,
                reads=reads,
                redis=redis,
                clock=clock,
                merchants=MerchantCache(pool, settings.merchant_cache_ttl_s),
                nonces=NonceStore(
                    redis, settings.signature_window_s, settings.rate_limit_fail_open
                ),
                accepts=accepts,
                payout_events=payout_events,
                transfers=transfers,
                admission=admission,
                admissions=admissions,
                risk_rules=risk_rules,
                bank=bank,
                b2b_bank=b2b_bank,
            )
        finally:
            await admissions.stop()
            await admission.aclose()
            await transfers.stop()
            await payout_events.stop()
            await accepts.stop()
    finally:
        stop_clock.set()
        if clock_task is not None:
            await clock_task
        await reads.stop()
        await bank_http.close()
        await redis.aclose()
        if read_pool is not None:
            await read_pool.close()
        await hot_pool.close()
        await pool.close()
        await metrics.stop()
