"""Merchant lists on a streaming replica (SPEC 15), never older than the merchant's own writes.

`PAYGATE_DATABASE_READ_URL` names a hot standby. The read-only merchant lists (payouts,
events, ledger lines, accounts, customers, transfers, freezes, collections, B2B payments) may
be read there; money paths and single-object reads stay on the primary. The rule that keeps a
merchant from reading older data than it has just written:

- Once a second the router reads the primary's WAL insert position (first noting the time),
  then the replica's replay position. A sample whose position the replica has replayed proves
  that everything committed before its time is on the replica: `caught_up_at` is the latest
  such time (the replica's lag is `now - caught_up_at`).
- A merchant's writing request (any /v1/ method but GET/HEAD/OPTIONS) notes, once it has
  answered, the time in this process's memory (a dict write: nothing on the accept path's
  round trips). Its lists go to the replica only once `caught_up_at` is past that time.
- Another gateway process (or host) does not see that memory, so the note is also a Redis key
  with the merchant's hash tag that lives 2 x max_lag and is written again only once it has
  less than max_lag to live: at most one SET per merchant per max_lag per process. A process
  that finds the key sends the lists to the primary; one that does not knows the last write is
  more than max_lag old, so the replica serves them if its lag is under max_lag.
- A replica more than max_lag behind, not in recovery, or not answering: every list goes to
  the primary, and a list that fails on the replica is read again from the primary.
Changes the merchant did not make (the worker's, the bank's) reach its lists within the lag.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import redis.exceptions

from gateway.metrics import LIST_READS, Metrics, in_hop
from gateway.storage.pools import RedisClient, storage_down

log = logging.getLogger("paygate.storage")
T = TypeVar("T")

SAMPLE_EVERY_S = 1.0
SAMPLES_KEPT = 120  # unconfirmed samples; dropping the oldest only coarsens caught_up_at
MERCHANTS_REMEMBERED = 100_000  # local notes kept; an older one is also in Redis or stale
PRIMARY_LSN = "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint"
REPLAYED_LSN = "SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint"


def wrote_key(merchant_id: str) -> str:
    return f"pg:{{{merchant_id}}}:wrote"


class ReadRouter:
    """Chooses the pool for a merchant's list; without a replica it is always the primary."""

    def __init__(
        self,
        primary: asyncpg.Pool,
        replica: asyncpg.Pool | None,
        redis: RedisClient,
        max_lag_s: float,
        metrics: Metrics | None = None,
    ) -> None:
        self.primary = primary
        self.replica = replica
        self._redis = redis
        self.max_lag_s = max_lag_s
        self._metrics = metrics
        self._samples: deque[tuple[float, int]] = deque(maxlen=SAMPLES_KEPT)
        self.caught_up_at: float | None = None  # monotonic; None: the replica is of no use
        self._written: dict[str, float] = {}  # merchant -> monotonic time its write answered
        self._published: dict[str, float] = {}  # merchant -> when its Redis key expires
        self._not_standby = False
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.replica is not None:
            self._task = asyncio.create_task(self._follow(), name="replica-lag")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    def lag_s(self) -> float | None:
        """How far behind the replica may be (None: not usable)."""
        if self.caught_up_at is None:
            return None
        return time.monotonic() - self.caught_up_at

    async def wrote(self, merchant_id: str) -> None:
        """`merchant_id`'s writing request has answered (call after the write, never raises)."""
        if self.replica is None:
            return
        now = time.monotonic()
        if len(self._written) >= MERCHANTS_REMEMBERED:
            self._written.clear()  # the Redis keys still cover the recent writers
            self._published.clear()
        self._written[merchant_id] = now
        if self._published.get(merchant_id, 0.0) - now >= self.max_lag_s:
            return
        ttl_ms = int(2 * self.max_lag_s * 1000)
        try:
            await self._redis.set(wrote_key(merchant_id), b"1", px=ttl_ms)
            self._published[merchant_id] = now + 2 * self.max_lag_s
        except (redis.exceptions.RedisError, OSError) as exc:
            # Another process may then read this merchant's lists from the replica within
            # the lag; this process still reads them from the primary.
            log.warning("could not note a merchant's write in Redis",
                        extra={"merchant_id": merchant_id, "error": repr(exc)})  # fmt: skip

    async def _pool_for(self, merchant_id: str) -> asyncpg.Pool:
        if self.replica is None or not self._within_lag():
            return self.primary
        written = self._written.get(merchant_id)
        caught_up_at = self.caught_up_at
        if written is not None and (caught_up_at is None or written >= caught_up_at):
            return self.primary
        try:
            if await self._redis.exists(wrote_key(merchant_id)):
                return self.primary
        except (redis.exceptions.RedisError, OSError):
            return self.primary
        # No key now: the merchant's last write answered more than max_lag ago, so a replica
        # less than max_lag behind *now* (after the Redis answer) has it.
        return self.replica if self._within_lag() else self.primary

    def _within_lag(self) -> bool:
        lag = self.lag_s()
        return lag is not None and lag < self.max_lag_s

    async def read_list(self, merchant_id: str, read: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
        """`read` (a read-only list of `merchant_id`'s) on the replica when the rule allows,
        else on the primary; again on the primary if the replica fails under it."""
        pool = await self._pool_for(merchant_id)
        if pool is self.primary:
            self._count("primary")
            return await read(pool)
        try:
            result = await read(pool)
        except Exception as exc:
            if not storage_down(exc):
                raise
            log.warning("the replica failed a list; reading it from the primary",
                        extra={"error": repr(exc)})  # fmt: skip
            self.caught_up_at = None
            await pool.expire_connections()
            self._count("primary")
            return await read(self.primary)
        self._count("replica")
        return result

    def _count(self, store: str) -> None:
        if self._metrics is not None:
            self._metrics.inc(LIST_READS, store)

    async def _follow(self) -> None:
        in_hop("replica")
        assert self.replica is not None
        while not self._stop.is_set():
            try:
                await self._sample(self.replica)
            except Exception as exc:  # a timeout too: lists stay on the primary meanwhile
                log.warning("could not measure the replica's lag", extra={"error": repr(exc)})
                self.caught_up_at = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=SAMPLE_EVERY_S)

    async def _sample(self, replica: asyncpg.Pool) -> None:
        taken_at = time.monotonic()  # before the read: what committed earlier is under it
        self._samples.append((taken_at, await self.primary.fetchval(PRIMARY_LSN)))
        replayed = await replica.fetchval(REPLAYED_LSN)
        if replayed is None:  # not in recovery: a promoted or a wrong server
            if not self._not_standby:
                log.warning("PAYGATE_DATABASE_READ_URL is not a standby; lists stay on the primary")
            self._not_standby = True
            self.caught_up_at = None
            return
        self._not_standby = False
        while self._samples and self._samples[0][1] <= replayed:
            confirmed = self._samples.popleft()[0]
            if self.caught_up_at is None or confirmed > self.caught_up_at:
                self.caught_up_at = confirmed
