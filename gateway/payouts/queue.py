"""The `payout_queue` table: the open payouts and where each stands (migration 0008).

    review  -approve->  queued  -dispatcher->  sending  -> acked | unknown | queued (refused)

A row exists exactly while its payout is open (review_pending, accepted, processing): accept
adds it, the transition to a final status deletes it, each in the transaction of the change.
Workers find their work here (what is due, what to query) instead of scanning `payouts`,
whose rows then change in place (see the migration). Every function here that changes a row
runs after its payout row is locked (the lock order: payouts, then this table).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from gateway.storage.batch_write import BatchWrite

WAITING_FOR_BANK = ("sending", "acked", "unknown")
# The queues of the kinds of bank orders, and the name of each one's key.
_KEYS = {"payout_queue": "payout_id", "collection_queue": "collection_id"}
_ORDERS = {"payout_queue": "payouts", "collection_queue": "collections"}  # the orders' tables


@dataclass(frozen=True, slots=True)
class DispatchChange:
    """The dispatcher's bookkeeping for one payout, written with its transition (if any) in
    one statement. `None` keeps a column as it is."""

    state: str | None = None  # queued | sending | acked | unknown
    bank_id: str | None = None  # the channel it goes to (the payout's bank_id)
    bank_ref: str | None = None
    attempt: bool = False  # one more submission
    poll_at: datetime | None = None  # with `state`: when to query (None: never)
    next_at: datetime | None = None  # when it is due for dispatch again
    submitted_at: datetime | None = None
    # The bank's "no such order" streak (migration 0016), set with the simulated time of its
    # first answer (None keeps both; 0 clears it). A new submission (`attempt`) clears it.
    no_record_streak: int | None = None
    no_record_since: datetime | None = None


def add_new(w: BatchWrite, payout_ids: Sequence[str], states: Sequence[str]) -> None:
    """New open payouts: `review` or `queued` (due now)."""
    ids, st = w.arg(list(payout_ids), "text[]"), w.arg(list(states), "text[]")
    w.add("queued", f"""
        INSERT INTO payout_queue (payout_id, state)
        SELECT * FROM unnest({ids}, {st})
        RETURNING 1""", counted=True)  # fmt: skip


def add_done(w: BatchWrite, payout_ids: Sequence[str], table: str = "payout_queue") -> None:
    """Orders that became final: nothing left to do. `table`: the kind's queue (payout_queue,
    collection_queue: the same columns, the key named after the kind)."""
    key = _KEYS[table]
    w.add(
        "unqueued",
        f"""
        DELETE FROM {table} WHERE {key} = ANY({w.arg(sorted(payout_ids), "text[]")})""",
    )


def add_approved(w: BatchWrite, payout_ids: Sequence[str], now: datetime) -> None:
    """Reviewed and approved: due for dispatch now."""
    w.add(
        "approved",
        f"""
        UPDATE payout_queue SET state = 'queued', next_at = {w.arg(now, "timestamptz")}
        WHERE payout_id = ANY({w.arg(sorted(payout_ids), "text[]")}) AND state = 'review'""",
    )


def add_dispatch(
    w: BatchWrite, changes: Mapping[str, DispatchChange], table: str = "payout_queue"
) -> None:
    key = _KEYS[table]
    ids = sorted(changes)
    c = [changes[i] for i in ids]
    keys = w.arg(ids, "text[]")
    cols = ", ".join((
        keys,
        w.arg([x.state for x in c], "text[]"),
        w.arg([int(x.attempt) for x in c], "int[]"),
        w.arg([x.poll_at for x in c], "timestamptz[]"),
        w.arg([x.next_at for x in c], "timestamptz[]"),
        w.arg([x.submitted_at for x in c], "timestamptz[]"),
        w.arg([x.no_record_streak for x in c], "int[]"),
        w.arg([x.no_record_since for x in c], "timestamptz[]"),
    ))  # fmt: skip
    w.add("dispatched", f"""
        UPDATE {table} q SET state = coalesce(u.state, q.state),
            attempts = q.attempts + u.attempt,
            poll_at = CASE WHEN u.state IS NULL THEN q.poll_at ELSE u.poll_at END,
            leased_until = CASE WHEN u.state IS NULL THEN q.leased_until END,
            next_at = coalesce(u.next_at, q.next_at),
            submitted_at = coalesce(u.submitted_at, q.submitted_at),
            no_record_streak = CASE WHEN u.attempt = 1 THEN 0
                                    ELSE coalesce(u.streak, q.no_record_streak) END,
            no_record_since = CASE WHEN u.attempt = 1 OR u.streak = 0 THEN NULL
                                   WHEN u.streak IS NULL THEN q.no_record_since
                                   ELSE u.since END
        FROM unnest({cols}) AS u (id, state, attempt, poll_at, next_at, submitted_at, streak,
                                  since)
        WHERE q.{key} = u.id AND q.{key} = ANY({keys})""")  # fmt: skip


PAYOUT_COLUMNS = "o.id, o.status, o.amount_fen, o.currency, o.payee, o.purpose"


async def due(
    pool: asyncpg.Pool,
    now: datetime,
    limit: int,
    table: str = "payout_queue",
    columns: str = PAYOUT_COLUMNS,
) -> list[asyncpg.Record]:
    """Queued orders due for dispatch, oldest first, read without locks, with the order's
    `columns` (alias `o`) and the queue's `attempts`; none while an operator has paused
    dispatch. `table`: the kind's queue."""
    key, orders = _KEYS[table], _ORDERS[table]
    # LATERAL: each order found by its key, whatever the planner thinks of the table sizes.
    rows: list[asyncpg.Record] = await pool.fetch(
        f"""SELECT {columns}, q.attempts
            FROM (SELECT {key}, attempts, next_at FROM {table}
                  WHERE state = 'queued' AND next_at <= $1
                    AND NOT (SELECT paused FROM dispatch_control WHERE id = 1)
                  ORDER BY next_at LIMIT $2) q
            CROSS JOIN LATERAL (SELECT * FROM {orders} WHERE id = q.{key}) o
            ORDER BY q.next_at""",
        now,
        limit,
    )
    return rows


