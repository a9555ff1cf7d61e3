"""Apply banks' words to collections (代收, SPEC 16) exactly once, with their money.

For a batch of words, in one transaction: lock the collection rows (id order) and, when a
word may move money, in the lock order (journal.py) the merchants' balance rows, the personal
accounts' balance rows, the payers' outstanding advances (collection_advances) and the
advance pool; step each word through the transition table (state.py); then write every change
(rows, queue, ledger moves, advances, outbox) as one statement. A word the table refuses (a
duplicate, a late word about a final collection) changes nothing and moves no money.

succeeded: the amount arrives through the bank's reserve; it first repays what the company
fronted for the same payer of the same merchant (back to the merchant's advance line, as far
as the line still carries it; beyond that the merchant had repaid the line itself, so that
part reimburses the merchant's available), the rest is credited to the account.
failed + advance_on_failure (公司垫付): the amount is fronted from the merchant's advance line
to the account, if the line (and the platform's pool) has room for all of it; else nothing is
fronted and the failure stands alone (`advanced` 0).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from gateway.collection import model
from gateway.collection.state import (
    CollectionEvent,
    CollectionStatus,
    IllegalCollectionStep,
    LedgerEffect,
    transition,
)
from gateway.ledger import journal, moves
from gateway.outbox import OutboxEvent, add_events
from gateway.payouts import queue
from gateway.payouts.queue import DispatchChange
from gateway.storage.batch_write import BatchWrite

QUEUE = "collection_queue"


@dataclass(frozen=True, slots=True)
class CollectionWord:
    collection_id: str
    event: CollectionEvent
    bank_id: str | None = None
    bank_ref: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    # A bank's word applies only to a collection sent to that bank, for that amount.
    expect_bank_id: str | None = None
    expect_amount_fen: int | None = None
    bank_date: date | None = None  # the bank's business date for it, when the word tells it


@dataclass(frozen=True, slots=True)
class Applied:
    collection_id: str
    applied: bool
    status: str | None  # after this word (None: no such collection)
    reason: str | None = None


_LOCK = f"""
    SELECT {", ".join("c." + col.strip() for col in model.COLUMNS.split(","))},
           q.state AS queue_state, a.kind AS account_kind
    FROM collections c
    JOIN customer_accounts a ON a.id = c.account_id
    LEFT JOIN LATERAL (SELECT state FROM collection_queue WHERE collection_id = c.id) q ON true
    WHERE c.id = ANY($1::text[]) ORDER BY c.id FOR UPDATE OF c"""

# The queue row is locked too, so its `queued` is re-checked on the row as it now is (see
# payouts/transitions.py: two workers must never both send one collection).
_LOCK_QUEUED = f"""
    SELECT {", ".join("c." + col.strip() for col in model.COLUMNS.split(","))},
           q.state AS queue_state
    FROM collections c JOIN collection_queue q ON q.collection_id = c.id
    WHERE c.id = ANY($1::text[]) AND q.collection_id = ANY($1::text[]) AND q.state = 'queued'
    ORDER BY c.id FOR UPDATE OF c, q SKIP LOCKED"""


@dataclass(slots=True)
class Funds:
    """What the locked rows say, moved as the batch's words are applied."""

    advance_used: dict[str, int]  # merchant -> advance_used
    advance_room: dict[str, int]  # merchant -> what its line still allows
    outstanding: dict[tuple[str, str], int]  # (merchant, payer account_no) -> still owed
    pool_room: int


