"""The dispatcher: sends accepted payouts to bank channels (SPEC 6 "Submit", SPEC 9), and
collections (代收, SPEC 16) the same way: each kind is a `BankOrders` (bank_orders.py), one
dispatcher per kind.

One round, for up to `dispatch_batch_max` orders, any number of workers side by side:
1. read the due payouts (no locks);
2. route each (same bank first, else interbank; breakers; one probe per half-open channel);
3. take each channel's TPS tokens from Redis; what gets none waits (never refused);
4. one transaction: lock the rows still queued (`FOR UPDATE SKIP LOCKED`: another worker's
   are skipped, so a payout is sent by one worker only), then `accepted -> processing`
   (ledger-free, with its outbox event) and its queue state `sending` (payouts/queue.py) —
   recorded BEFORE the network call, so a crash after it can only lead to a query, never a
   second submission;
5. submit over HTTP, no transaction open: per channel in batches of its `submit_batch_max`
   (批量代付, each item answered on its own), or one by one where the bank takes singles;
6. one transaction: acked -> wait for the callback (poll after the channel's expected time;
   an ack that says "processing" is written `ack_record_delay_ms` later, or at that poll time
   if sooner, and only for the orders still `sending` then: a fast bank's callback usually
   makes it moot);
   refused (busy, maintenance, unreachable) -> back to the queue, maybe another channel;
   unknown (timeout, reset, an answer that is not this order's: channels/answers.py) ->
   query, never resend; a final answer is applied at once. Each answer reaches its order by
   its ref (the client matches a batch answer's items by ref, bank and amount);
7. feed the channels' circuit breakers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import asyncpg

from channels import repo as channel_repo
from channels.answers import SubmitOutcome, SubmitResult
from channels.breaker import Availability
from channels.client import BankClient
from channels.quota import ChannelQuota
from channels.routing import choose
from gateway.payouts.bank_orders import BankOrders, BankWord, Claimed
from gateway.payouts.queue import DispatchChange
from gateway.settings import Settings
from gateway.workers.rounds import hop_name, idle_s, run_rounds
from protocol.clock import SimClock

log = logging.getLogger("paygate.dispatch")

UNROUTABLE_WAIT_S = 1.0
SINGLES_AFTER_REFUSAL_S = 60.0
REFUSED_BACKOFF_MAX_S = 5.0


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        quota: ChannelQuota,
        bank: BankClient,
        clock: SimClock,
        orders: BankOrders,
    ) -> None:
        self._s = settings
        self._orders = orders
        self._pool = pool
        self._quota = quota
        self._bank = bank
        self._clock = clock
        self._sending = asyncio.Semaphore(settings.bank_concurrency)
        # channel -> monotonic time until which it gets single submissions (it refused a batch)
        self._singles_until: dict[str, float] = {}
        self._health = channel_repo.HealthRecorder(pool)
        self.submitted = 0
        # Acks that said "processing", to be written once due (monotonic time, id, its
        # bookkeeping, the bank's word) if the order is still `sending` then.
        self._acks: list[tuple[float, str, DispatchChange, BankWord]] = []
        self.acks_written = 0
        self.acks_moot = 0  # the order had left `sending` (a callback finished it, say)

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await run_rounds(hop_name("dispatch", self._orders), self.run_once,
                             self._s.dispatch_batch_max, idle_s(self._s, self._orders), stop,
                             self._pool)  # fmt: skip
        finally:
            await self.record_acks(everything=True)
            await self._health.flush()

    async def record_acks(self, everything: bool = False) -> int:
        """Write the held acks that are due (or all of them), for the orders still `sending`;
        returns how many were written. A crash loses only held acks: those orders stay
        `sending` and are queried at their poll time, never sent again."""
        if not self._acks:
            return 0
        now = time.monotonic()
        due = self._acks if everything else [a for a in self._acks if a[0] <= now]
        if not due:
            return 0
        self._acks = [] if everything else [a for a in self._acks if a[0] > now]
        sending, undated = await self._orders.ack_targets(self._pool, [a[1] for a in due])
        # A moot ack still tells the bank's business date to an order that has none (one a
        # word without it finished), for reconciliation; else it changes nothing.
        dated = [a for a in due if a[1] not in sending and a[1] in undated and a[3].bank_date]
        acks = [a for a in due if a[1] in sending]
        self.acks_moot += len(due) - len(acks)
        if acks or dated:
            await self._orders.record(self._pool, [a[3] for a in acks + dated],
                                      {a[1]: a[2] for a in acks}, only_in=("sending",))  # fmt: skip
            self.acks_written += len(acks)
        return len(acks)

    async def run_once(self) -> int:
        """One round; returns how many orders it claimed."""
        await self.record_acks()
        now = datetime.now(UTC)
        claimed = await self._orders.due(self._pool, now, self._s.dispatch_batch_max)
        if not claimed:
            return 0
        channels = await channel_repo.load(self._pool)
        options = [ch.route_option(now) for ch in channels.values()]
        probes_left: dict[str, int] = {}
        for opt in options:
            if opt.availability is Availability.PROBE:
                won = await channel_repo.claim_probe(self._pool, opt.channel_id, now,
                                                     self._s.submit_timeout_s + 5)  # fmt: skip
                probes_left[opt.channel_id] = 1 if won else 0

        by_channel: dict[str, list[Claimed]] = defaultdict(list)
        later: dict[str, float] = {}  # payout id -> seconds to wait
        for p in claimed:
            channel_id = choose(p.payee["bank_code"], options, probes_left)
            if channel_id is None:
                later[p.id] = UNROUTABLE_WAIT_S
            else:
                by_channel[channel_id].append(p)

        go: list[tuple[Claimed, str]] = []
        for channel_id, items in by_channel.items():
            grant = await self._quota.take(channel_id, channels[channel_id].tps, len(items))
            go += [(p, channel_id) for p in items[: grant.granted]]
            for p in items[grant.granted :]:
                later[p.id] = max(grant.wait_ms, 1) / 1000

        sending = await self._mark_sending(go, later, now)
        if sending:
            results = await self._submit_all(sending, channels)
            await self._record(list(zip(sending, results, strict=True)), channels)
        return len(claimed)

    async def _mark_sending(
        self, go: list[tuple[Claimed, str]], later: dict[str, float], now: datetime
    ) -> list[tuple[Claimed, str]]:
        """Record the submissions before making them; put the rest back in the queue."""
        poll_at = now + timedelta(seconds=self._s.submit_timeout_s + 5)
        again = {oid: now + timedelta(seconds=wait_s) for oid, wait_s in later.items()}
        mine = await self._orders.mark_sending(self._pool, go, again, poll_at)
        return [(p, ch) for p, ch in go if p.id in mine]

    async def _submit_all(
        self, sending: list[tuple[Claimed, str]], channels: dict[str, channel_repo.Channel]
    ) -> list[SubmitResult]:
        """Each channel's payouts in batches of its `submit_batch_max` (one request each), or
        one by one for a channel that takes single submissions; answers in `sending` order."""
        by_channel: dict[str, list[int]] = defaultdict(list)
        for k, (_, channel_id) in enumerate(sending):
            by_channel[channel_id].append(k)
        results: list[SubmitResult | None] = [None] * len(sending)

        async def batch(channel_id: str, ks: list[int]) -> None:
            async with self._sending:
                answers = await self._bank.submit_batch(
                    channel_id, [sending[k][0].submission() for k in ks]
                )
            if answers is None:  # the bank takes no batch this size: one by one for a while
                self._singles_until[channel_id] = time.monotonic() + SINGLES_AFTER_REFUSAL_S
                await asyncio.gather(*(single(channel_id, k) for k in ks))
                return
            for k, answer in zip(ks, answers, strict=True):
                results[k] = answer

        async def single(channel_id: str, k: int) -> None:
            async with self._sending:
                results[k] = await self._bank.submit(channel_id, sending[k][0].submission())

        jobs = []
        for channel_id, ks in by_channel.items():
            size = channels[channel_id].submit_batch_max
            if size > 1 and self._singles_until.get(channel_id, 0.0) < time.monotonic():
                jobs += [batch(channel_id, ks[i : i + size]) for i in range(0, len(ks), size)]
            else:
                jobs += [single(channel_id, k) for k in ks]
        await asyncio.gather(*jobs)
        assert all(r is not None for r in results)
        return [r for r in results if r is not None]

    async def _record(
        self,
        done: list[tuple[tuple[Claimed, str], SubmitResult]],
        channels: dict[str, channel_repo.Channel],
    ) -> None:
        now = datetime.now(UTC)
        changes: dict[str, DispatchChange] = {}
        words: list[BankWord] = []
        health: dict[str, Counter[str]] = defaultdict(Counter)
        held_at, hold_s = time.monotonic(), self._s.ack_record_delay_ms / 1000
        for (p, channel_id), res in done:
            if res.code != "bank_busy":  # capacity, not health: the quota handles it
                health[channel_id]["fail" if res.transport_failure else "ok"] += 1
            rec = res.record
            if res.outcome is SubmitOutcome.ACKED:
                assert rec is not None
                expected_s = self._clock.wall_delay_s(channels[channel_id].expected_ms / 1000)
                change = DispatchChange(
                    state="acked", bank_ref=rec.bank_ref, submitted_at=now,
                    poll_at=now + timedelta(seconds=expected_s),
                )  # fmt: skip
                said = BankWord(p.id, rec.status, channel_id, rec.bank_ref, rec.failure_code,
                                rec.failure_message, rec.business_date, rec.amount)  # fmt: skip
                if rec.status == "processing" and self._s.ack_record_delay_ms > 0:
                    # Written by its first poll time at the latest: a silent order is still
                    # queried when it would have been.
                    self._acks.append((held_at + min(hold_s, expected_s), p.id, change, said))
                else:
                    changes[p.id] = change
                    words.append(said)
            elif res.outcome is SubmitOutcome.REFUSED:
                backoff = res.retry_after_s or min(0.1 * 2**p.attempts, REFUSED_BACKOFF_MAX_S)
                again = now + timedelta(seconds=backoff)
                changes[p.id] = DispatchChange(state="queued", next_at=again)
                log.info("bank refused submission", extra={f"{self._orders.kind}_id": p.id,
                         "bank_id": channel_id, "code": res.code})  # fmt: skip
            else:
                first_query = now + timedelta(milliseconds=self._s.unknown_first_query_ms)
                changes[p.id] = DispatchChange(state="unknown", poll_at=first_query)
                log.warning("submission outcome unknown, will query", extra={
                    f"{self._orders.kind}_id": p.id, "bank_id": channel_id,
                    "code": res.code})  # fmt: skip
        # A callback may have beaten this answer to a final status: keep that.
        await self._orders.record(self._pool, words, changes, only_in=("sending",))
        states = [c.state for c in changes.values()]
        self.submitted += sum(1 for s in states if s != "queued")
        await self._health.record(health, channels, now)
