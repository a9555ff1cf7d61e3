"""Reading payouts for operators (the review queue) and a merchant's journal lines; a
merchant's payouts are read by storage/owned.py (model.PAYOUTS)."""

from __future__ import annotations

from typing import Any

import asyncpg

from gateway.payouts import model, queue


async def list_reviews(
    conn: asyncpg.Pool | asyncpg.Connection, after_id: str | None, limit: int
) -> list[dict[str, Any]]:
    rows = await queue.reviews(conn, model.COLUMNS, after_id, limit)
    out = []
    for r in rows:
        item = model.public(r)
        item["merchant_id"] = r["merchant_id"]
        out.append(item)
    return out


async def ledger_lines(
    conn: asyncpg.Pool | asyncpg.Connection, merchant_id: str, before_id: int | None, limit: int
) -> list[dict[str, Any]]:
    """The merchant's journal lines: one per posting to one of its accounts."""
    rows = await conn.fetch(
        """SELECT p.id, p.entry_id, p.account, p.amount_fen, p.currency, p.created_at,
                  e.kind, e.ref_id
           FROM postings p JOIN journal_entries e ON e.id = p.entry_id
           WHERE p.merchant_id = $1 AND ($2::bigint IS NULL OR p.id < $2)
           ORDER BY p.id DESC LIMIT $3""",
        merchant_id,
        before_id,
        limit,
    )
    return [
        {
            "id": str(r["id"]),
            "entry_id": r["entry_id"],
            "account": r["account"].rsplit(":", 1)[1],
            "amount": r["amount_fen"],
            "currency": r["currency"],
            "entry_kind": r["kind"],
            "ref_id": r["ref_id"],
            "created_at": r["created_at"],
        }
        for r in rows
    ]
