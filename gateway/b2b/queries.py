"""Reading B2B payments for merchants (keyset pagination, newest first)."""

from __future__ import annotations

from typing import Any

import asyncpg

from gateway.b2b import model


async def get_by_order_id(
    pool: asyncpg.Pool, merchant_id: str, merchant_order_id: str
) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        f"""SELECT {model.COLUMNS} FROM b2b_payments
            WHERE merchant_id = $1 AND merchant_order_id = $2""",
        merchant_id,
        merchant_order_id,
    )
    return model.public(row) if row else None


async def list_for_merchant(
    pool: asyncpg.Pool, merchant_id: str, status: str | None, before_id: str | None, limit: int
) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        f"""SELECT {model.COLUMNS} FROM b2b_payments
            WHERE merchant_id = $1 AND ($2::text IS NULL OR status = $2)
              AND ($3::text IS NULL OR id < $3)
            ORDER BY id DESC LIMIT $4""",
        merchant_id,
        status,
        before_id,
        limit,
    )
    return [model.public(r) for r in rows]
