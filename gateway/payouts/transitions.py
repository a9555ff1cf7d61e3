"""Apply payout events (approve, reject, submit, succeed, fail, return) exactly once.

What bank callbacks, status polls, the dispatcher and operators call. For a batch of events,
in one transaction and two statements: lock the payout rows (id order) and, if an event may
move money, their merchants' balance rows (merchant order) in the same statement; step each
event through the transition table; then, as one statement, update the rows guarded by their
expected status and version, record the ledger moves the table names (with the daily budget a
failed or rejected payout gives back) and write one outbox event per change. An event the
table refuses (a duplicate, or out of order, e.g. `fail` after `succeed`) changes nothing and
moves no money: it is reported back as not applied. So is a bank's word about a payout that
is not that bank's or names another amount (`expect_*`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from gateway.ledger import journal, moves
from gateway.ledger.journal import UsageChange
from gateway.outbox import OutboxEvent, add_events
from gateway.payouts import model, queue
from gateway.payouts.queue import DispatchChange
from gateway.payouts.state import (
    FINAL,
    LEDGER_EVENTS,
    Event,
    IllegalTransition,
    LedgerEffect,
    Status,
    transition,
)
from gateway.storage.batch_write import BatchWrite


@dataclass(frozen=True, slots=True)
class PayoutEvent:
    payout_id: str
    event: Event
    bank_id: str | None = None
    bank_ref: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    # A bank's word applies only to a payout sent to that bank, for that amount.
    expect_bank_id: str | None = None
    expect_amount_fen: int | None = None
    # The bank's business date for the payout, when its word tells it (kept once set).
    bank_date: date | None = None


@dataclass(frozen=True, slots=True)
class Applied:
    payout_id: str
    applied: bool
    status: str | None  # the payout's status after this event (None: no such payout)
    payout: dict[str, Any] | None
    reason: str | None = None


def _ledger_moves(
    row: dict[str, Any], effect: LedgerEffect, advance_used: dict[str, int]
) -> list[moves.Move]:
    """The step's move, and for a withdrawal (提现) that gives money back, the amount on to
    the personal account it came from."""
    move = _ledger_move(row, effect, advance_used)
    if move is None:
        return []
    if row["account_id"] and effect in (LedgerEffect.RELEASE, LedgerEffect.RETURN):
        back = moves.withdrawal_back(row["merchant_id"], row["id"], row["amount_fen"],
                                     row["account_id"])  # fmt: skip
        return [move, back]
    return [move]


def _ledger_move(
    row: dict[str, Any], effect: LedgerEffect, advance_used: dict[str, int]
) -> moves.Move | None:
    m, pid = row["merchant_id"], row["id"]
    if effect is LedgerEffect.SETTLE:
        return moves.settle(m, pid, row["amount_fen"], row["fee_fen"], row["bank_id"])
    if effect is LedgerEffect.RELEASE:
        # The advance part goes back to the credit line, as far as the line still carries it:
        # a B2B payment that cleared meanwhile repaid the advance first (b2b_cleared) with the
        # merchant's own money, so that much comes back to available instead. `advance_used`
        # is the merchant's locked row, kept current across the batch.
        advance = row["funding_advance_fen"]
        back_to_line = min(advance, advance_used[m])
        advance_used[m] -= back_to_line
        balance = row["funding_balance_fen"] + advance - back_to_line
        return moves.release(m, pid, balance, back_to_line)
    if effect is LedgerEffect.RETURN:
        return moves.refund_return(m, pid, row["amount_fen"], row["bank_id"])
    return None


FINAL_VALUES = frozenset(s.value for s in FINAL)


@dataclass(slots=True)
class Locked:
    """Payout rows locked by this transaction, with their merchants' budget day (when the
    balance rows are locked too)."""

    rows: dict[str, dict[str, Any]]
    usage_date: dict[str, date | None]
    balances_locked: bool
    bank: dict[str, tuple[str | None, str | None, date | None]]  # bank id, ref, date as locked
    advance_used: dict[str, int]  # merchant -> its balance row's advance_used (when locked)


async def apply_events(conn: asyncpg.Connection, events: Sequence[PayoutEvent]) -> list[Applied]:
    async with conn.transaction():
        return await apply_events_in_tx(conn, events)


async def apply_events_in_tx(
    conn: asyncpg.Connection,
    events: Sequence[PayoutEvent],
    dispatch: Mapping[str, DispatchChange] | None = None,
) -> list[Applied]:
    """The same, inside the caller's transaction (which then owns commit and rollback);
    `dispatch` changes are written with the events (payouts without an event included)."""
    ids = sorted({e.payout_id for e in events} | set(dispatch or ()))
    locked = await lock(conn, ids, any(e.event in LEDGER_EVENTS for e in events))
    return await write(conn, locked, events, dispatch or {})


# Rows carry their work-queue state too (payouts/queue.py; NULL once final), for callers that
# guard their bookkeeping on it.
_LOCK = f"""
    SELECT {model.COLUMNS}, q.state AS queue_state
    FROM payouts p
    LEFT JOIN LATERAL (SELECT state FROM payout_queue WHERE payout_id = p.id) q ON true
    WHERE p.id = ANY($1::text[]) AND p.id >= $2 AND p.id <= $3 ORDER BY p.id FOR UPDATE OF p"""

# The balance rows are locked in merchant order after the payout rows (the lock order).
_LOCK_WITH_BALANCES = f"""
    WITH p AS ({_LOCK}),
    b AS (
        SELECT merchant_id, usage_date, advance_used_fen FROM merchant_balances
        WHERE merchant_id IN (SELECT merchant_id FROM p) ORDER BY merchant_id FOR UPDATE)
    SELECT p.*, b.usage_date, b.advance_used_fen AS merchant_advance_used
    FROM p JOIN b USING (merchant_id)"""

# The dispatcher's: only payouts still queued, and none another worker holds right now. The
# queue row is locked too (payouts, then their queue rows: the lock order): a row locked after
# another worker committed `sending` is read again as it now is, so its `queued` is re-checked
# (locking the payout alone would keep the queue row of the statement's snapshot, and two
# workers could both send it).
_LOCK_QUEUED = f"""
    SELECT {model.COLUMNS}, q.state AS queue_state
    FROM payouts p JOIN payout_queue q ON q.payout_id = p.id
    WHERE p.id = ANY($1::text[]) AND p.id >= $2 AND p.id <= $3
      AND q.payout_id = ANY($1::text[]) AND q.state = 'queued'
    ORDER BY p.id FOR UPDATE OF p, q SKIP LOCKED"""


async def lock_queued(conn: asyncpg.Connection, ids: Sequence[str]) -> Locked:
    """Statement 1 for the dispatcher: lock those of `ids` still queued for dispatch and not
    locked by another transaction (another worker has them: skip, do not wait)."""
    return _locked(await conn.fetch(_LOCK_QUEUED, *_bounded(ids)), balances=False)


async def lock(conn: asyncpg.Connection, ids: Sequence[str], balances: bool) -> Locked:
    """Statement 1: lock the payout rows (id order) and, with `balances`, their merchants'
    balance rows (merchant order, after the payouts: the lock order)."""
    query = _LOCK_WITH_BALANCES if balances else _LOCK
    return _locked(await conn.fetch(query, *_bounded(ids)), balances=balances)


def _bounded(ids: Sequence[str]) -> tuple[list[str], str | None, str | None]:
    """The ids in order, and their least and greatest. PostgreSQL sometimes runs these
    statements on their prepared statement's generic plan (planned once, without the values),
    and a generic plan cannot prune partitions by `id = ANY($1)`: it read every month's
    partition of payouts (seen in pg_stat_statements `plans` < `calls` and auto_explain). The
    bounds `id >= $2 AND id <= $3` prune when the plan starts ("Subplans Removed"), so a batch
    reads its own months' partitions whichever plan runs."""
    ordered = sorted(ids)
    return ordered, ordered[0] if ordered else None, ordered[-1] if ordered else None


