"""Reading a merchant's balance (SPEC 11 `GET /v1/balance`)."""

from __future__ import annotations

from typing import Any

import asyncpg


def spendable_fen(
    funding_mode: str, available_fen: int, advance_limit_fen: int, advance_used_fen: int,
    pool_room_fen: int,
) -> int:  # fmt: skip
    """What one payout's amount + fee may reach right now."""
    if funding_mode == "prefunded":
        return available_fen
    credit_room = max(0, min(advance_limit_fen - advance_used_fen, pool_room_fen))
    return available_fen + credit_room


async def read_balance(conn: asyncpg.Connection | asyncpg.Pool, merchant_id: str) -> dict[str, Any]:
    row = await conn.fetchrow(
        """SELECT b.available_fen, b.held_fen, b.pending_in_fen, b.advance_used_fen,
                  m.advance_limit_fen, m.funding_mode, b.currency,
                  (SELECT cap_fen - used_fen FROM advance_pool WHERE id = 1) AS pool_room
           FROM merchant_balances b JOIN merchants m ON m.id = b.merchant_id
           WHERE b.merchant_id = $1""",
        merchant_id,
    )
    assert row is not None, f"merchant {merchant_id} has no balance row"
    return {
        "available": row["available_fen"],
        "held": row["held_fen"],
        "pending_in": row["pending_in_fen"],
        "advance_limit": row["advance_limit_fen"],
        "advance_used": row["advance_used_fen"],
        "spendable": spendable_fen(
            row["funding_mode"],
            row["available_fen"],
            row["advance_limit_fen"],
            row["advance_used_fen"],
            row["pool_room"] or 0,
        ),
        "currency": row["currency"],
    }
