"""The loop every worker runs: rounds back to back while there is work, a short pause when idle.

A failed round is logged and retried after a pause; it never kills the worker. A store that is
down (SPEC 14) gets one line in the log, and the pool's connections are replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from gateway.metrics import in_hop
from gateway.storage.pools import postgres_down, storage_down

log = logging.getLogger("paygate.worker")

ERROR_PAUSE_S = 1.0


async def run_rounds(
    name: str,
    round_once: Callable[[], Awaitable[int]],
    full_round: int,
    idle_s: float,
    stop: asyncio.Event,
    pool: asyncpg.Pool | None = None,
) -> None:
    in_hop(name)  # this loop's SQL statements count for its hop (gateway/metrics.py)
    while not stop.is_set():
        pause_s = idle_s
        try:
            if await round_once() >= full_round:
                continue  # a full round: there is probably more, go again at once
        except Exception as exc:
            if storage_down(exc):
                where = {"worker": name, "error": repr(exc)}
                log.warning("worker round: storage unavailable", extra=where,
                            exc_info=isinstance(exc, asyncpg.InternalClientError))  # fmt: skip
                if pool is not None and postgres_down(exc):
                    await pool.expire_connections()  # none of them is to be trusted now
            else:
                log.exception("worker round failed", extra={"worker": name})
            pause_s = ERROR_PAUSE_S
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=pause_s)
