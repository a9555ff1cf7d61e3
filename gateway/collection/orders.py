"""Collections as bank orders (payouts/bank_orders.py): debits (`direction: debit`) sent by
the same dispatcher and poller as payouts; their queue is `collection_queue`, a bank's word
moves them through the collection transition table (collection/transitions.py)."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from gateway.collection.state import event_for
from gateway.collection.transitions import QUEUE, CollectionWord, apply_words, mark_sending
from gateway.payouts import queue
from gateway.payouts.bank_orders import BankWord, Claimed, Pending
from gateway.payouts.queue import DispatchChange

log = logging.getLogger("paygate.collections")


class CollectionOrders:
    kind = "collection"

    async def due(self, pool: asyncpg.Pool, now: datetime, limit: int) -> list[Claimed]:
        rows = await queue.due(pool, now, limit, QUEUE,
                               "o.id, o.status, o.amount_fen, o.currency, o.payer")  # fmt: skip
        # The bank debits the payer's card: the payer stands where a payout's payee would.
        return [Claimed(r["id"], r["status"], r["amount_fen"], r["currency"],
                        {**r["payer"], "account_type": "personal"}, "collection", r["attempts"],
                        direction="debit") for r in rows]  # fmt: skip

    async def mark_sending(
        self,
        pool: asyncpg.Pool,
        sending: Sequence[tuple[Claimed, str]],
        later: Mapping[str, datetime],
        poll_at: datetime,
    ) -> set[str]:
        channel = {c.id: ch for c, ch in sending}

        def changes(mine: Mapping[str, dict[str, Any]]) -> dict[str, DispatchChange]:
            out = {cid: DispatchChange(state="sending", bank_id=ch, attempt=True, poll_at=poll_at)
                   for cid, ch in channel.items() if cid in mine}  # fmt: skip
            out |= {cid: DispatchChange(next_at=at) for cid, at in later.items() if cid in mine}
            return out

        async with pool.acquire() as conn:
            mine = await mark_sending(conn, [c.id for c, _ in sending] + list(later), changes)
        return {cid for cid in channel if cid in mine}

    async def record(
        self,
        pool: asyncpg.Pool,
        words: Sequence[BankWord],
        changes: Mapping[str, DispatchChange],
        only_in: Collection[str],
    ) -> None:
        applied = []
        for w in words:
            if w.status == "returned":  # a debit is never returned: no news (logged)
                log.warning("a bank says a collection was returned; ignored", extra={
                    "collection_id": w.order_id, "bank_id": w.bank_id})  # fmt: skip
                continue
            event = event_for(w.status)
            if event is not None:
                applied.append(CollectionWord(w.order_id, event,
                                              w.bank_id, w.bank_ref, w.failure_code,
                                              w.failure_message, expect_bank_id=w.bank_id,
                                              expect_amount_fen=w.amount_fen))  # fmt: skip
        dates = {w.order_id: w.bank_date for w in words if w.bank_date is not None}
        if not applied and not changes and not dates:
            return
        async with pool.acquire() as conn:
            results = await apply_words(conn, applied, changes, only_in, dates)
        for a in results:
            if a.reason == "mismatch":  # matched by ref, bank and amount before: a bug
                log.error("a bank's word does not match the locked collection", extra={
                    "collection_id": a.collection_id})  # fmt: skip

    async def ack_targets(
        self, pool: asyncpg.Pool, ids: Sequence[str]
    ) -> tuple[set[str], set[str]]:
        return await queue.ack_targets(pool, ids, QUEUE)

    async def lease_polls(
        self, pool: asyncpg.Pool, now: datetime, limit: int, lease_until: datetime
    ) -> list[Pending]:
        rows = await queue.lease_polls(pool, now, limit, lease_until, QUEUE)
        return [Pending.from_row(r) for r in rows]
