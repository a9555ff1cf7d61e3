"""Running an aiohttp app on a port until told to stop (shared by gateway and bank simulator),
with the lean server ahead of it for what the app answers there (LeanSite)."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web

from gateway.http1_server import Http1Server, Request, Response

log = logging.getLogger("paygate.server")
# aiohttp's default (8 KiB) answers a longer URL itself, in plain text: with room for a
# 10 KB query value the app sees it and refuses it with the SPEC 11 error body, naming it.
MAX_REQUEST_LINE_BYTES = 16 * 1024


class LeanFront(Protocol):
    """What an app answers on the lean server ahead of aiohttp (gateway/http1_server.py)."""

    max_body_bytes: int

    def wants(self, method: str, target: str) -> bool: ...
    def handle(self, request: Request) -> Response | Awaitable[Response]: ...
    def error_answer(self, request: Request | None, exc: Exception) -> Response: ...


LEAN_FRONT_KEY = web.AppKey("lean_front", LeanFront)


class LeanSite(web.TCPSite):
    """A TCP site whose connections meet the lean server first: it answers what the app's
    LeanFront wants and hands each connection to aiohttp at the first request it does not.
    Stopping it stops the lean server (its running handlers answer first), before aiohttp's
    own shutdown and the app's clean-up."""

    def __init__(self, runner: web.AppRunner, front: LeanFront, host: str, port: int,
                 *, reuse_port: bool) -> None:  # fmt: skip
        super().__init__(runner, host, port, reuse_port=reuse_port or None, backlog=4096)
        server = runner.server
        assert server is not None, "the runner is set up first"
        self._lean = Http1Server(front.handle, front.error_answer,
                                 max_body_bytes=front.max_body_bytes, wants=front.wants,
                                 handoff=server)  # fmt: skip
        self._host_port = (host, port)
        self._reuse = reuse_port
        self.bound = 0

    @property
    def lean(self) -> Http1Server:
        return self._lean

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        host, port = self._host_port
        self.bound = await self._lean.start(host, port, reuse_port=self._reuse)

    async def stop(self) -> None:
        await self._lean.close()
        await super().stop()


async def start_site(
    app: web.Application, host: str, port: int, *, reuse_port: bool = False
) -> tuple[web.AppRunner, int]:
    """Start `app` (on a LeanSite when it has a LEAN_FRONT_KEY); returns the runner (call
    `cleanup()` to stop) and the bound port."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False,
                           max_line_size=MAX_REQUEST_LINE_BYTES)  # fmt: skip
    await runner.setup()
    front = app.get(LEAN_FRONT_KEY)
    if front is not None:
        lean = LeanSite(runner, front, host, port, reuse_port=reuse_port)
        await lean.start()
        return runner, lean.bound
    site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None, backlog=4096)
    await site.start()
    bound = port
    sockets = getattr(site._server, "sockets", None)
    if sockets:
        bound = sockets[0].getsockname()[1]
    return runner, bound


PARENT_CHECK_INTERVAL_S = 1.0
# The cyclic garbage collector's thresholds once a server runs (CPython's: 700, 10, 10).
# A request allocates a few hundred tracked objects, nearly all freed by reference counting,
# so at 700 a young collection ran every other request or so and, with the older
# generations' sweeps, took ~20% of the gateway's CPU at the signed no-op (py-spy --native:
# gc_collect_main). Collections still run, every 50,000 allocations.
GC_THRESHOLDS = (50_000, 50, 50)


def settle_heap() -> None:
    """After start-up: what exists now lives as long as the process (modules, the app, its
    pools), so it is moved out of the collector's sight (`gc.freeze`), and the collector
    runs less often (`GC_THRESHOLDS`)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def stop_event() -> asyncio.Event:
    """An event set on SIGINT/SIGTERM, or when the supervising parent process is gone."""
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, event.set)
    parent = os.environ.get("PAYGATE_PARENT_PID")
    if parent and parent.isdigit():

        def check_parent() -> None:
            if os.getppid() != int(parent):
                log.warning("parent process is gone, stopping")
                event.set()
            else:
                loop.call_later(PARENT_CHECK_INTERVAL_S, check_parent)

        loop.call_later(PARENT_CHECK_INTERVAL_S, check_parent)
    return event


async def serve_until_stopped(
    app: web.Application,
    host: str,
    port: int,
    *,
    name: str,
    reuse_port: bool = False,
    on_started: Callable[[int], Awaitable[None]] | None = None,
) -> None:
    stop = stop_event()
    runner, bound = await start_site(app, host, port, reuse_port=reuse_port)
    settle_heap()
    log.info(f"{name} listening", extra={"url": f"http://{host}:{bound}"})
    try:
        if on_started is not None:
            await on_started(bound)
        await stop.wait()
        log.info(f"{name} stopping")
    finally:
        await runner.cleanup()
    log.info(f"{name} stopped")


def run(main: Awaitable[None]) -> None:
    """Run a coroutine on uvloop."""
    import uvloop

    uvloop.run(main)  # type: ignore[arg-type]
