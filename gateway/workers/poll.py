"""The status poller: asks banks about payouts whose outcome we do not know yet (SPEC 6), and
about collections (SPEC 16) the same way (one poller per kind of `BankOrders`).

Three kinds: a submission whose outcome was unknown (timeout, reset), one whose worker died
mid-send (`sending` past its lease), and one acked but quiet beyond the channel's expected
time (a lost or late callback). It only ever queries — it never submits. A bank that says
it has no such order (its own signed answer, channels/answers.py) on `bank_no_record_polls`
queries in a row, spread over at least `bank_no_record_min_s` of simulated time, never
received it: the order fails (`bank_no_record`) and a payout's hold is released; nothing was
paid, so nothing can be paid twice. Any other answer (found, unavailable, a mismatch, a 404
that is not the bank's) starts the count again; an order the bank once acknowledged is never
concluded so.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import asyncpg

from channels import repo as channel_repo
from channels.answers import QueryOutcome, QueryResult
from channels.client import BankClient
from gateway.payouts import queue
from gateway.payouts.bank_orders import BankOrders, BankWord, Pending
from gateway.payouts.queue import DispatchChange
from gateway.settings import Settings
from gateway.workers.rounds import hop_name, idle_s, run_rounds
from protocol.clock import SimClock

log = logging.getLogger("paygate.poll")

MIN_POLL_S = 0.2
MAX_BACKOFF_DOUBLINGS = 6


class StatusPoller:
    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        bank: BankClient,
        clock: SimClock,
        orders: BankOrders,
    ) -> None:
        self._s = settings
        self._orders = orders
        self._pool = pool
        self._bank = bank
        self._clock = clock
        self._querying = asyncio.Semaphore(settings.bank_concurrency)
        self.queries = 0

    async def run(self, stop: asyncio.Event) -> None:
        await run_rounds(hop_name("poll", self._orders), self.run_once, self._s.poll_batch_max,
                         idle_s(self._s, self._orders) * 5, stop, self._pool)  # fmt: skip

    async def run_once(self) -> int:
        now = datetime.now(UTC)
        lease_until = now + timedelta(seconds=self._s.query_timeout_s + 5)
        pending = await self._orders.lease_polls(self._pool, now, self._s.poll_batch_max,
                                                 lease_until)  # fmt: skip
        if not pending:
            return 0
        results = await asyncio.gather(*(self._query(p) for p in pending))
        await self._record(list(zip(pending, results, strict=True)))
        return len(pending)

    async def _query(self, p: Pending) -> QueryResult:
        async with self._querying:
            self.queries += 1
            return await self._bank.query(p.bank_id, p.id, p.amount_fen)

    def _backoff_s(self, base_s: float, poll_count: int) -> float:
        doublings = min(max(poll_count - 1, 0), MAX_BACKOFF_DOUBLINGS)
        wait_s: float = max(base_s, MIN_POLL_S) * 2**doublings
        # The cap is simulated time: at --time-scale 120 a silent payout is asked after at
        # most 30 simulated seconds (0.25 s), not half a simulated hour.
        cap = max(MIN_POLL_S, self._clock.wall_delay_s(self._s.poll_max_interval_s))
        return min(wait_s, cap)

    async def _record(self, done: list[tuple[Pending, QueryResult]]) -> None:
        now = datetime.now(UTC)
        channels = await channel_repo.load(self._pool)
        words: list[BankWord] = []
        changes: dict[str, DispatchChange] = {}
        for p, res in done:
            rec = res.record
            # Any answer but the bank's own "no such order" starts that streak again.
            reset = 0 if p.no_record_streak else None
            if res.outcome is QueryOutcome.FOUND and rec is not None:
                words.append(BankWord(p.id, rec.status, p.bank_id, rec.bank_ref,
                                      rec.failure_code, rec.failure_message,
                                      rec.business_date, rec.amount))  # fmt: skip
                if rec.status == "processing":
                    ch = channels.get(p.bank_id)
                    expected_ms = ch.expected_ms if ch else 5000
                    wait_s = self._clock.wall_delay_s(expected_ms / 1000)
                    # The bank has it: now it is only late.
                    again = now + timedelta(seconds=self._backoff_s(wait_s, p.poll_count))
                    changes[p.id] = DispatchChange(state="acked", bank_ref=rec.bank_ref,
                                                   poll_at=again,
                                                   no_record_streak=reset)  # fmt: skip
                elif reset is not None:
                    changes[p.id] = DispatchChange(no_record_streak=reset)
                continue
            base_s = self._s.unknown_first_query_ms / 1000
            again = now + timedelta(seconds=self._backoff_s(base_s, p.poll_count))
            if res.outcome is QueryOutcome.NOT_FOUND:
                streak, since = self._no_record(p)
                if streak is None:
                    words.append(self._never_received(p, since))
                else:
                    changes[p.id] = DispatchChange(state=p.state, poll_at=again,
                                                   no_record_streak=streak,
                                                   no_record_since=since)  # fmt: skip
                continue
            # An answer about another order, bank or amount tells nothing: unknown, asked again.
            state = "unknown" if res.outcome is QueryOutcome.MISMATCH else p.state
            changes[p.id] = DispatchChange(state=state, poll_at=again, no_record_streak=reset)
        await self._orders.record(self._pool, words, changes, only_in=queue.WAITING_FOR_BANK)

    def _no_record(self, p: Pending) -> tuple[int | None, datetime]:
        """One more "no such order" from the bank: the streak it makes and the simulated time
        of its first answer; streak None when it concludes that the bank never received the
        order (`bank_no_record_polls` in a row, at least `bank_no_record_min_s` apart)."""
        sim_now = self._clock.now()
        streak, since = p.no_record_streak + 1, p.no_record_since or sim_now
        if p.bank_ref is not None:
            # The bank showed it holds this order (acked it, or a query found it): "no such
            # order" now contradicts it. Never concluded: it is asked again (and shows in
            # reconciliation). Said once per streak, not at every poll: a bank that lost its
            # books would otherwise flood the log with every order it held.
            if p.no_record_streak == 0:
                log.error("the bank denies an order it acknowledged", extra={
                    f"{self._orders.kind}_id": p.id, "bank_id": p.bank_id,
                    "bank_ref": p.bank_ref})  # fmt: skip
            return streak, since
        spread_s = (sim_now - since).total_seconds()
        if streak >= self._s.bank_no_record_polls and spread_s >= self._s.bank_no_record_min_s:
            return None, since
        return streak, since

    def _never_received(self, p: Pending, since: datetime) -> BankWord:
        kind = self._orders.kind
        log.warning(f"bank has no record of the {kind}, failing it", extra={
            f"{kind}_id": p.id, "bank_id": p.bank_id, "answers": p.no_record_streak + 1,
            "since": since.isoformat()})  # fmt: skip
        return BankWord(
            p.id, "failed", p.bank_id, None, "bank_no_record", f"the bank never received the {kind}"
        )