async def ack_targets(
    pool: asyncpg.Pool, ids: Sequence[str], table: str = "payout_queue"
) -> tuple[set[str], set[str]]:
    """Of the orders `ids` (read without locks): those still `sending` in `table`, and those
    without a bank date yet."""
    key, orders = _KEYS[table], _ORDERS[table]
    rows = await pool.fetch(
        f"""SELECT o.id, q.state = 'sending' AS sending, o.bank_date IS NULL AS undated
            FROM {orders} o LEFT JOIN {table} q ON q.{key} = o.id
            WHERE o.id = ANY($1::text[])
                AND o.id >= $2 AND o.id <= $3  -- prunes months in a generic plan too""",
        list(ids),
        min(ids),
        max(ids),
    )
    return {r["id"] for r in rows if r["sending"]}, {r["id"] for r in rows if r["undated"]}


async def dispatch_paused(conn: asyncpg.Pool | asyncpg.Connection) -> dict[str, Any]:
    row = await conn.fetchrow("SELECT paused, updated_at FROM dispatch_control WHERE id = 1")
    assert row is not None
    return dict(row)


async def pause_dispatch(conn: asyncpg.Pool | asyncpg.Connection, paused: bool) -> dict[str, Any]:
    row = await conn.fetchrow(
        """UPDATE dispatch_control SET paused = $1, updated_at = now() WHERE id = 1
           RETURNING paused, updated_at""",
        paused,
    )
    assert row is not None
    return dict(row)


async def lease_polls(
    pool: asyncpg.Pool,
    now: datetime,
    limit: int,
    lease_until: datetime,
    table: str = "payout_queue",
) -> list[asyncpg.Record]:
    """Orders waiting for their bank past their poll time and not leased, leased
    (`leased_until` set to `lease_until`, one more poll counted: no index names either, so
    the lease is a HOT update, migration 0020) so that no other poller takes them meanwhile:
    `id`, `bank_id`, `amount_fen` (what an answer about it must say), `bank_ref` (set once
    the bank showed it holds the order), `state`, `poll_count`, `no_record_streak`,
    `no_record_since` each."""
    key, orders = _KEYS[table], _ORDERS[table]
    rows: list[asyncpg.Record] = await pool.fetch(
        f"""WITH c AS (
                SELECT {key} FROM {table}
                WHERE state IN ('sending', 'acked', 'unknown') AND poll_at <= $1
                    AND (leased_until IS NULL OR leased_until <= $1)
                ORDER BY poll_at LIMIT $2 FOR UPDATE SKIP LOCKED),
            leased AS (
                UPDATE {table} q SET leased_until = $3, poll_count = q.poll_count + 1
                FROM c WHERE q.{key} = c.{key}
                RETURNING q.{key}, q.state, q.poll_count, q.no_record_streak, q.no_record_since)
            SELECT l.{key} AS id, o.bank_id, o.amount_fen, o.bank_ref, l.state, l.poll_count,
                   l.no_record_streak, l.no_record_since
            FROM leased l CROSS JOIN LATERAL (
                SELECT bank_id, amount_fen, bank_ref FROM {orders} WHERE id = l.{key}) o""",
        now,
        limit,
        lease_until,
    )
    return rows


async def reviews(
    conn: asyncpg.Pool | asyncpg.Connection, columns: str, after_id: str | None, limit: int
) -> list[asyncpg.Record]:
    """Payouts waiting for an operator, in id order, with the payout `columns`."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {columns}
            FROM (SELECT payout_id FROM payout_queue
                  WHERE state = 'review' AND ($1::text IS NULL OR payout_id > $1)
                  ORDER BY payout_id LIMIT $2) q
            CROSS JOIN LATERAL (SELECT * FROM payouts WHERE id = q.payout_id) p
            ORDER BY q.payout_id""",
        after_id,
        limit,
    )
    return rows
