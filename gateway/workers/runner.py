"""The worker process's insides: pools, the bank client and every worker loop, owned here.

`running_workers` opens everything, starts the loops as owned tasks, and on exit stops them
(each finishes its round) and closes what it opened. `paygate worker` and tests both use it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from channels.client import B2BBank, BankClient
from channels.quota import ChannelQuota
from gateway.collection.orders import CollectionOrders
from gateway.metrics import CONTENT_TYPE, Metrics
from gateway.payouts.orders import PayoutOrders
from gateway.server import start_site
from gateway.settings import Settings
from gateway.storage.pools import create_pg_pool, create_redis, follow_clock, load_clock
from gateway.system_gauges import SystemGauges
from gateway.workers.clearing import ClearingWorker
from gateway.workers.dispatch import Dispatcher
from gateway.workers.notify import Notifier
from gateway.workers.partitions import PartitionKeeper
from gateway.workers.poll import StatusPoller
from gateway.workers.recon_nightly import NightlyRecon

log = logging.getLogger("paygate.workers")


@dataclass
class Workers:
    dispatcher: Dispatcher  # payouts
    poller: StatusPoller
    collector: Dispatcher  # collections (代收): the same dispatcher and poller, another kind
    collection_poller: StatusPoller
    notifier: Notifier
    clearing: ClearingWorker
    recon: NightlyRecon
    partitions: PartitionKeeper
    metrics: Metrics


def _metrics_app(metrics: Metrics, gauges: SystemGauges) -> web.Application:
    """`paygate worker` with PAYGATE_METRICS_PORT: the gateway's /metrics page (the whole
    system under a shared PROMETHEUS_MULTIPROC_DIR, else this process's figures)."""

    async def serve(request: web.Request) -> web.Response:
        body = metrics.render() + await gauges.page()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/metrics", serve)
    return app


@asynccontextmanager
async def running_workers(settings: Settings) -> AsyncIterator[Workers]:
    if not settings.bank_sim_url:
        raise ValueError("workers need the bank simulator's URL (PAYGATE_BANK_SIM_URL)")
    metrics = Metrics("worker")
    pool = await create_pg_pool(settings, metrics, generic_plans=settings.generic_plans)
    redis = create_redis(settings)
    connector = aiohttp.TCPConnector(limit=settings.bank_concurrency)
    session = aiohttp.ClientSession(connector=connector)
    # Merchants' endpoints get their own connection pool: a slow one cannot take the banks'.
    notify_session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=settings.notify_max_in_flight)
    )
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    metrics_site: web.AppRunner | None = None
    await metrics.start()
    try:
        if settings.metrics_port:
            metrics_site, _ = await start_site(_metrics_app(metrics, SystemGauges(pool)),
                                               settings.host, settings.metrics_port)  # fmt: skip
        clock = await load_clock(pool, settings.time_scale)
        bank = BankClient(session, settings.bank_sim_url, settings.bank_master_secret,
                          submit_timeout_s=settings.submit_timeout_s,
                          query_timeout_s=settings.query_timeout_s,
                          metrics=metrics)  # fmt: skip
        quota = ChannelQuota(redis)
        workers = Workers(
            dispatcher=Dispatcher(settings, pool, quota, bank, clock, PayoutOrders()),
            poller=StatusPoller(settings, pool, bank, clock, PayoutOrders()),
            collector=Dispatcher(settings, pool, quota, bank, clock, CollectionOrders()),
            collection_poller=StatusPoller(settings, pool, bank, clock, CollectionOrders()),
            notifier=Notifier(settings, pool, notify_session, clock, metrics),
            clearing=ClearingWorker(settings, pool, B2BBank(bank), clock),
            recon=NightlyRecon(settings, pool, bank, clock),
            partitions=PartitionKeeper(settings, pool),
            metrics=metrics,
        )
        tasks = [
            asyncio.create_task(workers.dispatcher.run(stop), name="dispatcher"),
            asyncio.create_task(workers.poller.run(stop), name="poller"),
            asyncio.create_task(workers.collector.run(stop), name="collector"),
            asyncio.create_task(workers.collection_poller.run(stop), name="collection_poller"),
            asyncio.create_task(workers.notifier.run(stop), name="notifier"),
            asyncio.create_task(workers.clearing.run(stop), name="clearing"),
            asyncio.create_task(workers.recon.run(stop), name="recon"),
            asyncio.create_task(workers.partitions.run(stop), name="partitions"),
            # The bank simulator keeps our simulated time (jumps included).
            asyncio.create_task(follow_clock(pool, clock, stop, bank.follow_clock), name="clock"),
        ]
        log.info("workers started", extra={"bank_sim_url": settings.bank_sim_url})
        yield workers
    finally:
        stop.set()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if metrics_site is not None:
            await metrics_site.cleanup()
        await session.close()
        await notify_session.close()
        await redis.aclose()
        await pool.close()
        await metrics.stop()
        log.info("workers stopped")
