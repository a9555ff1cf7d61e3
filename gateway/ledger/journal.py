"""Records moves set-based: entries, postings, cached balances and the advance pool.

`add_moves` adds them as parts of the caller's `BatchWrite` (one round trip with the rest of
the state change); `record` writes them on their own. Either runs inside the caller's
transaction. Lock order everywhere in Paygate: payouts rows (then their payout_queue rows),
collections rows (then collection_queue), freezes rows (by id), merchant_balances rows (by
merchant id), account_balances rows (by account id), payee_velocity rows, collection_advances
rows, then the advance_pool row.

A merchant's balance row is updated only by moves that change it (a transfer between two
personal accounts leaves it alone, unlocked); personal accounts' rows (SPEC 16) are updated
by the part named `account_balances`, whose row count the caller checks against
`account_rows(moves)`.

The merchant's balance row also carries today's daily-budget use (SPEC 8): a `UsageChange`
is applied in the same UPDATE as the balance delta, since a statement may change a row once.

Every `UPDATE ... FROM unnest(...)` here and elsewhere also says `key = ANY(keys)`: should a
plan be made without seeing the arrays (a generic plan), it still finds the rows by index
instead of hash-joining against a scan of the whole table.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import asyncpg

from gateway.ledger.moves import Move
from gateway.storage.batch_write import BatchWrite
from protocol.ids import new_id


@dataclass(frozen=True, slots=True)
class UsageChange:
    """Daily-budget use on a merchant's balance row. An accept (`roll`) counts toward
    `business_date`, starting the day afresh when the row still holds an earlier one; a
    give-back (not `roll`, negative) changes the row only while it holds that day."""

    merchant_id: str
    business_date: date
    amount_fen: int
    count: int
    roll: bool


async def lock_balances(conn: asyncpg.Connection, merchant_ids: Sequence[str]) -> None:
    await conn.execute(
        "SELECT 1 FROM merchant_balances WHERE merchant_id = ANY($1::text[])"
        " ORDER BY merchant_id FOR UPDATE",
        sorted(set(merchant_ids)),
    )


async def record(conn: asyncpg.Connection, moves: Sequence[Move]) -> None:
    """Write `moves` in the current transaction. Balance rows must already be locked."""
    w = BatchWrite()
    expected = add_moves(w, moves)
    if w:
        counts = await w.run(conn)
        assert counts["balances"] == expected, f"balance rows {counts['balances']}/{expected}"
        accounts = account_rows(moves)
        assert counts.get("account_balances", 0) == accounts, (counts, accounts)


def account_rows(moves: Sequence[Move]) -> int:
    """How many account balance rows the part `account_balances` of `add_moves` updates."""
    return len({a.account_id for m in moves for a in m.accounts})


def add_moves(
    w: BatchWrite,
    moves: Sequence[Move],
    usage: Sequence[UsageChange] = (),
    *,
    lock_in_order: bool = False,
) -> int:
    """Add the moves (and the daily-budget changes) to `w`. Balance rows must be locked by
    the time it runs (or be locked by it: payouts/accept_fast.py). Returns how many balance
    rows the part named `balances` must update; it returns each row's merchant id and today's
    use after the update. `lock_in_order`: the part locks its rows first, in merchant id order
    (the lock order), for a statement that has not locked them before."""
    if not moves and not usage:
        return 0
    entry_ids = [new_id("je") for _ in moves]
    if moves:
        ids = w.arg(entry_ids, "text[]")
        kinds = w.arg([m.kind for m in moves], "text[]")
        refs = w.arg([m.ref_id for m in moves], "text[]")
        merchants = w.arg([m.merchant_id for m in moves], "text[]")
        w.add(
            "entries",
            f"""
            INSERT INTO journal_entries (id, kind, ref_id, merchant_id)
            SELECT * FROM unnest({ids}, {kinds}, {refs}, {merchants})
            RETURNING 1""",
        )
    p_entry: list[str] = []
    p_account: list[str] = []
    p_merchant: list[str | None] = []
    p_amount: list[int] = []
    reserves: set[str] = set()
    for entry_id, move in zip(entry_ids, moves, strict=True):
        for account, amount in move.postings:
            p_entry.append(entry_id)
            p_account.append(account)
            is_merchant = account.startswith(move.merchant_id + ":")
            p_merchant.append(move.merchant_id if is_merchant else None)
            p_amount.append(amount)
            if account.startswith("platform:reserve:"):
                reserves.add(account)
    if reserves:
        codes = w.arg(sorted(reserves), "text[]")
        w.add(
            "reserves",
            f"""
            INSERT INTO accounts (code, kind, bank_id)
            SELECT c, 'reserve', split_part(c, ':', 3) FROM unnest({codes}) AS c
            ON CONFLICT (code) DO NOTHING""",
        )
    if p_entry:
        cols = ", ".join((w.arg(p_entry, "text[]"), w.arg(p_account, "text[]"),
                          w.arg(p_merchant, "text[]"), w.arg(p_amount, "bigint[]")))  # fmt: skip
        w.add(
            "postings",
            f"""
            INSERT INTO postings (entry_id, account, merchant_id, amount_fen)
            SELECT * FROM unnest({cols})
            RETURNING 1""",
        )
    rows = _add_balances(w, moves, usage, lock_in_order)
    _add_account_balances(w, moves)
    pool_delta = sum(m.pool_delta_fen for m in moves)
    if pool_delta:
        # The row's CHECK (used <= cap) refuses an over-committed pool: the caller's
        # transaction fails (see payouts/accept.py for how it retries).
        w.add("pool", f"UPDATE advance_pool SET used_fen = used_fen + {w.arg(pool_delta, 'bigint')}"
                      " WHERE id = 1")  # fmt: skip
    return rows


def _add_balances(
    w: BatchWrite, moves: Sequence[Move], usage: Sequence[UsageChange], lock_in_order: bool
) -> int:
    deltas: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for move in moves:
        if move.delta.is_zero():
            continue
        d = deltas[move.merchant_id]
        d[0] += move.delta.available_fen
        d[1] += move.delta.held_fen
        d[2] += move.delta.pending_in_fen
        d[3] += move.delta.advance_used_fen
    uses: dict[str, UsageChange] = {}
    for u in usage:
        prior = uses.get(u.merchant_id)
        if prior is not None:
            assert (prior.business_date, prior.roll) == (u.business_date, u.roll), (prior, u)
            u = UsageChange(u.merchant_id, u.business_date, prior.amount_fen + u.amount_fen,
                            prior.count + u.count, u.roll)  # fmt: skip
        uses[u.merchant_id] = u
        deltas.setdefault(u.merchant_id, [0, 0, 0, 0])  # a usage-only row is updated too
    ids = sorted(deltas)
    merchants = w.arg(ids, "text[]")
    none = UsageChange("", date.min, 0, 0, False)
    use = [uses.get(m, none) for m in ids]
    locked = ""
    if lock_in_order:
        # A one-time condition: the rows are locked in order before the UPDATE touches one.
        w.add("balances_lock", f"""
            SELECT merchant_id FROM merchant_balances WHERE merchant_id = ANY({merchants})
            ORDER BY merchant_id FOR UPDATE""")  # fmt: skip
        locked = "AND (SELECT count(*) FROM balances_lock) >= 0"
    w.add("balances", f"""
        UPDATE merchant_balances b SET
            available_fen = b.available_fen + d.available,
            held_fen = b.held_fen + d.held,
            pending_in_fen = b.pending_in_fen + d.pending_in,
            advance_used_fen = b.advance_used_fen + d.advance_used,
            usage_date = CASE WHEN d.roll THEN d.day ELSE b.usage_date END,
            used_amount_fen = CASE
                WHEN d.roll AND b.usage_date IS DISTINCT FROM d.day THEN d.used_amount
                WHEN b.usage_date = d.day THEN greatest(b.used_amount_fen + d.used_amount, 0)
                ELSE b.used_amount_fen END,
            used_count = CASE
                WHEN d.roll AND b.usage_date IS DISTINCT FROM d.day THEN d.used_count
                WHEN b.usage_date = d.day THEN greatest(b.used_count + d.used_count, 0)
                ELSE b.used_count END,
            updated_at = now()
        FROM unnest({merchants}, {w.arg([deltas[m][0] for m in ids], "bigint[]")},
                    {w.arg([deltas[m][1] for m in ids], "bigint[]")},
                    {w.arg([deltas[m][2] for m in ids], "bigint[]")},
                    {w.arg([deltas[m][3] for m in ids], "bigint[]")},
                    {w.arg([u.roll for u in use], "bool[]")},
                    {w.arg([u.business_date if u.merchant_id else None for u in use], "date[]")},
                    {w.arg([u.amount_fen for u in use], "bigint[]")},
                    {w.arg([u.count for u in use], "int[]")})
            AS d (merchant_id, available, held, pending_in, advance_used, roll, day,
                  used_amount, used_count)
        WHERE b.merchant_id = d.merchant_id AND b.merchant_id = ANY({merchants}) {locked}
        RETURNING b.merchant_id, b.usage_date, b.used_amount_fen, b.used_count
        """, counted=True)  # fmt: skip
    return len(ids)


def _add_account_balances(w: BatchWrite, moves: Sequence[Move]) -> None:
    """One UPDATE of the personal accounts' rows the moves change (their CHECKs refuse a
    negative available or frozen: the caller's decision was wrong, the transaction fails)."""
    deltas: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for move in moves:
        for a in move.accounts:
            d = deltas[a.account_id]
            d[0] += a.available_fen
            d[1] += a.frozen_fen
    if not deltas:
        return
    ids = sorted(deltas)
    accounts = w.arg(ids, "text[]")
    w.add("account_balances", f"""
        UPDATE account_balances b SET
            available_fen = b.available_fen + d.available,
            frozen_fen = b.frozen_fen + d.frozen,
            updated_at = now()
        FROM unnest({accounts}, {w.arg([deltas[a][0] for a in ids], "bigint[]")},
                    {w.arg([deltas[a][1] for a in ids], "bigint[]")})
            AS d (account_id, available, frozen)
        WHERE b.account_id = d.account_id AND b.account_id = ANY({accounts})
        RETURNING 1""", counted=True)  # fmt: skip
