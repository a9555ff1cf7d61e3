"""Records moves set-based: entries, postings, cached balances and the advance pool.

Called inside the caller's transaction. Lock order everywhere in Paygate: payouts rows,
then merchant_balances rows (by merchant id), then the advance_pool row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import asyncpg

from gateway.ids import new_id
from gateway.ledger.moves import Move


async def lock_balances(conn: asyncpg.Connection, merchant_ids: Sequence[str]) -> None:
    await conn.execute(
        "SELECT 1 FROM merchant_balances WHERE merchant_id = ANY($1::text[])"
        " ORDER BY merchant_id FOR UPDATE",
        sorted(set(merchant_ids)),
    )


async def record(conn: asyncpg.Connection, moves: Sequence[Move]) -> None:
    """Write `moves` in the current transaction. Balance rows must already be locked."""
    if not moves:
        return
    entry_ids = [new_id("je") for _ in moves]
    await conn.execute(
        """INSERT INTO journal_entries (id, kind, ref_id, merchant_id)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])""",
        entry_ids,
        [m.kind for m in moves],
        [m.ref_id for m in moves],
        [m.merchant_id for m in moves],
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
        codes = sorted(reserves)
        await conn.execute(
            """INSERT INTO accounts (code, kind, bank_id)
               SELECT c, 'reserve', split_part(c, ':', 3) FROM unnest($1::text[]) AS c
               ON CONFLICT (code) DO NOTHING""",
            codes,
        )
    await conn.execute(
        """INSERT INTO postings (entry_id, account, merchant_id, amount_fen)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])""",
        p_entry,
        p_account,
        p_merchant,
        p_amount,
    )
    per_merchant: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    pool_delta = 0
    for move in moves:
        d = per_merchant[move.merchant_id]
        d[0] += move.delta.available_fen
        d[1] += move.delta.held_fen
        d[2] += move.delta.pending_in_fen
        d[3] += move.delta.advance_used_fen
        pool_delta += move.pool_delta_fen
    ids = sorted(per_merchant)
    await conn.execute(
        """UPDATE merchant_balances b SET
               available_fen = b.available_fen + d.available,
               held_fen = b.held_fen + d.held,
               pending_in_fen = b.pending_in_fen + d.pending_in,
               advance_used_fen = b.advance_used_fen + d.advance_used,
               updated_at = now()
           FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[])
               AS d (merchant_id, available, held, pending_in, advance_used)
           WHERE b.merchant_id = d.merchant_id""",
        ids,
        [per_merchant[m][0] for m in ids],
        [per_merchant[m][1] for m in ids],
        [per_merchant[m][2] for m in ids],
        [per_merchant[m][3] for m in ids],
    )
    if pool_delta:
        await conn.execute(
            "UPDATE advance_pool SET used_fen = used_fen + $1 WHERE id = 1", pool_delta
        )