async def lock_queued(conn: asyncpg.Connection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Those of `ids` still queued for dispatch and not held by another worker, locked."""
    return {r["id"]: dict(r) for r in await conn.fetch(_LOCK_QUEUED, sorted(set(ids)))}


async def apply_words(
    conn: asyncpg.Connection,
    words: Sequence[CollectionWord],
    dispatch: Mapping[str, DispatchChange] | None = None,
    only_in: Collection[str] | None = None,
    bank_dates: Mapping[str, date | None] | None = None,
) -> list[Applied]:
    """One transaction (a savepoint inside the caller's). `dispatch`: queue changes written
    with the words, for collections whose queue state is one of `only_in` (all of them when
    None). `bank_dates`: business dates banks' answers told, kept on rows that have none."""
    dispatch = dispatch or {}
    dates = dict(bank_dates or {})
    async with conn.transaction():
        ids = sorted({w.collection_id for w in words} | set(dispatch) | set(dates))
        rows = {r["id"]: dict(r) for r in await conn.fetch(_LOCK, ids)}
        # A word's date counts when the word is the collection's own bank's (any status).
        dates |= {
            w.collection_id: w.bank_date
            for w in words
            if w.bank_date is not None
            and w.collection_id in rows
            and not _mismatch(w, rows[w.collection_id])
        }
        funds = await _lock_funds(conn, [rows[w.collection_id] for w in words
                                         if w.collection_id in rows])  # fmt: skip
        if only_in is not None:
            dispatch = {cid: c for cid, c in dispatch.items()
                        if cid in rows and rows[cid]["queue_state"] in only_in}  # fmt: skip
        return await _write(conn, rows, words, dispatch, funds, dates)


async def _lock_funds(conn: asyncpg.Connection, rows: list[dict[str, Any]]) -> Funds | None:
    """Lock what the words' collections may move, in the lock order; None when none of them
    is still pending (nothing can move)."""
    pending = [r for r in rows if r["status"] == CollectionStatus.PENDING]
    if not pending:
        return None
    merchants = sorted({r["merchant_id"] for r in pending})
    balances = await conn.fetch(
        """SELECT b.merchant_id, b.advance_used_fen, m.advance_limit_fen
           FROM merchant_balances b JOIN merchants m ON m.id = b.merchant_id
           WHERE b.merchant_id = ANY($1::text[]) ORDER BY b.merchant_id
           FOR UPDATE OF b FOR SHARE OF m""",  # the line as last committed (accept_reads)
        merchants,
    )
    await conn.execute(
        """SELECT 1 FROM account_balances WHERE account_id = ANY($1::text[])
           ORDER BY account_id FOR UPDATE""",
        sorted({r["account_id"] for r in pending if r["account_kind"] == "personal"}),
    )
    owed = await conn.fetch(
        """SELECT a.merchant_id, a.payer_account_no, a.outstanding_fen
           FROM collection_advances a
           JOIN unnest($1::text[], $2::text[]) AS k (merchant_id, payer_account_no)
             USING (merchant_id, payer_account_no)
           ORDER BY a.merchant_id, a.payer_account_no FOR UPDATE OF a""",
        [r["merchant_id"] for r in pending],
        [r["payer_account_no"] for r in pending],
    )
    pool_room = 0
    if any(r["advance_on_failure"] for r in pending):
        pool_room = await conn.fetchval(
            "SELECT cap_fen - used_fen FROM advance_pool WHERE id = 1 FOR UPDATE"
        )
    return Funds(
        advance_used={b["merchant_id"]: b["advance_used_fen"] for b in balances},
        advance_room={
            b["merchant_id"]: b["advance_limit_fen"] - b["advance_used_fen"] for b in balances
        },
        outstanding={(o["merchant_id"], o["payer_account_no"]): o["outstanding_fen"] for o in owed},
        pool_room=pool_room,
    )


def _mismatch(w: CollectionWord, row: dict[str, Any]) -> bool:
    return (w.expect_bank_id is not None and row["bank_id"] != w.expect_bank_id) or (
        w.expect_amount_fen is not None and row["amount_fen"] != w.expect_amount_fen
    )


def _money(row: dict[str, Any], effect: LedgerEffect, funds: Funds) -> moves.Move | None:
    """The ledger move of one step, with the locked figures moved along."""
    m, cid, amount = row["merchant_id"], row["id"], row["amount_fen"]
    account = row["account_id"] if row["account_kind"] == "personal" else None
    payer = (m, row["payer_account_no"])
    if effect is LedgerEffect.CREDIT:
        repay = min(amount, funds.outstanding.get(payer, 0))
        line = min(repay, funds.advance_used[m])
        funds.outstanding[payer] = funds.outstanding.get(payer, 0) - repay
        funds.advance_used[m] -= line
        funds.advance_room[m] += line
        funds.pool_room += line
        row["repaid_fen"] = repay
        return moves.collection_credited(m, cid, amount, repay, line, account, row["bank_id"])
    if not row["advance_on_failure"] or amount > min(funds.advance_room[m], funds.pool_room):
        return None
    funds.outstanding[payer] = funds.outstanding.get(payer, 0) + amount
    funds.advance_used[m] += amount
    funds.advance_room[m] -= amount
    funds.pool_room -= amount
    row["advanced_fen"] = amount
    return moves.collection_fronted(m, cid, amount, account)


async def _write(
    conn: asyncpg.Connection,
    rows: dict[str, dict[str, Any]],
    words: Sequence[CollectionWord],
    dispatch: Mapping[str, DispatchChange],
    funds: Funds | None,
    dates: Mapping[str, date | None] | None = None,
) -> list[Applied]:
    original = {cid: (r["status"], r["version"], r["bank_id"], r["bank_ref"], r["bank_date"])
                for cid, r in rows.items()}  # fmt: skip
    owed_before = dict(funds.outstanding) if funds else {}
    now = datetime.now(UTC)
    results: list[Applied] = []
    ledger: list[moves.Move] = []
    events: list[OutboxEvent] = []
    for word in words:
        row = rows.get(word.collection_id)
        if row is None:
            results.append(Applied(word.collection_id, False, None, "no such collection"))
            continue
        if _mismatch(word, row):
            results.append(Applied(word.collection_id, False, row["status"], "mismatch"))
            continue
        try:
            to, effect = transition(CollectionStatus(row["status"]), word.event)
        except IllegalCollectionStep as exc:
            results.append(Applied(word.collection_id, False, row["status"], str(exc)))
            continue
        assert funds is not None, "a pending collection's funds are locked"
        row["status"] = to.value
        row["version"] += 1
        row["updated_at"] = now
        row["bank_id"] = word.bank_id or row["bank_id"]
        row["bank_ref"] = word.bank_ref or row["bank_ref"]
        if to is CollectionStatus.FAILED:
            row["failure_code"] = word.failure_code or "bank_failed"
            row["failure_message"] = word.failure_message or ""
        assert row["bank_id"], f"{row['id']}: a bank's word names the bank"
        move = _money(row, effect, funds)
        if move is not None:
            ledger.append(move)
        public = model.public(row)
        events.append(OutboxEvent(row["merchant_id"], f"collection.{to.value}", row["id"],
                                  row["version"], public))  # fmt: skip
        results.append(Applied(word.collection_id, True, to.value))

    for cid, c in dispatch.items():  # a submission names the bank, an answer its ref
        rows[cid]["bank_id"] = c.bank_id or rows[cid]["bank_id"]
        rows[cid]["bank_ref"] = c.bank_ref or rows[cid]["bank_ref"]
    for cid, day in (dates or {}).items():  # kept once known (reconciliation finds it by it)
        if cid in rows:
            rows[cid]["bank_date"] = rows[cid]["bank_date"] or day
    touched = [
        r
        for cid, r in sorted(rows.items())
        if original[cid] != (r["status"], r["version"], r["bank_id"], r["bank_ref"], r["bank_date"])
    ]
    final = sorted(
        cid
        for cid, r in rows.items()
        if r["version"] != original[cid][1] and r["status"] != "pending"
    )
    dispatch = {cid: c for cid, c in dispatch.items() if cid not in final}  # fmt: skip
    if not touched and not dispatch:
        return results
    w = BatchWrite()
    if touched:
        _add_updates(w, touched, original, now)
    if final:
        queue.add_done(w, final, QUEUE)
    if dispatch:
        queue.add_dispatch(w, dispatch, QUEUE)
    balance_rows = journal.add_moves(w, ledger)
    owed = {k: v for k, v in (funds.outstanding.items() if funds else ())
            if v != owed_before.get(k, 0)}  # fmt: skip
    if owed:
        _add_outstanding(w, owed)
    add_events(w, events)
    counts = await w.run(conn)
    # The rows are locked, so the guard can only miss through a bug: refuse to commit.
    assert counts.get("collections", 0) == len(touched), counts
    assert counts.get("balances", 0) == balance_rows, counts
    assert counts.get("account_balances", 0) == journal.account_rows(ledger), counts
    assert counts.get("outbox", 0) == len(events), counts
    return results


def _add_updates(
    w: BatchWrite,
    touched: list[dict[str, Any]],
    original: dict[str, tuple[str, int, str | None, str | None, date | None]],
    now: datetime,
) -> None:
    def col(name: str, pg_type: str) -> str:
        return w.arg([r[name] for r in touched], pg_type)

    ids = col("id", "text[]")
    u = ", ".join((
        ids,
        w.arg([original[r["id"]][1] for r in touched], "int[]"),
        col("status", "text[]"), col("version", "int[]"), col("bank_id", "text[]"),
        col("bank_ref", "text[]"), col("failure_code", "text[]"),
        col("failure_message", "text[]"), col("advanced_fen", "bigint[]"),
        col("repaid_fen", "bigint[]"), col("bank_date", "date[]"),
    ))  # fmt: skip
    w.add("collections", f"""
        UPDATE collections c SET status = u.status, version = u.version, bank_id = u.bank_id,
            bank_ref = u.bank_ref, failure_code = u.failure_code,
            failure_message = u.failure_message, advanced_fen = u.advanced,
            repaid_fen = u.repaid, bank_date = coalesce(c.bank_date, u.bank_date),
            updated_at = CASE WHEN u.version = c.version THEN c.updated_at
                              ELSE {w.arg(now, "timestamptz")} END
        FROM unnest({u}) AS u (id, from_version, status, version, bank_id, bank_ref,
                               failure_code, failure_message, advanced, repaid, bank_date)
        WHERE c.id = u.id AND c.id = ANY({ids}) AND c.version = u.from_version
        RETURNING 1""", counted=True)  # fmt: skip


def _add_outstanding(w: BatchWrite, owed: Mapping[tuple[str, str], int]) -> None:
    """The payers' outstanding advances as they now stand (rows locked, or new)."""
    keys = sorted(owed)
    w.add(
        "advances",
        f"""
        INSERT INTO collection_advances (merchant_id, payer_account_no, outstanding_fen)
        SELECT * FROM unnest({w.arg([k[0] for k in keys], "text[]")},
                             {w.arg([k[1] for k in keys], "text[]")},
                             {w.arg([owed[k] for k in keys], "bigint[]")})
        ON CONFLICT (merchant_id, payer_account_no)
        DO UPDATE SET outstanding_fen = excluded.outstanding_fen, updated_at = now()""",
    )


async def mark_sending(
    conn: asyncpg.Connection,
    ids: Sequence[str],
    dispatch: Callable[[Mapping[str, dict[str, Any]]], dict[str, DispatchChange]],
) -> set[str]:
    """One transaction: lock those of `ids` still queued (skipping any another worker holds)
    and write the queue changes `dispatch` makes of them. Returns the ids locked."""
    async with conn.transaction():
        rows = await lock_queued(conn, ids)
        changes = dispatch(rows)
        if changes:
            await _write(conn, rows, [], changes, None)
    return set(rows)