def _locked(records: Sequence[Any], *, balances: bool) -> Locked:
    rows: dict[str, dict[str, Any]] = {}
    usage_date: dict[str, date | None] = {}
    advance_used: dict[str, int] = {}
    for r in records:
        row = dict(r)
        usage_date[row["merchant_id"]] = row.pop("usage_date", None)
        advance_used[row["merchant_id"]] = row.pop("merchant_advance_used", 0) or 0
        rows[row["id"]] = row
    bank = {pid: (row["bank_id"], row["bank_ref"], row["bank_date"]) for pid, row in rows.items()}
    return Locked(rows, usage_date, balances, bank, advance_used)


async def write(
    conn: asyncpg.Connection,
    locked: Locked,
    events: Sequence[PayoutEvent],
    dispatch: Mapping[str, DispatchChange],
    bank_dates: Mapping[str, date | None] | None = None,
) -> list[Applied]:
    """Statement 2: step `events` through the table against the locked rows and write every
    change (rows, ledger, outbox, dispatch bookkeeping) as one statement. `bank_dates`: the
    business dates banks' answers told (kept on rows that have none, whatever their status:
    reconciliation finds a payout's statement by it)."""
    rows = locked.rows
    original = {pid: (row["status"], row["version"]) for pid, row in rows.items()}
    now = datetime.now(UTC)
    results: list[Applied] = []
    ledger: list[moves.Move] = []
    outbox: list[OutboxEvent] = []
    given_back: list[UsageChange] = []  # daily budget freed by failed/rejected, today's only
    for ev in events:
        row = rows.get(ev.payout_id)
        if row is None:
            results.append(Applied(ev.payout_id, False, None, None, "no such payout"))
            continue
        if _mismatch(ev, row):
            results.append(Applied(ev.payout_id, False, row["status"], model.public(row),
                                   "mismatch"))  # fmt: skip
            continue
        try:
            new_status, effect = transition(Status(row["status"]), ev.event)
        except IllegalTransition as exc:
            row["bank_date"] = row["bank_date"] or ev.bank_date  # a late word still tells it
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
        row["bank_date"] = row["bank_date"] or ev.bank_date
        if new_status in (Status.FAILED, Status.REJECTED, Status.RETURNED):
            row["failure_code"] = ev.failure_code or new_status.value
            row["failure_message"] = ev.failure_message or ""
        if effect in (LedgerEffect.SETTLE, LedgerEffect.RETURN):
            assert row["bank_id"], f"{row['id']}: settlement needs the bank"
        ledger += _ledger_moves(row, effect, locked.advance_used)
        m, day = row["merchant_id"], row["business_date"]
        if effect is LedgerEffect.RELEASE and locked.usage_date.get(m) == day:
            given_back.append(UsageChange(m, day, -row["amount_fen"], -1, roll=False))
        snapshot = model.public(row)
        outbox.append(OutboxEvent(m, f"payout.{new_status.value}", row["id"], row["version"],
                                  snapshot))  # fmt: skip
        results.append(Applied(ev.payout_id, True, new_status.value, snapshot))

    changed = [pid for pid in sorted(rows) if rows[pid]["version"] != original[pid][1]]
    final = {pid for pid in changed if rows[pid]["status"] in FINAL_VALUES}
    # A final payout leaves the queue; its dispatch bookkeeping no longer matters.
    dispatch = {pid: c for pid, c in dispatch.items() if pid in rows and pid not in final}
    for pid, c in dispatch.items():  # a (re)submission names the bank, an answer its ref
        rows[pid]["bank_id"] = c.bank_id or rows[pid]["bank_id"]
        rows[pid]["bank_ref"] = c.bank_ref or rows[pid]["bank_ref"]
    for pid, day in (bank_dates or {}).items():
        if pid in rows:
            rows[pid]["bank_date"] = rows[pid]["bank_date"] or day
    moved = {
        pid
        for pid, row in rows.items()
        if locked.bank[pid] != (row["bank_id"], row["bank_ref"], row["bank_date"])
    }
    touched = sorted(set(changed) | moved)
    if not touched and not dispatch:
        return results
    assert not ledger or locked.balances_locked, "a ledger move without the balance rows locked"
    w = BatchWrite()
    if touched:
        _add_updates(w, [rows[pid] for pid in touched], original, now)
    approved = [pid for pid in changed if original[pid][0] == Status.REVIEW_PENDING
                and rows[pid]["status"] == Status.ACCEPTED]  # fmt: skip
    if approved:
        queue.add_approved(w, approved, now)
    if final:
        queue.add_done(w, sorted(final))
    if dispatch:
        queue.add_dispatch(w, dispatch)
    balance_rows = journal.add_moves(w, ledger, given_back)
    add_events(w, outbox)
    counts = await w.run(conn)
    # The rows are locked, so the guard can only miss through a bug: refuse to commit.
    assert counts.get("updated", 0) == len(touched), f"payout update guard missed: {counts}"
    assert counts.get("balances", 0) == balance_rows, counts
    assert counts.get("account_balances", 0) == journal.account_rows(ledger), counts
    assert counts.get("outbox", 0) == len(outbox), counts
    return results


