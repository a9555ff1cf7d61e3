"""Advance (垫资) exposure: what the platform has fronted, per merchant and in total, and how
much of it B2B funds on their way (pending_in) are expected to repay, and how much of it is
failed debits fronted for payers (公司垫付, collections with advance_on_failure)."""

from __future__ import annotations

from typing import Any

import asyncpg


async def advance_exposure(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, Any]:
    rows = await conn.fetch(
        """SELECT b.merchant_id, m.advance_limit_fen, b.advance_used_fen, b.pending_in_fen,
                  coalesce(f.owed, 0) AS fronted_fen
           FROM merchant_balances b JOIN merchants m ON m.id = b.merchant_id
           LEFT JOIN (SELECT merchant_id, sum(outstanding_fen)::bigint AS owed
                      FROM collection_advances GROUP BY merchant_id) f
             ON f.merchant_id = b.merchant_id
           WHERE b.advance_used_fen > 0 OR b.pending_in_fen > 0 OR f.owed > 0
           ORDER BY b.advance_used_fen DESC, b.merchant_id"""
    )
    pool = await conn.fetchrow("SELECT cap_fen, used_fen FROM advance_pool WHERE id = 1")
    assert pool is not None
    merchants = [
        {
            "merchant_id": r["merchant_id"],
            "advance_limit": r["advance_limit_fen"],
            "advance_used": r["advance_used_fen"],
            "pending_in": r["pending_in_fen"],
            # Fronted money that no B2B payment on its way would cover if all of it cleared.
            "uncovered": max(r["advance_used_fen"] - r["pending_in_fen"], 0),
            # Failed debits the company fronted (公司垫付) that payers still owe.
            "collections_fronted": r["fronted_fen"],
        }
        for r in rows
    ]
    return {
        "pool": {"cap": pool["cap_fen"], "used": pool["used_fen"]},
        "advance_used": sum(m["advance_used"] for m in merchants),
        "pending_in": sum(m["pending_in"] for m in merchants),
        "uncovered": sum(m["uncovered"] for m in merchants),
        "collections_fronted": sum(m["collections_fronted"] for m in merchants),
        "merchants": merchants,
    }
