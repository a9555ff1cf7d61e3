"""The clearing worker (SPEC 7): settles notified B2B payments when their clearing time comes.

Each round leases (SKIP LOCKED, a lease in `next_check_at`) notified payments whose
`expected_clear_at` has passed in simulated time, and pending ones the bank has been silent
about for `b2b_pending_query_after_s` (a lost notification), asks the bank how each stands,
and applies what it says through the B2B transition table: cleared (advance repaid first),
reversed, or — for a lost notification — notified/failed. Anything else is asked again later.
Applying is idempotent: a word the table refuses changes nothing.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from channels.client import B2BBank
from gateway.b2b.state import B2BEvent
from gateway.b2b.transitions import B2BWord, apply_b2b_events
from gateway.settings import Settings
from gateway.workers.rounds import run_rounds
from protocol.clock import SimClock

RECHECK_S = 1.0  # wall seconds before asking the bank again about one payment
BATCH_MAX = 256


class ClearingWorker:
    def __init__(
        self, settings: Settings, pool: asyncpg.Pool, bank: B2BBank, clock: SimClock
    ) -> None:
        self._s = settings
        self._pool = pool
        self._bank = bank
        self._clock = clock
        self._asking = asyncio.Semaphore(32)
        self.cleared = 0

    async def run(self, stop: asyncio.Event) -> None:
        await run_rounds("clearing", self.run_once, BATCH_MAX, self._s.dispatch_idle_ms / 1000 * 5,
                         stop, self._pool)  # fmt: skip

    async def run_once(self) -> int:
        sim_now = self._clock.now()
        wall_now = datetime.now(UTC)
        silent_s = self._clock.wall_delay_s(self._s.b2b_pending_query_after_s)
        rows = await self._pool.fetch(
            """WITH c AS (
                   SELECT id FROM b2b_payments
                   WHERE ((status = 'notified' AND expected_clear_at <= $1)
                          OR (status = 'pending' AND created_at <= $2))
                     AND (next_check_at IS NULL OR next_check_at <= $3)
                   ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED)
               UPDATE b2b_payments b SET next_check_at = $5 FROM c WHERE b.id = c.id
               RETURNING b.id, b.payer_bank, b.status""",
            sim_now,
            wall_now - timedelta(seconds=silent_s),  # created_at is wall time
            wall_now,
            BATCH_MAX,
            wall_now + timedelta(seconds=RECHECK_S),
        )
        if not rows:
            return 0
        answers = await asyncio.gather(*(self._ask(r["payer_bank"], r["id"]) for r in rows))
        words: list[B2BWord] = []
        for row, record in zip(rows, answers, strict=True):
            if record is None:
                continue
            if row["status"] == "notified":
                event = {"cleared": B2BEvent.CLEAR, "reversed": B2BEvent.REVERSE}.get(
                    str(record.get("clearing_status"))
                )
            else:
                event = {"succeeded": B2BEvent.NOTIFY, "failed": B2BEvent.FAIL}.get(
                    str(record.get("status"))
                )
            if event is not None:
                words.append(B2BWord(row["id"], event, bank_ref=record.get("bank_ref"),
                                     failure_code=record.get("failure_code"),
                                     failure_message=record.get("failure_message")))  # fmt: skip
        if words:
            async with self._pool.acquire() as conn:
                applied = await apply_b2b_events(conn, words, self._clock.now(),
                                                 self._s.realtime_clear_delay_s)  # fmt: skip
            self.cleared += sum(1 for a in applied if a.applied and a.status == "cleared")
        return len(rows)

    async def _ask(self, bank_id: str, b2b_id: str) -> dict[str, Any] | None:
        async with self._asking:
            return await self._bank.query(bank_id, b2b_id)
