"""The loop every worker runs: rounds back to back while there is work, a short pause when idle.

A failed round is logged and retried after a pause; it never kills the worker. A store that is
down (SPEC 14) gets one line in the log, and the pool's connections are replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import asyncpg

from gateway.metrics import in_hop
from gateway.settings import Settings
from gateway.storage.pools import postgres_down, storage_down

log = logging.getLogger("paygate.worker")

ERROR_PAUSE_S = 1.0
# Collections are rare beside payouts: their idle loops look for work this many times less often.
RARE_KIND_IDLE_FACTOR = 5


class _Kind(Protocol):
    @property
    def kind(self) -> str: ...


def hop_name(loop: str, orders: _Kind) -> str:
    """The loop's name: `dispatch` / `poll` for payouts, `collection_dispatch` ... for others."""
    return loop if orders.kind == "payout" else f"{orders.kind}_{loop}"


def idle_s(settings: Settings, orders: _Kind) -> float:
    """How long a dispatcher waits when a round found nothing."""
    factor = 1 if orders.kind == "payout" else RARE_KIND_IDLE_FACTOR
    return settings.dispatch_idle_ms / 1000 * factor


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
