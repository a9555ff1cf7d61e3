"""Apply payout events (approve, reject, submit, succeed, fail, return) exactly once.

What bank callbacks, status polls, the dispatcher and operators call. For a batch of events,
in one transaction: lock the payout rows (id order), step each through the transition table,
record the ledger move the table names, update the rows guarded by their expected status and
version, and write one outbox event per change. An event the table refuses (a duplicate, or
out of order, e.g. `fail` after `succeed`) changes nothing and moves no money: it is reported
back as not applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from gateway.ledger import journal, moves
from gateway.outbox import OutboxEvent, insert_events
from gateway.payouts import model
from gateway.payouts.state import (
    FINAL,
    Event,
    IllegalTransition,
    LedgerEffect,
    Status,
    transition,
)


@dataclass(frozen=True, slots=True)
class PayoutEvent:
    payout_id: str
    event: Event
    bank_id: str | None = None
    bank_ref: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None


@dataclass(frozen=True, slots=True)
class Applied:
    payout_id: str
    applied: bool
    status: str | None  # the payout's status after this event (None: no such payout)
    payout: dict[str, Any] | None
    reason: str | None = None


def _ledger_move(row: dict[str, Any], effect: LedgerEffect) -> moves.Move | None:
    m, pid = row["merchant_id"], row["id"]
    if effect is LedgerEffect.SETTLE:
        return moves.settle(m, pid, row["amount_fen"], row["fee_fen"], row["bank_id"])
    if effect is LedgerEffect.RELEASE:
        return moves.release(m, pid, row["funding_balance_fen"], row["funding_advance_fen"])
    if effect is LedgerEffect.RETURN:
        return moves.refund_return(m, pid, row["amount_fen"], row["bank_id"])
    return None


async def apply_events(conn: asyncpg.Connection, events: Sequence[PayoutEvent]) -> list[Applied]:
    async with conn.transaction():
        return await apply_events_in_tx(conn, events)


async def apply_events_in_tx(
    conn: asyncpg.Connection, events: Sequence[PayoutEvent]
) -> list[Applied]:
    """The same, inside the caller's transaction (which then owns commit and rollback)."""
    ids = sorted({e.payout_id for e in events})
    rows = {
        r["id"]: dict(r)
        for r in await conn.fetch(
            f"SELECT {model.COLUMNS} FROM payouts WHERE id = ANY($1::text[])"
            " ORDER BY id FOR UPDATE",
            ids,
        )
    }
    original = {pid: (row["status"], row["version"]) for pid, row in rows.items()}
    now = datetime.now(UTC)
    results: list[Applied] = []
    ledger: list[moves.Move] = []
    outbox: list[OutboxEvent] = []
    given_back: list[tuple[str, date, int]] = []  # daily budget freed by failed/rejected
    for ev in events:
        row = rows.get(ev.payout_id)
        if row is None:
            results.append(Applied(ev.payout_id, False, None, None, "no such payout"))
            continue
        try:
            new_status, effect = transition(Status(row["status"]), ev.event)
        except IllegalTransition as exc:
            results.append(Applied(ev.payout_id, False, row["status"], model.public(row),
                                   str(exc)))  # fmt: skip
            continue
        row["status"] = new_status.value
        row["version"] += 1
        row["updated_at"] = now
        if ev.bank_id is not None:
            row["bank_id"] = ev.bank_id
        if ev.bank_ref is not None:
            row["bank_ref"] = ev.bank_ref
        if new_status in (Status.FAILED, Status.REJECTED, Status.RETURNED):
            row["failure_code"] = ev.failure_code or new_status.value
            row["failure_message"] = ev.failure_message or ""
        if effect in (LedgerEffect.SETTLE, LedgerEffect.RETURN):
            assert row["bank_id"], f"{row['id']}: settlement needs the bank"
        move = _ledger_move(row, effect)
        if move is not None:
            ledger.append(move)
        if effect is LedgerEffect.RELEASE:
            given_back.append((row["merchant_id"], row["business_date"], row["amount_fen"]))
        snapshot = model.public(row)
        outbox.append(OutboxEvent(row["merchant_id"], f"payout.{new_status.value}", row["id"],
                                  row["version"], snapshot))  # fmt: skip
        results.append(Applied(ev.payout_id, True, new_status.value, snapshot))

    changed = [rows[pid] for pid in ids if pid in rows and rows[pid]["version"] != original[pid][1]]
    if changed:
        if ledger:
            await journal.lock_balances(conn, [m.merchant_id for m in ledger])
        updated = await conn.fetchval(
            """WITH u AS (
                   SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[],
                       $5::int[], $6::text[], $7::text[], $8::text[], $9::text[])
                   AS t (id, from_status, from_version, status, version, bank_id, bank_ref,
                         failure_code, failure_message)),
               done AS (
                   UPDATE payouts p SET status = u.status, version = u.version,
                       bank_id = u.bank_id, bank_ref = u.bank_ref,
                       failure_code = u.failure_code, failure_message = u.failure_message,
                       updated_at = $10,
                       -- a final payout has nothing left to dispatch or poll
                       dispatch_state = CASE WHEN u.status = ANY($11::text[]) THEN 'done'
                                             ELSE p.dispatch_state END
                   FROM u WHERE p.id = u.id AND p.status = u.from_status
                       AND p.version = u.from_version
                   RETURNING 1)
               SELECT count(*) FROM done""",
            [r["id"] for r in changed],
            [original[r["id"]][0] for r in changed],
            [original[r["id"]][1] for r in changed],
            [r["status"] for r in changed],
            [r["version"] for r in changed],
            [r["bank_id"] for r in changed],
            [r["bank_ref"] for r in changed],
            [r["failure_code"] for r in changed],
            [r["failure_message"] for r in changed],
            now,
            sorted(s.value for s in FINAL),
        )
        # The rows are locked, so the guard can only miss through a bug: refuse to commit.
        assert updated == len(changed), f"payout update guard missed: {updated}/{len(changed)}"
        await journal.record(conn, ledger)
        await insert_events(conn, outbox)
        if given_back:
            await _give_back_daily_budget(conn, given_back)
    return results


async def _give_back_daily_budget(
    conn: asyncpg.Connection, released: list[tuple[str, date, int]]
) -> None:
    """A failed or rejected payout no longer uses its merchant's daily budget (risk/rules.py).
    Runs under the merchants' balance-row locks, like the accept that counted it."""
    await conn.execute(
        """UPDATE merchant_daily_usage d
           SET amount_fen = greatest(d.amount_fen - u.amount, 0),
               count = greatest(d.count - u.n, 0)
           FROM (SELECT m, day, sum(a) AS amount, count(*) AS n
                 FROM unnest($1::text[], $2::date[], $3::bigint[]) AS r (m, day, a)
                 GROUP BY m, day) AS u
           WHERE d.merchant_id = u.m AND d.business_date = u.day""",
        [m for m, _, _ in released],
        [d for _, d, _ in released],
        [a for _, _, a in released],
    )


async def lock_payouts(conn: asyncpg.Connection, ids: Sequence[str]) -> None:
    """Lock payout rows in id order (the order every transaction takes them in): an UPDATE
    ... FROM unnest() locks in no particular order and deadlocks against apply_events."""
    await conn.execute(
        "SELECT 1 FROM payouts WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE", sorted(ids)
    )