def _mismatch(ev: PayoutEvent, row: dict[str, Any]) -> bool:
    return (ev.expect_bank_id is not None and row["bank_id"] != ev.expect_bank_id) or (
        ev.expect_amount_fen is not None and row["amount_fen"] != ev.expect_amount_fen
    )


def _add_updates(
    w: BatchWrite,
    touched: list[dict[str, Any]],
    original: dict[str, tuple[str, int]],
    now: datetime,
) -> None:
    def col(values: list[Any], pg_type: str) -> str:
        return w.arg(values, pg_type)

    ids = col([r["id"] for r in touched], "text[]")
    u = ", ".join((
        ids,
        col([original[r["id"]][0] for r in touched], "text[]"),
        col([original[r["id"]][1] for r in touched], "int[]"),
        col([r["status"] for r in touched], "text[]"),
        col([r["version"] for r in touched], "int[]"),
        col([r["bank_id"] for r in touched], "text[]"),
        col([r["bank_ref"] for r in touched], "text[]"),
        col([r["failure_code"] for r in touched], "text[]"),
        col([r["failure_message"] for r in touched], "text[]"),
        col([r["bank_date"] for r in touched], "date[]"),
    ))  # fmt: skip
    # No indexed column changes here, so the row is updated in place (HOT, migration 0008).
    # The id bounds prune partitions in a generic plan too (see `_bounded`).
    w.add("updated", f"""
        UPDATE payouts p SET status = u.status, version = u.version,
            bank_id = u.bank_id, bank_ref = u.bank_ref,
            failure_code = u.failure_code, failure_message = u.failure_message,
            bank_date = coalesce(p.bank_date, u.bank_date),
            updated_at = CASE WHEN u.version = p.version THEN p.updated_at
                              ELSE {w.arg(now, "timestamptz")} END
        FROM unnest({u}) AS u (id, from_status, from_version, status, version, bank_id,
                               bank_ref, failure_code, failure_message, bank_date)
        WHERE p.id = u.id AND p.id = ANY({ids}) AND p.status = u.from_status
          AND p.version = u.from_version
          AND p.id >= {col(min(r["id"] for r in touched), "text")}
          AND p.id <= {col(max(r["id"] for r in touched), "text")}
        RETURNING 1""", counted=True)  # fmt: skip
