"""What the dispatcher and the poller work on: orders sent to banks, whatever their kind.

Payouts (代付, credits to a payee's card) and collections (代收, debits of a payer's card) go
to the banks the same way: queued, routed, submitted (recorded as `sending` BEFORE the
network call), acked or unknown, then queried when silent — never resent. One dispatcher and
one poller (dispatch.py, poll.py) serve both; each kind supplies its `BankOrders`: where its
open orders wait (its queue table) and what a bank's word does to one (its transition table,
ledger moves and events, in one transaction).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, Protocol

import asyncpg

from gateway.payouts.queue import DispatchChange

Direction = Literal["credit", "debit"]


@dataclass(frozen=True, slots=True)
class Claimed:
    """An order due for dispatch, as read (without locks)."""

    id: str
    status: str
    amount_fen: int
    currency: str
    payee: dict[str, Any]  # for a collection: the payer
    purpose: str | None
    attempts: int
    direction: Direction = "credit"

    def submission(self) -> dict[str, Any]:
        body = {"ref": self.id, "amount": self.amount_fen, "currency": self.currency,
                "payee": self.payee, "purpose": self.purpose}  # fmt: skip
        if self.direction == "debit":
            body["direction"] = "debit"
        return body


@dataclass(frozen=True, slots=True)
class Pending:
    """An order waiting for its bank, leased for one query."""

    id: str
    bank_id: str
    amount_fen: int  # what the bank's answer about it must say
    state: str  # in the queue: sending, acked or unknown
    poll_count: int  # leases, whatever the answers (paces the queries)
    bank_ref: str | None = None  # set once the bank showed it holds the order
    no_record_streak: int = 0  # the bank's "no such order" on this many queries in a row ...
    no_record_since: datetime | None = None  # ... the first at this simulated time

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Pending:
        """From a row of payouts/queue.lease_polls."""
        return cls(row["id"], row["bank_id"], row["amount_fen"], row["state"], row["poll_count"],
                   row["bank_ref"], row["no_record_streak"], row["no_record_since"])  # fmt: skip


@dataclass(frozen=True, slots=True)
class BankWord:
    """What a bank said about one order (a synchronous answer, a query, or the poller's
    conclusion that the bank never received it). Applied only to an order sent to `bank_id`
    for `amount_fen` (checked again on the locked row; None: the gateway's own conclusion)."""

    order_id: str
    status: str  # processing | succeeded | failed | returned
    bank_id: str
    bank_ref: str | None
    failure_code: str | None = None
    failure_message: str | None = None
    bank_date: date | None = None
    amount_fen: int | None = None


class BankOrders(Protocol):
    """One kind of order as the dispatcher and the poller see it."""

    @property
    def kind(self) -> str:
        """`payout` or `collection` (names the workers' loops and log lines)."""
        ...

    async def due(self, pool: asyncpg.Pool, now: datetime, limit: int) -> list[Claimed]:
        """Queued orders due for dispatch, oldest first, read without locks."""
        ...

    async def mark_sending(
        self,
        pool: asyncpg.Pool,
        sending: Sequence[tuple[Claimed, str]],
        later: Mapping[str, datetime],
        poll_at: datetime,
    ) -> set[str]:
        """One transaction: lock those of the orders still queued (skipping any another
        worker holds), record each of `sending` as sent to its channel (state `sending`, one
        more attempt, queried at `poll_at` unless answered) and put `later` back in the queue
        until their time. Returns the ids of `sending` it locked: those, and only those, are
        sent."""
        ...

    async def record(
        self,
        pool: asyncpg.Pool,
        words: Sequence[BankWord],
        changes: Mapping[str, DispatchChange],
        only_in: Collection[str],
    ) -> None:
        """One transaction: apply the banks' `words` (each through the kind's transition table,
        an illegal step changing nothing) and the queue `changes` of orders whose queue state
        is still one of `only_in` (a callback may have finished an order meanwhile)."""
        ...

    async def ack_targets(
        self, pool: asyncpg.Pool, ids: Sequence[str]
    ) -> tuple[set[str], set[str]]:
        """Of `ids` (read without locks): those still `sending`, and those without a bank
        date yet."""
        ...

    async def lease_polls(
        self, pool: asyncpg.Pool, now: datetime, limit: int, lease_until: datetime
    ) -> list[Pending]:
        """Orders waiting for their bank past their poll time, leased until `lease_until`."""
        ...
