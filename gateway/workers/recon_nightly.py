"""The nightly reconciliation (SPEC 10): once the simulated clock is past D+1 01:00 China time
(a bank's statement for business date D is ready), reconcile every channel for D with
apply=true, once per (bank, D) — the unique index on nightly runs makes it once even with
several workers. Between dates a round is a clock reading: nothing to ask the database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import date, datetime, timedelta
from datetime import time as clock_time

import asyncpg

from channels.client import BankClient, BankUnavailable
from gateway.recon.reconcile import AlreadyReconciled, reconcile
from gateway.settings import Settings
from gateway.workers.rounds import run_rounds
from protocol.clock import BUSINESS_TZ, SimClock

MAX_CATCH_UP_DAYS = 31

log = logging.getLogger("paygate.recon.nightly")

STATEMENT_READY = clock_time(1, 0)  # D's statement is ready at D+1 01:00 (China time)


def due_date(sim_now: datetime) -> date:
    """The latest business date whose statements are ready at `sim_now`."""
    local = sim_now.astimezone(BUSINESS_TZ)
    back = 1 if local.time() >= STATEMENT_READY else 2
    return local.date() - timedelta(days=back)


class NightlyRecon:
    def __init__(
        self, settings: Settings, pool: asyncpg.Pool, bank: BankClient, clock: SimClock
    ) -> None:
        self._s = settings
        self._pool = pool
        self._bank = bank
        self._clock = clock
        self._done: date | None = None  # every channel is reconciled for this date
        self._retry_at = 0.0  # monotonic: a bank gave no statement, wait before asking again
        self.runs = 0

    async def run(self, stop: asyncio.Event) -> None:
        await run_rounds("recon", self.run_once, 1, self._s.recon_check_s, stop)

    async def run_once(self) -> int:
        """Reconciles what is due; returns how many runs it recorded. Days missed (the worker
        was down, the clock jumped) are caught up, from the day after the last nightly run
        (at most MAX_CATCH_UP_DAYS back)."""
        day = due_date(self._clock.now())
        if day == self._done or time.monotonic() < self._retry_at:
            return 0
        channels = [r["id"] for r in await self._pool.fetch("SELECT id FROM channels ORDER BY id")]
        last = await self._pool.fetchval(
            "SELECT max(date) FROM recon_runs WHERE trigger = 'nightly' AND date < $1", day
        )
        first = day if last is None else max(last + timedelta(days=1),
                                              day - timedelta(days=MAX_CATCH_UP_DAYS))  # fmt: skip
        days = [first + timedelta(days=n) for n in range((day - first).days + 1)]
        rows = await self._pool.fetch(
            "SELECT bank_id, date FROM recon_runs WHERE trigger = 'nightly' AND date = ANY($1)",
            days,
        )
        done = {(r["bank_id"], r["date"]) for r in rows}
        ran, missing = 0, 0
        for each_day in days:
            for bank_id in channels:
                if (bank_id, each_day) in done:
                    continue
                try:
                    report = await reconcile(self._pool, self._bank, bank_id, each_day,
                                             apply=True, trigger="nightly")  # fmt: skip
                except AlreadyReconciled:
                    continue  # another worker was first
                except BankUnavailable as exc:
                    missing += 1
                    log.warning("nightly reconciliation: no statement", extra={
                        "bank_id": bank_id, "date": str(each_day), "code": exc.code})  # fmt: skip
                    continue
                ran += 1
                opened = sum(1 for i in report["items"] if "exception_id" in i)
                log.info("nightly reconciliation", extra={
                    "bank_id": bank_id, "date": str(each_day), "run_id": report["id"],
                    **report["summary"], "exceptions": opened})  # fmt: skip
        self.runs += ran
        if missing:
            self._retry_at = time.monotonic() + self._s.recon_retry_s
        else:
            self._done = day
        return ran
