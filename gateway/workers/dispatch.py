"""The dispatcher: sends accepted payouts to bank channels (SPEC 6 "Submit", SPEC 9).

One round, for up to `dispatch_batch_max` payouts, any number of workers side by side:
1. claim due payouts (`FOR UPDATE SKIP LOCKED`, a lease by pushing `next_dispatch_at`);
2. route each (same bank first, else interbank; breakers; one probe per half-open channel);
3. take each channel's TPS tokens from Redis; what gets none waits (never refused);
4. one transaction: `accepted -> processing` (ledger-free, with its outbox event) and
   dispatch_state `sending` — recorded BEFORE the network call, so a crash after it can only
   lead to a query, never a second submission;
5. submit over HTTP, no transaction open: per channel in batches of its `submit_batch_max`
   (批量代付, each item answered on its own), or one by one where the bank takes singles;
6. one transaction: acked -> wait for the callback (poll after the channel's expected time);
   refused (busy, maintenance, unreachable) -> back to the queue, maybe another channel;
   unknown (timeout, reset) -> query, never resend; a final answer is applied at once;
7. feed the channels' circuit breakers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from channels import repo as channel_repo
from channels.breaker import Availability
from channels.client import BankClient, SubmitOutcome, SubmitResult
from channels.quota import ChannelQuota
from channels.routing import choose
from gateway.clock import SimClock
from gateway.payouts.bank_status import events_for
from gateway.payouts.state import Event, Status
from gateway.payouts.transitions import PayoutEvent, apply_events_in_tx
from gateway.settings import Settings
from gateway.workers.rounds import run_rounds

log = logging.getLogger("paygate.dispatch")

UNROUTABLE_WAIT_S = 1.0
SINGLES_AFTER_REFUSAL_S = 60.0
REFUSED_BACKOFF_MAX_S = 5.0


@dataclass(frozen=True, slots=True)
class Claimed:
    id: str
    status: str
    amount_fen: int
    currency: str
    payee: dict[str, Any]
    purpose: str | None
    attempts: int

    def submission(self) -> dict[str, Any]:
        return {"ref": self.id, "amount": self.amount_fen, "currency": self.currency,
                "payee": self.payee, "purpose": self.purpose}  # fmt: skip


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        quota: ChannelQuota,
        bank: BankClient,
        clock: SimClock,
    ) -> None:
        self._s = settings
        self._pool = pool
        self._quota = quota
        self._bank = bank
        self._clock = clock
        self._sending = asyncio.Semaphore(settings.bank_concurrency)
        # channel -> monotonic time until which it gets single submissions (it refused a batch)
        self._singles_until: dict[str, float] = {}
        self._health = channel_repo.HealthRecorder(pool)
        self.submitted = 0

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await run_rounds("dispatch", self.run_once, self._s.dispatch_batch_max,
                             self._s.dispatch_idle_ms / 1000, stop)  # fmt: skip
        finally:
            await self._health.flush()

    async def run_once(self) -> int:
        """One round; returns how many payouts it claimed."""
        now = datetime.now(UTC)
        claimed = await self._claim(now)
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

    async def _claim(self, now: datetime) -> list[Claimed]:
        rows = await self._pool.fetch(
            """WITH c AS (
                   SELECT id FROM payouts
                   WHERE dispatch_state = 'queued' AND status IN ('accepted', 'processing')
                     AND next_dispatch_at <= $1
                   ORDER BY next_dispatch_at LIMIT $2 FOR UPDATE SKIP LOCKED)
               UPDATE payouts p SET next_dispatch_at = $3 FROM c WHERE p.id = c.id
               RETURNING p.id, p.status, p.amount_fen, p.currency, p.payee, p.purpose,
                         p.dispatch_attempts""",
            now,
            self._s.dispatch_batch_max,
            now + timedelta(seconds=self._s.dispatch_lease_s),
        )
        return [Claimed(r["id"], r["status"], r["amount_fen"], r["currency"], r["payee"],
                        r["purpose"], r["dispatch_attempts"]) for r in rows]  # fmt: skip

    async def _mark_sending(
        self, go: list[tuple[Claimed, str]], later: dict[str, float], now: datetime
    ) -> list[tuple[Claimed, str]]:
        """Record the submissions before making them; put the rest back in the queue. One
        transaction: rows locked (id order) and both updates in one statement, then the
        `submit` transitions (accepted -> processing, with their outbox events)."""
        poll_at = now + timedelta(seconds=self._s.submit_timeout_s + 5)
        async with self._pool.acquire() as conn, conn.transaction():
            marked = await conn.fetch(
                """WITH l AS (
                       SELECT id FROM payouts WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE),
                   s AS (
                       UPDATE payouts p SET bank_id = u.bank_id, dispatch_state = 'sending',
                           dispatch_attempts = p.dispatch_attempts + 1, poll_at = $4
                       FROM unnest($2::text[], $3::text[]) AS u (id, bank_id), l
                       WHERE p.id = u.id AND l.id = u.id AND p.dispatch_state = 'queued'
                         AND p.status IN ('accepted', 'processing')
                       RETURNING p.id),
                   r AS (
                       UPDATE payouts p SET next_dispatch_at = u.at
                       FROM unnest($5::text[], $6::timestamptz[]) AS u (id, at), l
                       WHERE p.id = u.id AND l.id = u.id AND p.dispatch_state = 'queued'
                       RETURNING 1)
                   SELECT id FROM s""",
                sorted([p.id for p, _ in go] + list(later)),
                [p.id for p, _ in go],
                [ch for _, ch in go],
                poll_at,
                list(later),
                [now + timedelta(seconds=s) for s in later.values()],
            )
            ok = {r["id"] for r in marked}
            fresh = [PayoutEvent(p.id, Event.SUBMIT, bank_id=ch)
                     for p, ch in go if p.status == Status.ACCEPTED and p.id in ok]  # fmt: skip
            if fresh:
                await apply_events_in_tx(conn, fresh)
        return [(p, ch) for p, ch in go if p.id in ok]

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
        ids: list[str] = []
        states: list[str] = []
        bank_refs: list[str | None] = []
        next_at: list[datetime | None] = []
        poll_at: list[datetime | None] = []
        finals: list[PayoutEvent] = []
        health: dict[str, Counter[str]] = defaultdict(Counter)
        for (p, channel_id), res in done:
            if res.code != "bank_busy":  # capacity, not health: the quota handles it
                health[channel_id]["fail" if res.transport_failure else "ok"] += 1
            ids.append(p.id)
            rec = res.record
            bank_refs.append(rec.bank_ref if rec else None)
            if res.outcome is SubmitOutcome.ACKED:
                assert rec is not None
                expected_s = self._clock.wall_delay_s(channels[channel_id].expected_ms / 1000)
                states.append("acked")
                next_at.append(None)
                poll_at.append(now + timedelta(seconds=expected_s))
                finals += events_for(p.id, rec.status, bank_id=channel_id, bank_ref=rec.bank_ref,
                                     failure_code=rec.failure_code,
                                     failure_message=rec.failure_message)  # fmt: skip
            elif res.outcome is SubmitOutcome.REFUSED:
                backoff = res.retry_after_s or min(0.1 * 2**p.attempts, REFUSED_BACKOFF_MAX_S)
                states.append("queued")
                next_at.append(now + timedelta(seconds=backoff))
                poll_at.append(None)
                log.info("bank refused submission", extra={
                    "payout_id": p.id, "bank_id": channel_id, "code": res.code})  # fmt: skip
            else:
                states.append("unknown")
                next_at.append(None)
                poll_at.append(now + timedelta(milliseconds=self._s.unknown_first_query_ms))
                log.warning("submission outcome unknown, will query", extra={
                    "payout_id": p.id, "bank_id": channel_id, "code": res.code})  # fmt: skip
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """WITH l AS (
                       SELECT id FROM payouts WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE)
                   UPDATE payouts p SET dispatch_state = u.state,
                       bank_ref = COALESCE(u.bank_ref, p.bank_ref),
                       next_dispatch_at = COALESCE(u.next_at, p.next_dispatch_at),
                       poll_at = u.poll_at,
                       submitted_at = CASE WHEN u.state = 'acked' THEN $7 ELSE p.submitted_at END
                   FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[],
                               $6::timestamptz[]) AS u (id, state, bank_ref, next_at, poll_at), l
                   WHERE p.id = u.id AND l.id = u.id AND p.dispatch_state = 'sending'""",
                sorted(ids), ids, states, bank_refs, next_at, poll_at, now,
            )  # fmt: skip
            if finals:  # the bank answered with a final status at once
                await apply_events_in_tx(conn, finals)
        self.submitted += sum(1 for s in states if s != "queued")
        await self._health.record(health, channels, now)
