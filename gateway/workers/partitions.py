"""Monthly partitions made ahead (migration 0021, SPEC 15): at start and every
`partition_check_s` the worker makes sure the months up to `partition_months_ahead` ahead
exist, so a month is there long before its first row and an insert never finds no partition.
With several workers one makes each month (an advisory lock in `ensure_partitions`)."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from gateway.settings import Settings
from gateway.storage.partitions import ensure_partitions
from gateway.workers.rounds import run_rounds

log = logging.getLogger("paygate.partitions")


class PartitionKeeper:
    def __init__(self, settings: Settings, pool: asyncpg.Pool) -> None:
        self._s = settings
        self._pool = pool

    async def run(self, stop: asyncio.Event) -> None:
        await run_rounds("partitions", self.run_once, 1, self._s.partition_check_s, stop,
                         self._pool)  # fmt: skip

    async def run_once(self) -> int:
        async with self._pool.acquire() as conn:
            made = await ensure_partitions(conn, self._s.partition_months_ahead)
        if made:
            log.info("monthly partitions made", extra={"made": made})
        return 0  # a round never calls for another at once
