"""Payouts as bank orders (payouts/bank_orders.py): their queue is `payout_queue`
(payouts/queue.py), a bank's word moves them through the payout transition table
(payouts/transitions.py, via payouts/bank_status.py)."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime

import asyncpg

from gateway.payouts import queue
from gateway.payouts.bank_orders import BankWord, Claimed, Pending
from gateway.payouts.bank_status import events_for
from gateway.payouts.queue import DispatchChange
from gateway.payouts.state import LEDGER_EVENTS, Event, Status
from gateway.payouts.transitions import PayoutEvent, lock, lock_queued, write

log = logging.getLogger("paygate.payouts")


class PayoutOrders:
    kind = "payout"

    async def due(self, pool: asyncpg.Pool, now: datetime, limit: int) -> list[Claimed]:
        rows = await queue.due(pool, now, limit)
        return [Claimed(r["id"], r["status"], r["amount_fen"], r["currency"], r["payee"],
                        r["purpose"], r["attempts"]) for r in rows]  # fmt: skip

    async def mark_sending(
        self,
        pool: asyncpg.Pool,
        sending: Sequence[tuple[Claimed, str]],
        later: Mapping[str, datetime],
        poll_at: datetime,
    ) -> set[str]:
        """`accepted -> processing` (ledger-free, with its outbox event) and the dispatch
        bookkeeping in the same row version."""
        async with pool.acquire() as conn, conn.transaction():
            locked = await lock_queued(conn, [p.id for p, _ in sending] + list(later))
            mine = locked.rows
            sent = [(p, ch) for p, ch in sending if p.id in mine]
            events = [PayoutEvent(p.id, Event.SUBMIT, bank_id=ch)
                      for p, ch in sent if mine[p.id]["status"] == Status.ACCEPTED]  # fmt: skip
            dispatch = {p.id: DispatchChange(state="sending", bank_id=ch, attempt=True,
                                             poll_at=poll_at) for p, ch in sent}  # fmt: skip
            for pid, at in later.items():
                if pid in mine:
                    dispatch[pid] = DispatchChange(next_at=at)
            if dispatch:
                await write(conn, locked, events, dispatch)
        return {p.id for p, _ in sent}

    async def record(
        self,
        pool: asyncpg.Pool,
        words: Sequence[BankWord],
        changes: Mapping[str, DispatchChange],
        only_in: Collection[str],
    ) -> None:
        events = [e for w in words for e in events_for(
            w.order_id, w.status, bank_id=w.bank_id, bank_ref=w.bank_ref,
            failure_code=w.failure_code, failure_message=w.failure_message,
            expect_bank_id=w.bank_id, expect_amount_fen=w.amount_fen,
            bank_date=w.bank_date)]  # fmt: skip
        bank_dates: dict[str, date | None] = {w.order_id: w.bank_date for w in words}
        if not events and not changes and not any(bank_dates.values()):
            return
        async with pool.acquire() as conn, conn.transaction():
            ids = {e.payout_id for e in events} | set(changes) | set(bank_dates)
            ledger = any(e.event in LEDGER_EVENTS for e in events)
            locked = await lock(conn, list(ids), balances=ledger)
            rows = locked.rows
            still = {pid: c for pid, c in changes.items()
                     if pid in rows and rows[pid]["queue_state"] in only_in}  # fmt: skip
            applied = await write(conn, locked, events, still, bank_dates)
        for a in applied:
            if a.reason == "mismatch":  # matched by ref, bank and amount before: a bug
                log.error("a bank's word does not match the locked payout", extra={
                    "payout_id": a.payout_id})  # fmt: skip

    async def ack_targets(
        self, pool: asyncpg.Pool, ids: Sequence[str]
    ) -> tuple[set[str], set[str]]:
        return await queue.ack_targets(pool, ids, "payout_queue")

    async def lease_polls(
        self, pool: asyncpg.Pool, now: datetime, limit: int, lease_until: datetime
    ) -> list[Pending]:
        rows = await queue.lease_polls(pool, now, limit, lease_until)
        return [Pending.from_row(r) for r in rows]
